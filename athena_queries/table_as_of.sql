-- name: table_as_of
-- kind: query
-- question: What did every item of a table look like at an instant? Items deleted by then are absent.
-- parameters:
--   table_name    string     DynamoDB table name
--   snapshot      timestamp  instant of the state snapshot to start from: the latest row of snapshot_status at or before `at` that is not stale; 1970-01-01 reads the whole history [default: 1970-01-01T00:00:00Z]
--   snapshot      timestamp  the same instant again (its partition)
--   snapshot_made_at  string  made_at of that snapshot [default: none]
--   table_name    string     the same table again
--   snapshot      timestamp  the same snapshot instant again (changes after it count)
--   at            timestamp  the instant, ISO-8601 (e.g. 2024-05-01T12:00:00Z); changes at or before it count
--   snapshot      timestamp  the same snapshot instant again (prunes dt partitions)
--   at            timestamp  the same instant again (prunes dt partitions)
-- output:
--   item_key             canonical item key (rows are ordered by it)
--   keys                 the key attributes, plain JSON
--   item                 the item's attributes at that instant, plain JSON (null if the stream carries no new image)
--   type_hints           JSON pointer -> B|SS|NS|BS; the item's are under /new_image
--   last_event_time      time of the item's last change at or before the instant, ISO-8601 UTC
--   last_sequence_number sequence number of that change
--   last_action          action of that change (INSERT | MODIFY | SNAPSHOT)
-- note: the answer is the same with or without a snapshot: a snapshot holds each live
-- note: item's latest row at its instant, and every change after it orders after those.
WITH candidates AS (
    {{ as_of_candidates }}
),
state AS (
    {{ item_state }}
)
SELECT item_key, keys, item, type_hints, last_event_time, last_sequence_number, last_action
FROM state
ORDER BY item_key
