-- name: receipt_matches
-- kind: fragment
-- question: The reconciliation rule, as CTEs ending in matches: every change received (named by a receipt) or stored (in the lake) in a window, once per event_id, and whether the other side has it. The query follows with SELECT ... FROM matches.
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive (receipt partitions from the day before)
--   to          timestamp  window end, ISO-8601, exclusive (receipt partitions to the day after)
--   from        timestamp  the same start again (received in the window)
--   to          timestamp  the same end again (received in the window)
--   table_name  string     the same table again (lake rows)
--   from        timestamp  the same start again (lake partitions from two days before)
--   to          timestamp  the same end again (lake partitions to the day after)
--   from        timestamp  the same start again (first ingested in the window)
--   to          timestamp  the same end again (first ingested in the window)
-- output:
--   table_name       DynamoDB table name
--   day              UTC day the change was received (side received) or first ingested (side stored)
--   side             received (a receipt names it) or stored (the lake holds it)
--   event_id         stream eventID (SNAPSHOT rows: the backfill's own id)
--   item_key         canonical item key
--   action           INSERT | MODIFY | REMOVE | SNAPSHOT
--   sequence_number  stream sequence number (null for SNAPSHOT)
--   matched          true when the other side has the event_id
-- note: a change is received when a receipt names it: capture wrote the receipt after the
-- note: delivery service accepted the row. Duplicates (at-least-once delivery, redrives) count
-- note: once, by event_id. Receipts are matched a day either side of the window and lake rows
-- note: from two days before it (DynamoDB Streams keep a change 24 hours), so a change
-- note: received just before midnight, or delivered late, is never a false alarm. End the
-- note: window at least 15 minutes in the past: Firehose buffers rows up to 900 seconds first.
WITH received_all AS (
    SELECT
        r.table_name,
        c.event_id,
        min(r.received_at) AS received_at,
        min(c.item_key) AS item_key,
        min(c.action) AS action,
        min(c.sequence_number) AS sequence_number
    FROM receipts AS r
    CROSS JOIN UNNEST(r.changes) AS c (event_id, item_key, action, sequence_number, row_dt)
    WHERE ? IN ('*', r.table_name)
      AND r.dt >= date_format(date_add('day', -1, from_iso8601_timestamp(?)) AT TIME ZONE 'UTC', '%Y-%m-%d')
      AND r.dt <= date_format(date_add('day', 1, from_iso8601_timestamp(?)) AT TIME ZONE 'UTC', '%Y-%m-%d')
    GROUP BY r.table_name, c.event_id
),
received AS (
    SELECT *
    FROM received_all
    WHERE from_iso8601_timestamp(received_at) >= from_iso8601_timestamp(?)
      AND from_iso8601_timestamp(received_at) < from_iso8601_timestamp(?)
),
stored_all AS (
    SELECT
        table_name,
        event_id,
        min(ingested_at) AS ingested_at,
        min(item_key) AS item_key,
        min(action) AS action,
        min(sequence_number) AS sequence_number
    FROM changes
    WHERE ? IN ('*', table_name)
      AND dt >= date_format(date_add('day', -2, from_iso8601_timestamp(?)) AT TIME ZONE 'UTC', '%Y-%m-%d')
      AND dt <= date_format(date_add('day', 1, from_iso8601_timestamp(?)) AT TIME ZONE 'UTC', '%Y-%m-%d')
    GROUP BY table_name, event_id
),
stored AS (
    SELECT *
    FROM stored_all
    WHERE from_iso8601_timestamp(ingested_at) >= from_iso8601_timestamp(?)
      AND from_iso8601_timestamp(ingested_at) < from_iso8601_timestamp(?)
),
matches AS (
    SELECT
        r.table_name,
        substr(r.received_at, 1, 10) AS day,
        'received' AS side,
        r.event_id,
        r.item_key,
        r.action,
        r.sequence_number,
        s.event_id IS NOT NULL AS matched
    FROM received AS r
    LEFT JOIN stored_all AS s ON s.table_name = r.table_name AND s.event_id = r.event_id
    UNION ALL
    SELECT
        s.table_name,
        substr(s.ingested_at, 1, 10) AS day,
        'stored' AS side,
        s.event_id,
        s.item_key,
        s.action,
        s.sequence_number,
        r.event_id IS NOT NULL AS matched
    FROM stored AS s
    LEFT JOIN received_all AS r ON r.table_name = s.table_name AND r.event_id = s.event_id
)
