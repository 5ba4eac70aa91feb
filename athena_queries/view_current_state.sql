-- name: view_current_state
-- kind: view
-- question: Every live item of every table as of the latest change in the lake; a view for BI tools.
-- parameters:
-- output:
--   table_name           DynamoDB table name
--   item_key             canonical item key
--   keys                 the key attributes, plain JSON
--   item                 the item's current attributes, plain JSON
--   type_hints           JSON pointer -> B|SS|NS|BS; the item's are under /new_image
--   last_event_time      time of the item's last change, ISO-8601 UTC
--   last_sequence_number sequence number of that change
--   last_action          action of that change (INSERT | MODIFY | SNAPSHOT)
-- note: create it in Athena with CREATE OR REPLACE VIEW current_state AS <this query>.
SELECT
    table_name,
    item_key,
    keys,
    new_image AS item,
    type_hints,
    event_time AS last_event_time,
    sequence_number AS last_sequence_number,
    action AS last_action
FROM (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY table_name, item_key
            ORDER BY change_order DESC
        ) AS recency
    FROM changes_ordered
) AS ranked
WHERE recency = 1
  AND action <> 'REMOVE'
