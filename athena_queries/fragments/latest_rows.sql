-- name: latest_rows
-- kind: fragment
-- question: The latest-row rule: of the rows of a CTE named candidates (table_name, item_key, action, change_order, ingested_at, ...), each item's latest one, unless it is a REMOVE. Every column of candidates, and recency.
-- parameters:
-- output:
--   (every column of candidates)  the item's latest row
--   recency                       1
-- note: "latest" is the greatest change_order (view changes_ordered, docs/queries.md); of
-- note: two copies of one event (at-least-once delivery), the first ingested, as changes_dedup.
SELECT *
FROM (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY table_name, item_key
            ORDER BY change_order DESC, ingested_at
        ) AS recency
    FROM candidates
) AS ranked
WHERE recency = 1
  AND action <> 'REMOVE'
