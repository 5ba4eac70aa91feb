-- name: activity_by_minute
-- kind: query
-- question: How many changes did each table see per action and minute? (activity_by_hour for short windows)
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   minute       start of the minute, ISO-8601 UTC (e.g. 2024-05-01T13:07:00Z); rows are in order of minute, table_name, action
--   table_name   DynamoDB table name
--   action       INSERT | MODIFY | REMOVE | SNAPSHOT
--   changes      distinct changes (event_id) in that minute
--   items        distinct items changed in that minute
--   ttl_deletes  of the changes, removals made by DynamoDB TTL
SELECT
    -- event_time is ISO-8601 UTC, so its first 16 characters name the minute in every engine.
    substr(event_time, 1, 16) || ':00Z' AS minute,
    {{ activity_columns }}
FROM changes
WHERE ? IN ('*', table_name)
  {{ change_window }}
GROUP BY substr(event_time, 1, 16), table_name, action
ORDER BY minute, table_name, action
