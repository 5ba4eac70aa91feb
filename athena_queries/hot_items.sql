-- name: hot_items
-- kind: query
-- question: Which items changed most often in a window?
-- parameters:
--   table_name  string     DynamoDB table name
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
--   top         integer    how many items to return [default: 20]
-- output:
--   item_key          canonical item key
--   changes           distinct changes (event_id) in the window; rows are in descending order of it
--   inserts           of them, INSERTs
--   modifies          of them, MODIFYs
--   removes           of them, REMOVEs
--   first_event_time  first change in the window, ISO-8601 UTC
--   last_event_time   last change in the window, ISO-8601 UTC
SELECT
    item_key,
    count(DISTINCT event_id) AS changes,
    count(DISTINCT CASE WHEN action = 'INSERT' THEN event_id END) AS inserts,
    count(DISTINCT CASE WHEN action = 'MODIFY' THEN event_id END) AS modifies,
    count(DISTINCT CASE WHEN action = 'REMOVE' THEN event_id END) AS removes,
    min(event_time) AS first_event_time,
    max(event_time) AS last_event_time
FROM changes
WHERE table_name = ?
  {{ change_window }}
GROUP BY item_key
ORDER BY changes DESC, item_key
LIMIT ?
