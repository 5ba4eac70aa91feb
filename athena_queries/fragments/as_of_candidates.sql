-- name: as_of_candidates
-- kind: fragment
-- question: The as-of rule's rows: the item rows of one finished snapshot build of a table, and the table's changes after the snapshot's instant up to the instant asked for, (snapshot, at]. latest_rows then picks each item's state.
-- parameters:
--   table_name        string     DynamoDB table name
--   snapshot          timestamp  the snapshot's instant (its snapshot_date partition); 1970-01-01 with made_at none: no snapshot, the whole history
--   snapshot          timestamp  the same instant again (snapshot_ms)
--   snapshot_made_at  string     made_at of that build (names it)
--   table_name        string     the same table again
--   snapshot          timestamp  the same snapshot instant again: changes after it count
--   at                timestamp  the instant: changes at or before it count
--   snapshot          timestamp  the same snapshot instant again (prunes dt partitions)
--   at                timestamp  the same instant again (prunes dt partitions)
-- output:
--   (columns)  table_name, event_id, sequence_number, action, item_key, keys, new_image, type_hints, timestamp, event_time, ingested_at, change_order, as in changes_ordered
-- note: every change after a snapshot's instant orders after every row in it (change_order
-- note: starts with the event time), so the two parts rank as one history. Each part
-- note: filters its own table literally: table_name, dt, snapshot_date and "timestamp" prune.
SELECT
    table_name, event_id, sequence_number, action, item_key, keys, new_image, type_hints,
    "timestamp", event_time, ingested_at, change_order
FROM snapshots
WHERE table_name = ?
  AND snapshot_date = date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
  AND snapshot_ms = CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
  AND made_at = ?
  AND row_kind = 'item'
UNION ALL
SELECT
    table_name, event_id, sequence_number, action, item_key, keys, new_image, type_hints,
    "timestamp", event_time, ingested_at, change_order
FROM changes_ordered
WHERE table_name = ?
  AND "timestamp" > CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
  AND "timestamp" <= CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
  AND dt >= date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
  AND dt <= date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
