-- name: reconcile_receipts
-- kind: audit
-- question: Per table and day, is every change capture received in the lake, and is every row of the lake accounted for by a receipt? Both gap columns are 0 on a complete trail.
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
--   table_name               DynamoDB table name
--   day                      UTC day: when changes were received, or rows first ingested
--   received                 distinct changes receipts name, received that day
--   in_lake                  distinct changes (event_id) first ingested into the lake that day
--   received_not_in_lake     received that day, absent from the lake (lost in delivery, or deleted)
--   in_lake_without_receipt  first ingested that day, named by no receipt (forged, or a receipt lost)
-- note: the changes themselves: reconcile_receipts_detail. ddbtrail verify runs this SQL on
-- note: DuckDB; the maintenance state machine runs it on Athena and publishes the two gap
-- note: columns as the CloudWatch metrics ReceivedNotInLake and InLakeWithoutReceipt.
{{ receipt_matches }}
SELECT
    table_name,
    day,
    count(CASE WHEN side = 'received' THEN 1 END) AS received,
    count(CASE WHEN side = 'stored' THEN 1 END) AS in_lake,
    count(CASE WHEN side = 'received' AND NOT matched THEN 1 END) AS received_not_in_lake,
    count(CASE WHEN side = 'stored' AND NOT matched THEN 1 END) AS in_lake_without_receipt
FROM matches
GROUP BY table_name, day
ORDER BY table_name, day
