-- name: change_window
-- kind: fragment
-- question: The window rule: rows whose event time is in [from, to), with the dt bounds that let Athena prune partitions. Follows a WHERE predicate (each line starts with AND).
-- parameters:
--   from  timestamp  window start, ISO-8601, inclusive
--   to    timestamp  window end, ISO-8601, exclusive
--   from  timestamp  the same start again (prunes dt partitions)
--   to    timestamp  the same end again (prunes dt partitions)
-- note: literal predicates on the scanned table's own columns, so that Athena prunes the
-- note: dt partitions and Parquet row groups (on "timestamp") and DuckDB pushes them down.
AND "timestamp" >= CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
AND "timestamp" < CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
AND dt >= date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
AND dt <= date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
