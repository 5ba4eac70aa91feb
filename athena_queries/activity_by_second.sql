-- name: activity_by_second
-- kind: query
-- question: How many changes did each table see per action and second? (for windows of a few minutes)
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   second       the second, ISO-8601 UTC (e.g. 2024-05-01T13:07:05Z); rows are in order of second, table_name, action
--   table_name   DynamoDB table name
--   action       INSERT | MODIFY | REMOVE | SNAPSHOT
--   changes      distinct changes (event_id) in that second
--   items        distinct items changed in that second
--   ttl_deletes  of the changes, removals made by DynamoDB TTL
SELECT
    -- event_time is ISO-8601 UTC, so its first 19 characters name the second in every engine.
    substr(event_time, 1, 19) || 'Z' AS second,
    {{ activity_columns }}
FROM changes
WHERE ? IN ('*', table_name)
  {{ change_window }}
GROUP BY substr(event_time, 1, 19), table_name, action
ORDER BY second, table_name, action
