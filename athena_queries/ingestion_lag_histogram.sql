-- name: ingestion_lag_histogram
-- kind: query
-- question: How are ingestion lags (event time -> ingested_at) distributed in a window?
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   lag_from_ms  bucket start, milliseconds, inclusive (0, 1 s, 2 s, 5 s, 10 s, 30 s, 1 min, 5 min, 15 min, 1 h)
--   lag_to_ms    bucket end, exclusive (the last bucket ends at 2^63-1)
--   changes      distinct changes (event_id) whose lag falls in the bucket; only non-empty buckets, in order of lag_from_ms
-- note: A change delivered more than once counts with its first ingestion; a negative lag
-- note: (clock skew) counts in the first bucket. DynamoDB Streams round the event time down
-- note: to the second, so lags include up to 1 s of rounding.
WITH lags AS (
    {{ ingestion_lags }}
),
buckets (lag_from_ms, lag_to_ms) AS (
    VALUES
        (0, 1000), (1000, 2000), (2000, 5000), (5000, 10000), (10000, 30000),
        (30000, 60000), (60000, 300000), (300000, 900000), (900000, 3600000),
        (3600000, 9223372036854775807)
)
SELECT
    b.lag_from_ms,
    b.lag_to_ms,
    count(*) AS changes
FROM lags AS l
JOIN buckets AS b ON greatest(l.lag_ms, 0) >= b.lag_from_ms AND greatest(l.lag_ms, 0) < b.lag_to_ms
GROUP BY b.lag_from_ms, b.lag_to_ms
ORDER BY b.lag_from_ms
