-- name: ingestion_lags
-- kind: fragment
-- question: The lag rule: for each change of a table (or * for every table) in a window, its ingestion lag (first ingested_at minus the event time), in milliseconds.
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   table_name  DynamoDB table name
--   event_id    stream eventID: one row per change
--   event_time  when the change happened, ISO-8601 UTC
--   lag_ms      milliseconds from the event time to its first ingestion (negative under clock skew)
SELECT
    table_name,
    event_id,
    min(event_time) AS event_time,
    -- A change delivered more than once counts with its first ingestion.
    CAST(to_unixtime(from_iso8601_timestamp(min(ingested_at))) * 1000 AS BIGINT)
        - min("timestamp") AS lag_ms
FROM changes
WHERE ? IN ('*', table_name)
  {{ change_window }}
GROUP BY table_name, event_id
