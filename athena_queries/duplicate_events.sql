-- name: duplicate_events
-- kind: audit
-- question: Does any event_id hold copies that disagree? Zero rows on a healthy lake.
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   table_name  DynamoDB table name
--   event_id    stream eventID whose copies disagree
--   copies      rows holding that event_id
--   versions    distinct contents among those copies (more than 1)
--   first_seen  earliest ingested_at of the copies, ISO-8601 UTC
-- note: identical copies are expected (delivery is at-least-once) and every query drops them;
-- copies with different content mean a corrupted or double-encoded write.
SELECT
    table_name,
    event_id,
    count(*) AS copies,
    count(DISTINCT concat(
        sequence_number, '|', item_key, '|', action, '|',
        coalesce(old_image, '-'), '|', coalesce(new_image, '-'), '|',
        coalesce(type_hints, '-')
    )) AS versions,
    min(ingested_at) AS first_seen
FROM changes
WHERE ? IN ('*', table_name)
  {{ change_window }}
GROUP BY table_name, event_id
HAVING count(DISTINCT concat(
    sequence_number, '|', item_key, '|', action, '|',
    coalesce(old_image, '-'), '|', coalesce(new_image, '-'), '|',
    coalesce(type_hints, '-')
)) > 1
ORDER BY table_name, event_id
