-- name: item_history
-- kind: query
-- question: What happened to one item? Every change, oldest first, deduplicated by event_id.
-- parameters:
--   table_name  string  DynamoDB table name
--   item_key    string  canonical item key: compact JSON of the key attributes, names sorted, e.g. {"Id":101}
-- output:
--   sequence_number     stream sequence number; orders changes within a second (as a number)
--   event_time          when the change happened, ISO-8601 UTC
--   action              INSERT | MODIFY | REMOVE | SNAPSHOT
--   changed_attributes  top-level attributes added, removed or changed
--   ttl_delete          true when DynamoDB TTL removed the item
--   user_identity       principal that made the change, when the stream names one
--   old_image           the item before the change, plain JSON
--   new_image           the item after the change, plain JSON
--   type_hints          JSON pointer -> B|SS|NS|BS under /keys, /old_image, /new_image
--   keys                the key attributes, plain JSON
--   event_id            stream eventID
--   timestamp           when the change happened, epoch milliseconds
WITH item_changes AS (
    {{ item_changes }}
)
SELECT
    sequence_number,
    event_time,
    action,
    changed_attributes,
    ttl_delete,
    user_identity,
    old_image,
    new_image,
    type_hints,
    keys,
    event_id,
    "timestamp"
FROM item_changes
WHERE copy_number = 1
-- The one order of an item's changes: see view_changes_ordered.sql and docs/queries.md.
ORDER BY change_order
