-- name: view_snapshot_status
-- kind: view
-- question: Which state snapshots of each table are finished, and which are stale (a change at or before a snapshot's instant arrived after it was built)? As-of starts from the latest one that is not.
-- parameters:
-- output:
--   table_name      DynamoDB table name
--   snapshot_date   partition: date of the snapshot's instant (UTC)
--   snapshot_ms     the snapshot's instant, epoch ms: changes at or before it are in it
--   made_at         when the build ran, ISO-8601 UTC; names the build
--   visible_before  rows ingested before this were in the lake when it was built
--   late_changes    changes at or before snapshot_ms ingested at or after visible_before
--   stale           true when late_changes > 0: never read it; build a new one
-- note: create it in Athena with CREATE OR REPLACE VIEW snapshot_status AS <this query>;
-- note: the maintenance state machine creates it. Only builds with their "complete" row
-- note: count, so a build that failed half-way is never read. Reads only the complete rows
-- note: and the ingested_at/timestamp columns of the changes up to the snapshot's date.
WITH builds AS (
    -- One "complete" row per finished build (the files' last row group: cheap to find).
    SELECT DISTINCT table_name, snapshot_date, snapshot_ms, made_at, visible_before
    FROM snapshots
    WHERE row_kind = 'complete'
),
late AS (
    -- A late change lands in the partition of its event date, so only partitions up to
    -- the snapshot's date can hold one.
    SELECT b.table_name, b.snapshot_date, b.snapshot_ms, b.made_at, count(*) AS late_changes
    FROM builds AS b
    JOIN changes AS c
      ON c.table_name = b.table_name
     AND c.dt <= b.snapshot_date
     AND c."timestamp" <= b.snapshot_ms
     AND c.ingested_at >= b.visible_before
    GROUP BY b.table_name, b.snapshot_date, b.snapshot_ms, b.made_at
)
SELECT
    b.table_name,
    b.snapshot_date,
    b.snapshot_ms,
    b.made_at,
    b.visible_before,
    coalesce(l.late_changes, 0) AS late_changes,
    coalesce(l.late_changes, 0) > 0 AS stale
FROM builds AS b
LEFT JOIN late AS l
  ON l.table_name = b.table_name
 AND l.snapshot_date = b.snapshot_date
 AND l.snapshot_ms = b.snapshot_ms
 AND l.made_at = b.made_at
