-- name: ingestion_lag
-- kind: query
-- question: How long did changes take to reach the lake (event time -> ingested_at), per hour?
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   hour        start of the hour of the event time, ISO-8601 UTC (e.g. 2024-05-01T13:00:00Z)
--   table_name  DynamoDB table name
--   changes     distinct changes (event_id) in that hour; rows are in order of hour, table_name
--   min_lag_ms  smallest lag, milliseconds
--   avg_lag_ms  mean lag, milliseconds, rounded to an integer
--   max_lag_ms  largest lag, milliseconds
-- note: A change delivered more than once counts with its first ingestion. DynamoDB Streams
-- note: round the event time down to the second, so lags include up to 1 s of rounding.
WITH lags AS (
    {{ ingestion_lags }}
)
SELECT
    substr(event_time, 1, 13) || ':00:00Z' AS hour,
    table_name,
    count(*) AS changes,
    min(lag_ms) AS min_lag_ms,
    CAST(round(avg(lag_ms)) AS BIGINT) AS avg_lag_ms,
    max(lag_ms) AS max_lag_ms
FROM lags
GROUP BY substr(event_time, 1, 13), table_name
ORDER BY hour, table_name
