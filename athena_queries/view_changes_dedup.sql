-- name: view_changes_dedup
-- kind: view
-- question: The change rows with repeated deliveries removed (one row per table_name, event_id); a view for BI tools.
-- parameters:
-- output:
--   (every column of changes)  see glue/changes.*.json; one row per change
-- note: create it in Athena with CREATE OR REPLACE VIEW changes_dedup AS <this query>.
SELECT
    schema_version, event_id, sequence_number, action, item_key, keys, old_image, new_image,
    type_hints, changed_attributes, "timestamp", event_time, ingested_at, stream_view_type,
    size_bytes, ttl_delete, user_identity, event_source, aws_region, spill_uri, snapshot_id,
    table_name, dt
FROM (
    SELECT
        *,
        row_number() OVER (PARTITION BY table_name, event_id ORDER BY ingested_at) AS copy_number
    FROM changes
) AS numbered
WHERE copy_number = 1
