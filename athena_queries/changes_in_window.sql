-- name: changes_in_window
-- kind: query
-- question: Which changes happened between two instants, optionally only some actions?
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
--   actions     string     comma-separated actions to keep [default: INSERT,MODIFY,REMOVE,SNAPSHOT]
-- output:
--   table_name          DynamoDB table name
--   event_time          when the change happened, ISO-8601 UTC (rows are in time order)
--   action              INSERT | MODIFY | REMOVE | SNAPSHOT
--   item_key            canonical item key
--   changed_attributes  top-level attributes added, removed or changed
--   ttl_delete          true when DynamoDB TTL removed the item
--   user_identity       principal that made the change, when the stream names one
--   sequence_number     stream sequence number
--   event_id            stream eventID
WITH window_changes AS (
    {{ window_copies }}
      AND strpos(',' || upper(replace(?, ' ', '')) || ',', ',' || action || ',') > 0
)
{{ change_listing }}
ORDER BY "timestamp", table_name, item_key, length(sequence_number), sequence_number
