-- name: reconcile_receipts_detail
-- kind: audit
-- question: Which changes were received but are missing from the lake, and which rows of the lake does no receipt account for? Zero rows on a complete trail.
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive; at least 15 minutes ago (Firehose's buffer)
--   from        timestamp  the same start again
--   to          timestamp  the same end again
--   table_name  string     the same table again
--   from        timestamp  the same start again
--   to          timestamp  the same end again
--   from        timestamp  the same start again
--   to          timestamp  the same end again
-- output:
--   table_name       DynamoDB table name
--   day              UTC day the change was received, or its row first ingested
--   problem          received_not_in_lake | in_lake_without_receipt
--   event_id         stream eventID of the change
--   item_key         canonical item key
--   action           INSERT | MODIFY | REMOVE | SNAPSHOT
--   sequence_number  stream sequence number (null for SNAPSHOT)
-- note: the counts per table and day: reconcile_receipts.
{{ receipt_matches }}
SELECT
    table_name,
    day,
    CASE WHEN side = 'received' THEN 'received_not_in_lake'
         ELSE 'in_lake_without_receipt' END AS problem,
    event_id,
    item_key,
    action,
    sequence_number
FROM matches
WHERE NOT matched
ORDER BY table_name, day, problem, length(sequence_number), sequence_number, event_id
