-- name: view_current_state
-- kind: view
-- question: Every live item of every table as of the latest change in the lake; a view for BI tools.
-- parameters:
-- output:
--   table_name           DynamoDB table name
--   item_key             canonical item key
--   keys                 the key attributes, plain JSON
--   item                 the item's current attributes, plain JSON
--   type_hints           JSON pointer -> B|SS|NS|BS; the item's are under /new_image
--   last_event_time      time of the item's last change, ISO-8601 UTC
--   last_sequence_number sequence number of that change
--   last_action          action of that change (INSERT | MODIFY | SNAPSHOT)
-- note: create it in Athena with CREATE OR REPLACE VIEW current_state AS <its SQL: ddbtrail query view_current_state --sql>.
-- note: Each table starts from its latest snapshot that is not stale (snapshot_status)
-- note: and reads only the changes after it; a table with none reads its whole history.
WITH usable AS (
    SELECT
        table_name, snapshot_date, snapshot_ms, made_at,
        row_number() OVER (
            PARTITION BY table_name ORDER BY snapshot_ms DESC, made_at DESC
        ) AS newest
    FROM snapshot_status
    WHERE NOT stale
),
chosen AS (
    SELECT table_name, snapshot_date, snapshot_ms, made_at FROM usable WHERE newest = 1
),
candidates AS (
    SELECT s.table_name, s.item_key, s.keys, s.new_image, s.type_hints, s.event_time,
           s.sequence_number, s.action, s.change_order, s.ingested_at
    FROM snapshots AS s
    JOIN chosen AS c
      ON s.table_name = c.table_name
     AND s.snapshot_date = c.snapshot_date
     AND s.snapshot_ms = c.snapshot_ms
     AND s.made_at = c.made_at
    WHERE s.row_kind = 'item'
    UNION ALL
    SELECT o.table_name, o.item_key, o.keys, o.new_image, o.type_hints, o.event_time,
           o.sequence_number, o.action, o.change_order, o.ingested_at
    FROM changes_ordered AS o
    JOIN chosen AS c
      ON o.table_name = c.table_name
     AND o.dt >= c.snapshot_date
     AND o."timestamp" > c.snapshot_ms
    UNION ALL
    SELECT o.table_name, o.item_key, o.keys, o.new_image, o.type_hints, o.event_time,
           o.sequence_number, o.action, o.change_order, o.ingested_at
    FROM changes_ordered AS o
    WHERE o.table_name NOT IN (SELECT table_name FROM chosen)
)
{{ item_state }}
