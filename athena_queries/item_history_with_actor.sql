-- name: item_history_with_actor
-- kind: query
-- question: Who changed one item? Each change in a window with the principal of its CloudTrail write event, named only when the match is certain.
-- note: Joins changes with the CloudTrail table (cloudtrail_logs, partition projection on
-- note: `timestamp`, as AWS documents it; see docs/cloudtrail.md). The rule is the CLI's at
-- note: tolerance 0: an event matches a change of the same table and item key in the same
-- note: second; a change is exact only when the second's events of the item are all one
-- note: principal's and at least as many as its changes. Key values compare as text.
-- note: A table logged by its ARN (arn:aws:dynamodb:R:A:table/NAME) is the table NAME.
-- note: PartiQL statements are not parsed here: each PartiQL write on the table is a
-- note: candidate for every change of the table in its second.
-- parameters:
--   table_name  string     DynamoDB table name
--   item_key    string     canonical item key: compact JSON of the key attributes, names sorted, e.g. {"Id":101}
--   from        timestamp  start of the window, inclusive
--   to          timestamp  end of the window, exclusive
--   from        timestamp  start of the window, inclusive
--   to          timestamp  end of the window, exclusive
--   item_key    string     canonical item key
--   from        timestamp  start of the window (CloudTrail day folders)
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
    WHERE "timestamp" BETWEEN date_format(from_iso8601_timestamp(?) AT TIME ZONE 'UTC', '%Y/%m/%d')
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
event_seconds AS (
    SELECT
        event_ms,
        count(*) AS events,
        count(DISTINCT actor) AS actors,
        max(actor) AS actor,
        array_sort(array_distinct(array_agg(actor))) AS candidates,
        IF(count(DISTINCT sourceipaddress) = 1 AND count(sourceipaddress) = count(*),
           max(sourceipaddress)) AS source_ip,
        IF(count(DISTINCT useragent) = 1 AND count(useragent) = count(*),
           max(useragent)) AS user_agent,
        IF(count(DISTINCT eventname) = 1, max(eventname)) AS cloudtrail_event,
        IF(count(*) = 1, max(eventid)) AS cloudtrail_event_id
    FROM item_events
    GROUP BY event_ms
),
change_seconds AS (
    SELECT "timestamp" - "timestamp" % 1000 AS second_ms, count(*) AS changes
    FROM item_changes
    WHERE copy_number = 1 AND NOT ttl_delete AND action <> 'SNAPSHOT'
    GROUP BY "timestamp" - "timestamp" % 1000
),
matched AS (
    SELECT
        c.*,
        CASE
            WHEN c.ttl_delete THEN 'exact'
            WHEN c.action = 'SNAPSHOT' OR e.events IS NULL THEN 'none'
            -- Every pairing gives this change one of the second's events: exact when
            -- they are one principal's and no change of the second can be left without.
            WHEN e.actors = 1 AND e.events >= s.changes THEN 'exact'
            ELSE 'ambiguous'
        END AS actor_match,
        e.actor AS second_actor, e.candidates, e.source_ip AS second_ip,
        e.user_agent AS second_agent, e.cloudtrail_event AS second_event,
        e.cloudtrail_event_id AS second_event_id
    FROM item_changes AS c
    LEFT JOIN change_seconds AS s ON s.second_ms = c."timestamp" - c."timestamp" % 1000
    LEFT JOIN event_seconds AS e
        ON e.event_ms = c."timestamp" - c."timestamp" % 1000
        AND NOT c.ttl_delete AND c.action <> 'SNAPSHOT'
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
         WHEN actor_match = 'exact' THEN second_actor END AS actor,
    actor_match,
    CASE WHEN actor_match = 'ambiguous' THEN candidates
         ELSE CAST(ARRAY[] AS ARRAY(VARCHAR)) END AS actor_candidates,
    IF(actor_match = 'exact' AND NOT ttl_delete, second_ip) AS source_ip,
    IF(actor_match = 'exact' AND NOT ttl_delete, second_agent) AS user_agent,
    CASE WHEN ttl_delete THEN 'TTL'
         WHEN actor_match = 'exact' THEN second_event END AS cloudtrail_event,
    IF(actor_match = 'exact' AND NOT ttl_delete, second_event_id) AS cloudtrail_event_id
FROM matched
-- The one order of an item's changes: see view_changes_ordered.sql and docs/queries.md.
ORDER BY change_order
