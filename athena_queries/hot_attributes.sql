-- name: hot_attributes
-- kind: query
-- question: Which top-level attributes do updates (MODIFY) change most often in a window?
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
--   top         integer    how many (table, attribute) pairs to return [default: 20]
-- output:
--   table_name  DynamoDB table name
--   attribute   top-level attribute name
--   changes     distinct MODIFY changes (event_id) that added, removed or changed it; rows are in descending order of it
--   items       distinct items whose updates changed it
-- note: INSERT and REMOVE rows list every attribute of the item, so they would only
-- note: measure item shape; MODIFY rows without both images (changed_attributes null) are skipped.
SELECT
    table_name,
    attribute,
    count(DISTINCT event_id) AS changes,
    count(DISTINCT item_key) AS items
FROM changes
CROSS JOIN UNNEST(changed_attributes) AS changed (attribute)
WHERE action = 'MODIFY'
  AND ? IN ('*', table_name)
  {{ change_window }}
GROUP BY table_name, attribute
ORDER BY changes DESC, table_name, attribute
LIMIT ?
