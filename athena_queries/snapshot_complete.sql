-- name: snapshot_complete
-- kind: query
-- question: The row that marks a snapshot build finished; written after its item rows (the daily maintenance INSERTs it once snapshot_state succeeded), so a failed build is never read.
-- parameters:
--   at              timestamp  the snapshot's instant
--   made_at         timestamp  when the build ran (as given to snapshot_state)
--   visible_before  timestamp  as given to snapshot_state
--   table_name      string     DynamoDB table name
--   at              timestamp  the same instant again (snapshot_date partition)
-- output:
--   event_id         empty
--   sequence_number  empty
--   action           COMPLETE
--   item_key         empty
--   keys             empty
--   new_image        null
--   type_hints       null
--   timestamp        the snapshot's instant, epoch ms
--   event_time       empty
--   ingested_at      empty
--   change_order     empty
--   snapshot_ms      the snapshot's instant, epoch ms
--   made_at          when the build ran
--   visible_before   see the parameter
--   row_kind         complete
--   source_dt        null
--   source_events    null
--   table_name       partition: DynamoDB table name
--   snapshot_date    partition: date of the instant
SELECT
    '' AS event_id, '' AS sequence_number, 'COMPLETE' AS action, '' AS item_key, '' AS keys,
    CAST(NULL AS varchar) AS new_image, CAST(NULL AS varchar) AS type_hints,
    snapshot_ms AS "timestamp", '' AS event_time, '' AS ingested_at, '' AS change_order,
    snapshot_ms, made_at, visible_before, 'complete' AS row_kind,
    CAST(NULL AS varchar) AS source_dt, CAST(NULL AS bigint) AS source_events,
    table_name, snapshot_date
FROM (
    SELECT
        CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT) AS snapshot_ms,
        ? AS made_at,
        ? AS visible_before,
        ? AS table_name,
        date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y-%m-%d') AS snapshot_date
) AS marker
