-- name: item_history_with_actor
-- kind: query
-- question: Who changed one item? Each change in a window with the principal of its CloudTrail write event, named only when the match is certain.
-- note: Joins changes with the CloudTrail table (cloudtrail_logs, partition projection on
-- note: `timestamp`, as AWS documents it; see docs/cloudtrail.md). The rule is the CLI's at
-- note: tolerance 0: an event of the same table and item key is a candidate of a change
-- note: when their seconds are at most 1 apart, either side. The item's changes and
-- note: events form runs (a run breaks at a gap over 1 s); a change is exact only when its
-- note: run's events are all one principal's and at least as many as its changes. A run
-- note: within 1 s of the window's edge is never exact here: changes outside the window
-- note: may belong to it. Key values compare as text.
-- note: A table logged by its ARN (arn:aws:dynamodb:R:A:table/NAME) is the table NAME.
-- note: PartiQL statements are not parsed here: each PartiQL write on the table is a
-- note: candidate for every change of the table within a second of it.
-- parameters:
--   table_name  string     DynamoDB table name
--   item_key    string     canonical item key: compact JSON of the key attributes, names sorted, e.g. {"Id":101}
--   from        timestamp  start of the window, inclusive
--   to          timestamp  end of the window, exclusive
--   from        timestamp  start of the window, inclusive
--   to          timestamp  end of the window, exclusive
--   item_key    string     canonical item key
--   from        timestamp  start of the window (runs it cuts)
--   to          timestamp  end of the window (runs it cuts)
--   from        timestamp  start of the window (CloudTrail day folders, from a second before)
--   to          timestamp  end of the window (CloudTrail day folders; the next day is read too)
--   table_name  string     DynamoDB table name
--   table_name  string     DynamoDB table name
-- output:
--   sequence_number      stream sequence number
--   event_time           when the change happened, ISO-8601 UTC
--   action               INSERT | MODIFY | REMOVE | SNAPSHOT
--   changed_attributes   top-level attributes added, removed or changed
--   ttl_delete           true when DynamoDB TTL removed the item
--   old_image            the item before the change, plain JSON
--   new_image            the item after the change, plain JSON
--   event_id             stream eventID
--   timestamp            when the change happened, epoch milliseconds
--   actor                principal ARN (dynamodb.amazonaws.com for TTL) when exact, else null
--   actor_match          exact | ambiguous | none
--   actor_candidates     the principals that may have made it, when ambiguous
--   source_ip            sourceIPAddress of the event, when exact and agreed
--   user_agent           userAgent of the event, when exact and agreed
--   cloudtrail_event     eventName (PutItem, UpdateItem, ...), when exact and agreed
--   cloudtrail_event_id  CloudTrail eventID, when exactly one event matched
WITH item_changes AS (
    {{ item_changes }}
      {{ change_window }}
),
the_item AS (
    SELECT key_map, array_sort(map_keys(key_map)) AS names
    FROM (SELECT CAST(json_parse(?) AS MAP(VARCHAR, JSON)) AS key_map)
),
the_window AS (
    SELECT CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT) AS from_ms,
           CAST(to_unixtime(from_iso8601_timestamp(?)) * 1000 AS BIGINT) AS to_ms
),
trail AS (
    SELECT
        *,
        CASE WHEN useridentity.type = 'AWSService'
             THEN COALESCE(NULLIF(useridentity.invokedby, ''), NULLIF(useridentity.principalid, ''),
                           useridentity.type)
             ELSE COALESCE(NULLIF(useridentity.arn, ''), NULLIF(useridentity.principalid, ''),
                           NULLIF(useridentity.username, ''), NULLIF(useridentity.invokedby, ''),
                           useridentity.type, 'Unknown')
        END AS actor,
        -- CloudTrail may deliver one event twice.
        row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS copy_number
    FROM cloudtrail_logs
    -- A change's candidates start a second before it.
    WHERE "timestamp" BETWEEN date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC'
                                          - INTERVAL '1' SECOND, '%Y/%m/%d')
                          AND date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC' + INTERVAL '1' DAY, '%Y/%m/%d')
      AND eventsource = 'dynamodb.amazonaws.com'
      AND eventcategory = 'Data'
      AND lower(readonly) = 'false'
      -- A failed call changed nothing.
      AND errorcode IS NULL
),
targets AS (
    SELECT eventid, eventtime, eventname, actor, sourceipaddress, useragent,
           COALESCE(json_extract_scalar(requestparameters, '$.tableName'),
                    json_extract_scalar(requestparameters, '$.TableName')) AS logged_table,
           COALESCE(json_extract(requestparameters, '$.key'),
                    json_extract(requestparameters, '$.Key')) AS target_key,
           CAST(NULL AS VARCHAR) AS statement
    FROM trail
    WHERE copy_number = 1 AND eventname IN ('PutItem', 'UpdateItem', 'DeleteItem')
    UNION ALL
    -- TransactWriteItems (and BatchWriteItem in the same list form): one entry per action;
    -- ConditionCheck only reads. AWS's example spells tableName/TableName, key/Key both ways.
    SELECT eventid, eventtime, eventname, actor, sourceipaddress, useragent,
           COALESCE(json_extract_scalar(entry, '$.tableName'),
                    json_extract_scalar(entry, '$.TableName')),
           COALESCE(json_extract(entry, '$.key'), json_extract(entry, '$.Key')),
           CAST(NULL AS VARCHAR)
    FROM trail
    CROSS JOIN UNNEST(TRY_CAST(json_extract(requestparameters, '$.requestItems') AS ARRAY(JSON)))
        AS items (entry)
    WHERE copy_number = 1 AND eventname IN ('TransactWriteItems', 'BatchWriteItem')
      AND COALESCE(json_extract_scalar(entry, '$.operation'),
                   json_extract_scalar(entry, '$.Operation')) IN ('Put', 'Update', 'Delete')
    UNION ALL
    SELECT eventid, eventtime, eventname, actor, sourceipaddress, useragent,
           CAST(NULL AS VARCHAR), CAST(NULL AS JSON),
           json_extract_scalar(requestparameters, '$.statement')
    FROM trail
    WHERE copy_number = 1 AND eventname = 'ExecuteStatement'
    UNION ALL
    SELECT eventid, eventtime, eventname, actor, sourceipaddress, useragent,
           CAST(NULL AS VARCHAR), CAST(NULL AS JSON), json_extract_scalar(entry, '$.statement')
    FROM trail
    CROSS JOIN UNNEST(TRY_CAST(COALESCE(json_extract(requestparameters, '$.requestItems'),
                                        json_extract(requestparameters, '$.transactStatements'))
                               AS ARRAY(JSON))) AS statements (entry)
    WHERE copy_number = 1 AND eventname IN ('BatchExecuteStatement', 'ExecuteTransaction')
),
keyed AS (
    SELECT t.*, i.names, i.key_map,
           -- DynamoDB takes the table's ARN for its name: arn:aws:dynamodb:R:A:table/NAME.
           regexp_replace(t.logged_table, '^arn:[^:]+:dynamodb:[^:]*:[^:]*:table/', '')
               AS target_table,
           TRY_CAST(t.target_key AS MAP(VARCHAR, JSON)) AS target_map
    FROM targets AS t
    CROSS JOIN the_item AS i
),
-- A key value plain ("x", 101) or typed ({"S": "x"}, {"N": "101"}), as text.
key_values AS (
    SELECT *,
           COALESCE(json_extract_scalar(element_at(target_map, element_at(names, 1)), '$.S'),
                    json_extract_scalar(element_at(target_map, element_at(names, 1)), '$.N'),
                    json_extract_scalar(element_at(target_map, element_at(names, 1)), '$.B'),
                    json_extract_scalar(element_at(target_map, element_at(names, 1)), '$'))
               AS target_1,
           COALESCE(json_extract_scalar(element_at(target_map, element_at(names, 2)), '$.S'),
                    json_extract_scalar(element_at(target_map, element_at(names, 2)), '$.N'),
                    json_extract_scalar(element_at(target_map, element_at(names, 2)), '$.B'),
                    json_extract_scalar(element_at(target_map, element_at(names, 2)), '$'))
               AS target_2,
           json_extract_scalar(element_at(key_map, element_at(names, 1)), '$') AS item_1,
           json_extract_scalar(element_at(key_map, element_at(names, 2)), '$') AS item_2
    FROM keyed
),
item_events AS (
    SELECT DISTINCT eventid, eventname, actor, sourceipaddress, useragent,
           CAST(to_unixtime(from_iso8601_timestamp(eventtime)) * 1000 AS BIGINT) AS event_ms
    FROM key_values
    WHERE (statement IS NULL
           AND target_table = ?
           AND cardinality(map_keys(target_map)) = cardinality(names)
           AND target_1 = item_1
           AND (cardinality(names) < 2 OR target_2 = item_2))
       OR (statement IS NOT NULL
           AND regexp_extract(statement,
                   '(?i)^\s*(?:UPDATE|DELETE\s+FROM|INSERT\s+INTO)\s+"?(?:arn:[^:"]+:dynamodb:[^:"]*:[^:"]*:table/)?([A-Za-z0-9_.\-]+)', 1) = ?)
),
change_points AS (
    SELECT event_id, "timestamp" - "timestamp" % 1000 AS second_ms
    FROM item_changes
    WHERE copy_number = 1 AND NOT ttl_delete AND action <> 'SNAPSHOT'
),
-- Runs: the seconds holding the item's changes and events, broken at gaps over 1 s.
run_marks AS (
    SELECT second_ms,
           IF(second_ms - lag(second_ms) OVER (ORDER BY second_ms) <= 1000, 0, 1) AS starts_run
    FROM (SELECT second_ms FROM change_points UNION SELECT event_ms FROM item_events)
),
runs AS (
    SELECT second_ms,
           sum(starts_run) OVER (ORDER BY second_ms ROWS BETWEEN UNBOUNDED PRECEDING
                                                        AND CURRENT ROW) AS run_id
    FROM run_marks
),
run_stats AS (
    SELECT r.run_id,
           min(r.second_ms) AS first_ms,
           max(r.second_ms) AS last_ms,
           sum(COALESCE(es.events, 0)) AS events,
           sum(COALESCE(cs.changes, 0)) AS changes
    FROM runs AS r
    LEFT JOIN (SELECT event_ms, count(*) AS events FROM item_events GROUP BY event_ms) AS es
        ON es.event_ms = r.second_ms
    LEFT JOIN (SELECT second_ms, count(*) AS changes FROM change_points GROUP BY second_ms)
        AS cs ON cs.second_ms = r.second_ms
    GROUP BY r.run_id
),
run_actors AS (
    SELECT r.run_id, count(DISTINCT e.actor) AS actors
    FROM runs AS r
    JOIN item_events AS e ON e.event_ms = r.second_ms
    GROUP BY r.run_id
),
-- Each change's candidates: the item's events at most a second away, either side.
candidates AS (
    SELECT
        c.event_id AS change_id,
        count(*) AS events,
        max(e.actor) AS actor,
        array_sort(array_distinct(array_agg(e.actor))) AS principals,
        IF(count(DISTINCT e.sourceipaddress) = 1 AND count(e.sourceipaddress) = count(*),
           max(e.sourceipaddress)) AS source_ip,
        IF(count(DISTINCT e.useragent) = 1 AND count(e.useragent) = count(*),
           max(e.useragent)) AS user_agent,
        IF(count(DISTINCT e.eventname) = 1, max(e.eventname)) AS cloudtrail_event,
        IF(count(*) = 1, max(e.eventid)) AS cloudtrail_event_id
    FROM change_points AS c
    JOIN item_events AS e ON abs(e.event_ms - c.second_ms) <= 1000
    GROUP BY c.event_id
),
matched AS (
    SELECT
        c.*,
        CASE
            WHEN c.ttl_delete THEN 'exact'
            WHEN c.action = 'SNAPSHOT' OR n.events IS NULL THEN 'none'
            -- One principal's events through the whole run, at least one per change, in
            -- a run the window does not cut.
            WHEN a.actors = 1 AND s.events >= s.changes
                 AND s.first_ms - 1000 >= w.from_ms AND s.last_ms + 2000 <= w.to_ms
                THEN 'exact'
            ELSE 'ambiguous'
        END AS actor_match,
        n.actor AS near_actor, n.principals, n.source_ip AS near_ip,
        n.user_agent AS near_agent, n.cloudtrail_event AS near_event,
        n.cloudtrail_event_id AS near_event_id
    FROM item_changes AS c
    CROSS JOIN the_window AS w
    LEFT JOIN candidates AS n
        ON n.change_id = c.event_id AND NOT c.ttl_delete AND c.action <> 'SNAPSHOT'
    LEFT JOIN runs AS r ON r.second_ms = c."timestamp" - c."timestamp" % 1000
    LEFT JOIN run_stats AS s ON s.run_id = r.run_id
    LEFT JOIN run_actors AS a ON a.run_id = r.run_id
    WHERE c.copy_number = 1
)
SELECT
    sequence_number,
    event_time,
    action,
    changed_attributes,
    ttl_delete,
    old_image,
    new_image,
    event_id,
    "timestamp",
    CASE WHEN ttl_delete THEN 'dynamodb.amazonaws.com'
         WHEN actor_match = 'exact' THEN near_actor END AS actor,
    actor_match,
    CASE WHEN actor_match = 'ambiguous' THEN principals
         ELSE CAST(ARRAY[] AS ARRAY(VARCHAR)) END AS actor_candidates,
    IF(actor_match = 'exact' AND NOT ttl_delete, near_ip) AS source_ip,
    IF(actor_match = 'exact' AND NOT ttl_delete, near_agent) AS user_agent,
    CASE WHEN ttl_delete THEN 'TTL'
         WHEN actor_match = 'exact' THEN near_event END AS cloudtrail_event,
    IF(actor_match = 'exact' AND NOT ttl_delete, near_event_id) AS cloudtrail_event_id
FROM matched
-- The one order of an item's changes: see view_changes_ordered.sql and docs/queries.md.
ORDER BY change_order
