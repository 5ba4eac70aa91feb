-- name: activity_columns
-- kind: fragment
-- question: What the activity_by_* queries count per time bucket: the select-list columns after the bucket (table_name, action, changes, items, ttl_deletes); the query groups by the bucket, table_name and action.
-- parameters:
-- output:
--   table_name   DynamoDB table name
--   action       INSERT | MODIFY | REMOVE | SNAPSHOT
--   changes      distinct changes (event_id) in the bucket
--   items        distinct items changed in the bucket
--   ttl_deletes  of the changes, removals made by DynamoDB TTL
table_name,
action,
count(DISTINCT event_id) AS changes,
count(DISTINCT item_key) AS items,
count(DISTINCT CASE WHEN ttl_delete THEN event_id END) AS ttl_deletes
