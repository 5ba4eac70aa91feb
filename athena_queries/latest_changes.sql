-- name: latest_changes
-- kind: query
-- question: What were the most recent changes in a window, newest first?
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
--   top         integer    how many changes to return [default: 20]
-- output:
--   table_name          DynamoDB table name
--   event_time          when the change happened, ISO-8601 UTC (rows are newest first)
--   action              INSERT | MODIFY | REMOVE | SNAPSHOT
--   item_key            canonical item key
--   changed_attributes  top-level attributes added, removed or changed
--   ttl_delete          true when DynamoDB TTL removed the item
--   user_identity       principal that made the change, when the stream names one
--   sequence_number     stream sequence number
--   event_id            stream eventID
WITH window_changes AS (
    {{ window_copies }}
)
{{ change_listing }}
ORDER BY "timestamp" DESC, table_name, length(sequence_number) DESC, sequence_number DESC
LIMIT ?
