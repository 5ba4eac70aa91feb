-- name: snapshot_state
-- kind: query
-- question: The rows of a new state snapshot: every live item of a table at an instant, from the snapshot it builds on plus the changes after that one, and what the build read in each change partition. `ddbtrail snapshot` and the daily maintenance (INSERT INTO snapshots) write them.
-- parameters:
--   table_name      string     DynamoDB table name
--   base            timestamp  instant of the snapshot to build on (a snapshot_candidates row snapshot_check finds fresh); 1970-01-01 reads the whole history [default: 1970-01-01T00:00:00Z]
--   base            timestamp  the same instant again (its partition)
--   base_made_at    string     made_at of that snapshot [default: none]
--   table_name      string     the same table again
--   base            timestamp  the same instant again (changes after it count)
--   at              timestamp  the new snapshot's instant: changes at or before it count
--   base            timestamp  the same base instant again (prunes dt partitions)
--   at              timestamp  the same instant again (prunes dt partitions)
--   table_name      string     the same table again (partitions read)
--   base            timestamp  the same base instant again: partitions from its date on are counted
--   at              timestamp  the same instant again (last partition counted)
--   base            timestamp  the same base instant again (events after it are this build's to count)
--   at              timestamp  the same instant again (events at or before it count)
--   table_name      string     the same table again (the base's partition rows)
--   base            timestamp  the same base instant again (its partition)
--   base            timestamp  the same base instant again (snapshot_ms)
--   base_made_at    string     the same made_at again
--   base            timestamp  the same base instant again: partitions up to its date carry the base's counts
--   at              timestamp  the same instant again (snapshot_ms)
--   made_at         timestamp  when this build runs (names it)
--   visible_before  timestamp  made_at minus the delivery's buffering (recorded; rows ingested after it may still have been buffered)
--   table_name      string     the same table again (partition)
--   at              timestamp  the same instant again (snapshot_date partition)
-- output:
--   event_id         eventID of the change that made the item's state; empty on partition rows
--   sequence_number  its sequence number; empty on partition rows
--   action           its action (INSERT | MODIFY | SNAPSHOT); PARTITION on partition rows
--   item_key         canonical item key; empty on partition rows
--   keys             the key attributes, plain JSON; empty on partition rows
--   new_image        the item's attributes at the instant, plain JSON
--   type_hints       JSON pointer -> B|SS|NS|BS; the item's are under /new_image
--   timestamp        time of that change, epoch ms; the instant on partition rows
--   event_time       time of that change, ISO-8601 UTC
--   ingested_at      when that change was ingested
--   change_order     that change's change_order (view changes_ordered)
--   snapshot_ms      the snapshot's instant, epoch ms
--   made_at          when the build ran
--   visible_before   see the parameter
--   row_kind         item | partition
--   source_dt        partition rows: a change partition (dt) the build read
--   source_events    partition rows: distinct event_ids at or before the instant in it
--   table_name       partition: DynamoDB table name
--   snapshot_date    partition: date of the instant
-- note: the partition rows are what view_snapshot_status compares the lake with: a change
-- note: partition holding more distinct events at or before the instant than the build
-- note: read holds a late change. A redelivered event or a compacted partition adds none.
WITH candidates AS (
    {{ as_of_candidates }}
),
latest AS (
    {{ latest_rows }}
),
partitions_read AS (
    SELECT dt AS source_dt, count(DISTINCT event_id) AS source_events
    FROM changes
    WHERE table_name = ?
      AND dt >= date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
      AND dt <= date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
      AND "timestamp" > CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
      AND "timestamp" <= CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
    GROUP BY dt
    UNION ALL
    -- Events at or before the base's instant are the base's, counted when it was built (it
    -- was not stale, so the lake still held what it read). Adding the base's counts rather
    -- than counting them again records exactly what this state holds: a change that lands
    -- in the base's own day after the base was checked leaves this build stale, never
    -- fresh and short of it.
    SELECT source_dt, source_events
    FROM snapshots
    WHERE table_name = ?
      AND snapshot_date = date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
      AND snapshot_ms = CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
      AND made_at = ?
      AND row_kind = 'partition'
      AND source_dt <= date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
),
partitions AS (
    SELECT source_dt, CAST(sum(source_events) AS bigint) AS source_events
    FROM partitions_read
    GROUP BY source_dt
),
build AS (
    SELECT
        CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT) AS snapshot_ms,
        ? AS made_at,
        ? AS visible_before,
        ? AS table_name,
        date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d') AS snapshot_date
)
SELECT
    l.event_id, l.sequence_number, l.action, l.item_key, l.keys, l.new_image, l.type_hints,
    l."timestamp", l.event_time, l.ingested_at, l.change_order,
    b.snapshot_ms, b.made_at, b.visible_before, 'item' AS row_kind,
    CAST(NULL AS varchar) AS source_dt, CAST(NULL AS bigint) AS source_events,
    b.table_name, b.snapshot_date
FROM latest AS l
CROSS JOIN build AS b
UNION ALL
SELECT
    '' AS event_id, '' AS sequence_number, 'PARTITION' AS action, '' AS item_key, '' AS keys,
    CAST(NULL AS varchar) AS new_image, CAST(NULL AS varchar) AS type_hints,
    b.snapshot_ms AS "timestamp", '' AS event_time, '' AS ingested_at, '' AS change_order,
    b.snapshot_ms, b.made_at, b.visible_before, 'partition' AS row_kind,
    r.source_dt, r.source_events,
    b.table_name, b.snapshot_date
FROM partitions AS r
CROSS JOIN build AS b
