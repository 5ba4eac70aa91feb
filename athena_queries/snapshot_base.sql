-- name: snapshot_base
-- kind: query
-- question: Which snapshot should a new snapshot of a table at an instant build on? The latest finished one at or before it that is not stale; no row: build from the whole history.
-- parameters:
--   table_name  string     DynamoDB table name
--   at          timestamp  the new snapshot's instant
-- output:
--   snapshot_ms  the base snapshot's instant, epoch ms
--   made_at      its made_at (names the build)
SELECT snapshot_ms, made_at
FROM snapshot_status
WHERE table_name = ?
  AND NOT stale
  AND snapshot_ms <= CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
ORDER BY snapshot_ms DESC, made_at DESC
LIMIT 1
