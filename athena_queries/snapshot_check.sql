-- name: snapshot_check
-- kind: query
-- question: Is one finished snapshot build stale, counting only the change partitions that could still gain a change after the build was made? The daily maintenance asks it of each snapshot_candidates row, newest first.
-- parameters:
--   table_name         string     DynamoDB table name
--   candidate          timestamp  the build's instant (a snapshot_candidates row)
--   candidate          timestamp  the same instant again (its partition)
--   candidate_made_at  string     the build's made_at
--   table_name         string     the same table again
--   candidate_made_at  string     the same made_at again: partitions from its date less 49 hours on are counted
--   candidate          timestamp  the same instant again (last partition counted)
--   candidate          timestamp  the same instant again (events at or before it count)
-- output:
--   late_changes  events at or before the instant, in the partitions counted, that the build did not read
--   stale         true when late_changes > 0: do not build on it
-- note: The one staleness rule of view_snapshot_status (a change partition holding more
-- note: distinct event_ids at or before the instant than the build recorded), read only
-- note: where a change can still land after the build: a change reaches the lake at most
-- note: 49 hours after its event time (DynamoDB Streams keeps a record 24 h, Firehose
-- note: retries a failed S3 delivery for 24 h and buffers up to 900 s, plus an hour of
-- note: margin; snapshots.LATE_ARRIVAL_HOURS), so a partition whose date ended more than
-- note: 49 hours before made_at holds what the build counted in it. The daily run thus
-- note: reads the build's last two or three days of event_id, never the history.
-- note: Only the daily maintenance uses this bound, to pick what to build on. Readers
-- note: (view_snapshot_status, ddbtrail as-of and snapshot) check every partition, so
-- note: a change that came later than the bound (see docs/queries.md) makes a snapshot
-- note: stale to them and is never read wrong.
WITH recorded AS (
    SELECT source_dt, source_events
    FROM snapshots
    WHERE table_name = ?
      AND snapshot_ms = CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
      AND snapshot_date = date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
      AND made_at = ?
      AND row_kind = 'partition'
),
present AS (
    SELECT dt, count(DISTINCT event_id) AS events
    FROM changes
    WHERE table_name = ?
      AND dt >= date_format((from_iso8601_timestamp(?) - INTERVAL '49' HOUR) AT TIME ZONE 'UTC',
                            '%Y-%m-%d')
      AND dt <= date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d')
      AND "timestamp" <= CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT)
    GROUP BY dt
)
SELECT
    coalesce(sum(p.events - coalesce(r.source_events, 0)), 0) AS late_changes,
    coalesce(sum(p.events - coalesce(r.source_events, 0)), 0) > 0 AS stale
FROM present AS p
LEFT JOIN recorded AS r
  ON r.source_dt = p.dt
WHERE p.events > coalesce(r.source_events, 0)
