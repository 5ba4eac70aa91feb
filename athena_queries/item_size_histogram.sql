-- name: item_size_histogram
-- kind: query
-- question: How large are the items being written and deleted (distribution of image sizes)?
-- parameters:
--   table_name  string     DynamoDB table name, or * for every table
--   from        timestamp  window start, ISO-8601, inclusive
--   to          timestamp  window end, ISO-8601, exclusive
--   from        timestamp  the same start again (prunes dt partitions)
--   to          timestamp  the same end again (prunes dt partitions)
-- output:
--   size_from  bucket start: characters of the item's plain-JSON image, inclusive (0, 128, 256, ... doubling)
--   size_to    bucket end, exclusive (the last bucket ends at 2^63-1)
--   action     INSERT | MODIFY | REMOVE | SNAPSHOT
--   changes    distinct changes (event_id) whose item size falls in the bucket; only non-empty buckets, in order of size_from, action
-- note: The size is the length of the new image (the old image for a REMOVE) as plain JSON,
-- note: a close proxy for DynamoDB's item size (400 KB limit); changes without an image
-- note: (KEYS_ONLY streams) are skipped.
WITH sized AS (
    SELECT DISTINCT
        event_id,
        action,
        length(coalesce(new_image, old_image)) AS size_chars
    FROM changes
    WHERE coalesce(new_image, old_image) IS NOT NULL
      AND ? IN ('*', table_name)
      {{ change_window }}
),
buckets (size_from, size_to) AS (
    -- Exact integer edges: log2 in floating point can land a power of two in the wrong bucket.
    VALUES
        (0, 128), (128, 256), (256, 512), (512, 1024), (1024, 2048), (2048, 4096),
        (4096, 8192), (8192, 16384), (16384, 32768), (32768, 65536), (65536, 131072),
        (131072, 262144), (262144, 524288), (524288, 1048576),
        (1048576, 9223372036854775807)
)
SELECT
    b.size_from,
    b.size_to,
    s.action,
    count(DISTINCT s.event_id) AS changes
FROM sized AS s
JOIN buckets AS b ON s.size_chars >= b.size_from AND s.size_chars < b.size_to
GROUP BY b.size_from, b.size_to, s.action
ORDER BY b.size_from, s.action
