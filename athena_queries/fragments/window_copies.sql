-- name: window_copies
-- kind: fragment
-- question: Every copy of every change of a table (or * for every table) in a window, numbered per (table_name, event_id) in ingestion order; a query keeps copy_number = 1. More AND lines after it narrow the scan.
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   (every column of changes)  one row per stored copy
--   copy_number                1 for the first copy ingested
SELECT
    *,
    -- At-least-once delivery may land one event twice: the first copy ingested is the one kept.
    row_number() OVER (PARTITION BY table_name, event_id ORDER BY ingested_at) AS copy_number
FROM changes
WHERE ? IN ('*', table_name)
  {{ change_window }}
