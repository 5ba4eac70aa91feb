-- name: attribute_history
-- kind: query
-- question: How did one attribute of one item change over time, old value to new?
-- parameters:
--   table_name  string  DynamoDB table name
--   item_key    string  canonical item key, e.g. {"Id":101}
--   attribute   string  attribute name (a dotted path such as address.city reaches into maps)
--   attribute   string  the same attribute again
-- output:
--   sequence_number  stream sequence number; the order (compared as a number)
--   event_time       when the change happened, ISO-8601 UTC
--   action           INSERT | MODIFY | REMOVE | SNAPSHOT
--   old_value        the value before, JSON text (null when absent)
--   new_value        the value after, JSON text (null when absent)
--   event_id         stream eventID
-- note: values pass through the engine's JSON type, which may respell numbers (1.10 as 1.1)
-- and round very long ones; the images themselves keep every digit.
WITH item_changes AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY event_id ORDER BY ingested_at) AS copy_number
    FROM changes
    WHERE table_name = ?
      AND item_key = ?
),
valued AS (
    SELECT
        sequence_number,
        event_time,
        action,
        json_format(json_extract(old_image, '$.' || ?)) AS old_value,
        json_format(json_extract(new_image, '$.' || ?)) AS new_value,
        event_id
    FROM item_changes
    WHERE copy_number = 1
)
SELECT sequence_number, event_time, action, old_value, new_value, event_id
FROM valued
WHERE old_value IS DISTINCT FROM new_value
ORDER BY event_time, length(sequence_number), sequence_number
