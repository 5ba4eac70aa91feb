-- name: activity_by_hour
-- kind: query
-- question: How many changes did each table see per action and hour? (for dashboards)
-- parameters:
--   from  timestamp  window start, ISO-8601, inclusive
--   to    timestamp  window end, ISO-8601, exclusive
--   from  timestamp  the same start again (prunes dt partitions)
--   to    timestamp  the same end again (prunes dt partitions)
-- output:
--   hour        start of the hour, ISO-8601 UTC (e.g. 2024-05-01T13:00:00Z)
--   table_name  DynamoDB table name
--   action      INSERT | MODIFY | REMOVE | SNAPSHOT
--   changes     distinct changes (event_id) in that hour
--   items       distinct items changed in that hour
--   ttl_deletes of the changes, removals made by DynamoDB TTL
SELECT
    -- event_time is ISO-8601 UTC, so its first 13 characters name the hour in every engine.
    substr(event_time, 1, 13) || ':00:00Z' AS hour,
    {{ activity_columns }}
FROM changes
WHERE TRUE  -- every table
  {{ change_window }}
GROUP BY substr(event_time, 1, 13), table_name, action
ORDER BY hour, table_name, action
