-- name: view_changes_ordered
-- kind: view
-- question: Every change row with its change_order, the one key that orders an item's changes: the greatest is the item's latest row. The as-of queries, the snapshots and the current-state view select from it.
-- parameters:
-- output:
--   (every column of changes)  see glue/changes.*.json; one row per stored row
--   change_order  the event second, then the sequence number as a number, as one sortable string (see docs/queries.md)
-- note: create it in Athena with CREATE OR REPLACE VIEW changes_ordered AS <this query>;
-- note: the maintenance state machine creates it. A plain projection, so filters on
-- note: table_name, dt and "timestamp" still prune partitions and row groups.
SELECT
    *,
    -- Event second first (a backfill's SNAPSHOT rows sort by when they were read), then
    -- the decimal sequence number compared as a number: its length, then its text.
    lpad(CAST("timestamp" AS varchar), 15, '0')
        || lpad(CAST(length(sequence_number) AS varchar), 3, '0')
        || sequence_number AS change_order
FROM changes
