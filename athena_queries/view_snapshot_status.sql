-- name: view_snapshot_status
-- kind: view
-- question: Which state snapshots of each table are finished, and which are stale (the lake now holds a change at or before a snapshot's instant that its build did not read)? As-of starts from the latest one that is not.
-- parameters:
-- output:
--   table_name      DynamoDB table name
--   snapshot_date   partition: date of the snapshot's instant (UTC)
--   snapshot_ms     the snapshot's instant, epoch ms: changes at or before it are in it
--   made_at         when the build ran, ISO-8601 UTC; names the build
--   visible_before  made_at less the delivery's buffering, as the build recorded it
--   late_changes    events at or before snapshot_ms the lake holds now and the build did not read
--   stale           true when late_changes > 0: never read it; build a new one
-- note: create it in Athena with CREATE OR REPLACE VIEW snapshot_status AS <this query>;
-- note: the maintenance state machine creates it. Only builds with their "complete" row
-- note: count, so a build that failed half-way is never read. Staleness is decided by
-- note: what the build read, not by clocks: per change partition up to the snapshot's
-- note: date, the distinct event_ids at or before its instant now, against the count its
-- note: "partition" row recorded. A late file adds events; a redelivered event (same
-- note: event_id) or a compaction adds none. A build without partition rows (made before
-- note: they were recorded) is stale. Reads the event_id column of the history once, and
-- note: the timestamp column of each build's own date. The daily maintenance picks its
-- note: base with snapshot_check instead: the same rule, counted only where a late change
-- note: can still land after the build (the last 49 hours of event dates before made_at).
WITH builds AS (
    -- One "complete" row per finished build (the files' last row group: cheap to find).
    SELECT DISTINCT table_name, snapshot_date, snapshot_ms, made_at, visible_before
    FROM snapshots
    WHERE row_kind = 'complete'
),
recorded AS (
    SELECT table_name, snapshot_date, snapshot_ms, made_at, source_dt, source_events
    FROM snapshots
    WHERE row_kind = 'partition'
),
day_counts AS (
    -- A change lands in the partition of its event date, so every event of a partition
    -- before a build's date is at or before its instant: those partitions are counted
    -- once for all builds (one pass over the history, not one per build).
    SELECT table_name, dt, count(DISTINCT event_id) AS events
    FROM changes
    GROUP BY table_name, dt
),
present AS (
    SELECT b.table_name, b.snapshot_date, b.snapshot_ms, b.made_at, d.dt, d.events
    FROM builds AS b
    JOIN day_counts AS d
      ON d.table_name = b.table_name
     AND d.dt < b.snapshot_date
    UNION ALL
    -- The build's own date: the events at or before its instant only.
    SELECT b.table_name, b.snapshot_date, b.snapshot_ms, b.made_at, c.dt,
           count(DISTINCT c.event_id) AS events
    FROM builds AS b
    JOIN changes AS c
      ON c.table_name = b.table_name
     AND c.dt = b.snapshot_date
     AND c."timestamp" <= b.snapshot_ms
    GROUP BY b.table_name, b.snapshot_date, b.snapshot_ms, b.made_at, c.dt
),
late AS (
    SELECT p.table_name, p.snapshot_date, p.snapshot_ms, p.made_at,
           sum(p.events - coalesce(r.source_events, 0)) AS late_changes
    FROM present AS p
    LEFT JOIN recorded AS r
      ON r.table_name = p.table_name
     AND r.snapshot_date = p.snapshot_date
     AND r.snapshot_ms = p.snapshot_ms
     AND r.made_at = p.made_at
     AND r.source_dt = p.dt
    WHERE p.events > coalesce(r.source_events, 0)
    GROUP BY p.table_name, p.snapshot_date, p.snapshot_ms, p.made_at
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
