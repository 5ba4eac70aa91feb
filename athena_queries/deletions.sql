-- name: deletions
-- kind: query
-- question: Which items were deleted in a window, and by whom: DynamoDB TTL or a user?
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   table_name       DynamoDB table name
--   event_time       when the item was deleted, ISO-8601 UTC (rows are in time order)
--   item_key         canonical item key
--   deletion_kind    ttl (DynamoDB's TTL service) or user (any other principal)
--   user_identity    principal that deleted it, when the stream names one
--   old_image        the item as it was deleted, plain JSON (null for KEYS_ONLY/NEW_IMAGE streams)
--   type_hints       JSON pointer -> B|SS|NS|BS; the item's are under /old_image
--   sequence_number  stream sequence number
--   event_id         stream eventID
WITH removes AS (
    {{ window_copies }}
      AND action = 'REMOVE'
)
SELECT
    table_name,
    event_time,
    item_key,
    CASE WHEN ttl_delete THEN 'ttl' ELSE 'user' END AS deletion_kind,
    user_identity,
    old_image,
    type_hints,
    sequence_number,
    event_id
FROM removes
WHERE copy_number = 1
ORDER BY "timestamp", table_name, item_key, length(sequence_number), sequence_number
