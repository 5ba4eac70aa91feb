-- name: change_listing
-- kind: fragment
-- question: The rows of a change listing (changes_in_window, latest_changes): the first copies of a CTE named window_changes (see window_copies), unordered; the query adds its ORDER BY.
-- parameters:
-- output:
--   table_name          DynamoDB table name
--   event_time          when the change happened, ISO-8601 UTC
--   action              INSERT | MODIFY | REMOVE | SNAPSHOT
--   item_key            canonical item key
--   changed_attributes  top-level attributes added, removed or changed
--   ttl_delete          true when DynamoDB TTL removed the item
--   user_identity       principal that made the change, when the stream names one
--   sequence_number     stream sequence number
--   event_id            stream eventID
SELECT
    table_name,
    event_time,
    action,
    item_key,
    changed_attributes,
    ttl_delete,
    user_identity,
    sequence_number,
    event_id
FROM window_changes
WHERE copy_number = 1
