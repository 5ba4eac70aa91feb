-- name: item_changes
-- kind: fragment
-- question: Every stored copy of one item's changes, from changes_ordered, numbered per event_id in ingestion order; a query keeps copy_number = 1 and orders by change_order. More AND lines after it narrow the scan.
-- parameters:
--   table_name  string  DynamoDB table name
--   item_key    string  canonical item key
-- output:
--   (every column of changes_ordered)  one row per stored copy
--   copy_number                        1 for the first copy ingested
SELECT
    *,
    -- At-least-once delivery may land one event twice: keep its first copy.
    row_number() OVER (PARTITION BY event_id ORDER BY ingested_at) AS copy_number
FROM changes_ordered
WHERE table_name = ?
  AND item_key = ?
