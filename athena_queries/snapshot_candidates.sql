-- name: snapshot_candidates
-- kind: query
-- question: Which finished snapshots of a table could a new snapshot at an instant build on? Newest first, at most 30; the daily maintenance asks snapshot_check of each in turn and builds on the first that is not stale (none: from the whole history).
-- parameters:
--   table_name  string     DynamoDB table name
--   at          timestamp  the new snapshot's instant
-- output:
--   snapshot_ms  a finished build's instant, epoch ms
--   made_at      its made_at (names the build)
-- note: reads the snapshots table only (its "complete" and "partition" rows), no change.
-- note: A build that recorded no change partition (an empty table, or one made before
-- note: partition rows were recorded) is not offered: snapshot_check trusts what a build
-- note: recorded for the partitions that could not change after it, and it recorded none.
SELECT c.snapshot_ms, c.made_at
FROM snapshots AS c
WHERE c.table_name = ?
  AND c.row_kind = 'complete'
  AND c.snapshot_ms <= CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
  AND EXISTS (
      SELECT 1
      FROM snapshots AS p
      WHERE p.table_name = c.table_name
        AND p.snapshot_date = c.snapshot_date
        AND p.snapshot_ms = c.snapshot_ms
        AND p.made_at = c.made_at
        AND p.row_kind = 'partition'
  )
GROUP BY c.snapshot_ms, c.made_at
ORDER BY c.snapshot_ms DESC, c.made_at DESC
LIMIT 30
