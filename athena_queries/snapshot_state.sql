-- name: snapshot_state
-- kind: query
-- question: The rows of a new state snapshot: every live item of a table at an instant, from the snapshot it builds on plus the changes after that one. `ddbtrail snapshot` and the daily maintenance (INSERT INTO snapshots) write them.
-- parameters:
--   table_name      string     DynamoDB table name
--   base            timestamp  instant of the snapshot to build on (a row of snapshot_status that is not stale); 1970-01-01 reads the whole history [default: 1970-01-01T00:00:00Z]
--   base            timestamp  the same instant again (its partition)
--   base_made_at    string     made_at of that snapshot [default: none]
--   table_name      string     the same table again
--   base            timestamp  the same instant again (changes after it count)
--   at              timestamp  the new snapshot's instant: changes at or before it count
--   base            timestamp  the same base instant again (prunes dt partitions)
--   at              timestamp  the same instant again (prunes dt partitions)
--   at              timestamp  the same instant again (snapshot_ms)
--   made_at         timestamp  when this build runs (names it)
--   visible_before  timestamp  rows ingested before this are in the lake now (made_at minus the delivery's buffering)
--   table_name      string     the same table again (partition)
--   at              timestamp  the same instant again (snapshot_date partition)
-- output:
--   event_id         eventID of the change that made the item's state
--   sequence_number  its sequence number
--   action           its action (INSERT | MODIFY | SNAPSHOT)
--   item_key         canonical item key
--   keys             the key attributes, plain JSON
--   new_image        the item's attributes at the instant, plain JSON
--   type_hints       JSON pointer -> B|SS|NS|BS; the item's are under /new_image
--   timestamp        time of that change, epoch ms
--   event_time       time of that change, ISO-8601 UTC
--   ingested_at      when that change was ingested
--   change_order     that change's change_order (view changes_ordered)
--   snapshot_ms      the snapshot's instant, epoch ms
--   made_at          when the build ran
--   visible_before   see the parameter
--   row_kind         item
--   table_name       partition: DynamoDB table name
--   snapshot_date    partition: date of the instant
WITH candidates AS (
    {{ as_of_candidates }}
),
latest AS (
    {{ latest_rows }}
)
SELECT
    event_id, sequence_number, action, item_key, keys, new_image, type_hints,
    "timestamp", event_time, ingested_at, change_order,
    CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT) AS snapshot_ms,
    ? AS made_at,
    ? AS visible_before,
    'item' AS row_kind,
    ? AS table_name,
    date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d') AS snapshot_date
FROM latest
