-- name: item_state
-- kind: fragment
-- question: Each live item's state from a CTE named candidates (see latest_rows): its latest row's image and when and how that row was made.
-- parameters:
-- output:
--   table_name           DynamoDB table name
--   item_key             canonical item key
--   keys                 the key attributes, plain JSON
--   item                 the item's attributes, plain JSON (null if the stream carries no new image)
--   type_hints           JSON pointer -> B|SS|NS|BS; the item's are under /new_image
--   last_event_time      time of the item's latest change, ISO-8601 UTC
--   last_sequence_number sequence number of that change
--   last_action          action of that change (INSERT | MODIFY | SNAPSHOT)
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
    {{ latest_rows }}
) AS latest
