-- name: scd2
-- kind: query
-- question: Every version of every item with its validity interval (a type-2 slowly changing dimension for BI).
-- parameters:
--   table_name  string  DynamoDB table name, or * for every table
-- output:
--   table_name       DynamoDB table name
--   item_key         canonical item key
--   valid_from       when this version began, ISO-8601 UTC
--   valid_to         when the next change (update or delete) ended it, ISO-8601 UTC; null while current
--   is_current       true for the version that is live now
--   item             the version's attributes, plain JSON
--   type_hints       JSON pointer -> B|SS|NS|BS; the item's are under /new_image
--   sequence_number  sequence number of the change that made this version
WITH deduped AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY table_name, event_id ORDER BY ingested_at) AS copy_number
    FROM changes_ordered
    WHERE ? IN ('*', table_name)
),
versions AS (
    SELECT
        table_name,
        item_key,
        action,
        event_time AS valid_from,
        lead(event_time) OVER (
            PARTITION BY table_name, item_key
            ORDER BY change_order
        ) AS valid_to,
        new_image,
        type_hints,
        sequence_number,
        change_order
    FROM deduped
    WHERE copy_number = 1
)
SELECT
    table_name,
    item_key,
    valid_from,
    valid_to,
    valid_to IS NULL AS is_current,
    new_image AS item,
    type_hints,
    sequence_number
FROM versions
-- A removal ends the version before it and starts none.
WHERE action <> 'REMOVE'
ORDER BY table_name, item_key, change_order
