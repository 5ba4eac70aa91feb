"""CloudTrail DynamoDB data events: parsing AWS's documented records, keys, PartiQL.

tests/events/cloudtrail-dynamodb-log-entries.json holds the records of AWS's page
"Understanding DynamoDB log file entries" (Amazon DynamoDB Developer Guide,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/understanding-ddb-log-entries.html):
DeleteTable, PutItem, UpdateItem (failed), TransactWriteItems (successful and with
TransactionCanceledException), ExecuteStatement, BatchExecuteStatement and GetRecords.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ddbtrail.core import cloudtrail, codec

DOC = "cloudtrail-dynamodb-log-entries.json"
MUSIC = {"Artist": "S", "SongTitle": "S"}


def _key(artist: str, title: str) -> str:
    return codec.item_key({"Artist": {"S": artist}, "SongTitle": {"S": title}})


def test_documented_records_parse_to_the_writes_only(load_event: Callable[[str], Any]) -> None:
    events, problems = cloudtrail.parse_log(load_event(DOC))
    assert problems == []
    # DeleteTable is a management event and GetRecords reads: neither is a write.
    assert [e.event_name for e in events] == [
        "PutItem", "UpdateItem", "TransactWriteItems", "TransactWriteItems",
        "ExecuteStatement", "BatchExecuteStatement"]
    put = events[0]
    assert put.actor == "arn:aws:sts::111122223333:assumed-role/users/bob"
    assert put.actor_type == "AssumedRole"
    assert put.source_ip == "192.0.2.0"
    assert put.user_agent.startswith("aws-cli/1.15.64")
    assert put.event_time == "2019-01-19T15:41:54Z"
    assert put.second == 1547912514
    assert not put.failed
    assert cloudtrail.event_items(put, {"Music": MUSIC}) == {
        ("Music", _key("No One You Know", "Scared of My Shadow"))}
    assert events[1].failed and events[1].error_code == "ConditionalCheckFailedException"
    assert events[3].failed


def test_transaction_names_its_writes_not_its_condition_check(
        load_event: Callable[[str], Any]) -> None:
    events, _ = cloudtrail.parse_log(load_event(DOC))
    transact = events[2]
    # AWS's example spells tableName/TableName and key/Key both ways; all are read.
    assert [t.operation for t in transact.targets] == ["Put", "Update", "Delete"]
    assert cloudtrail.event_items(transact, {"Music": MUSIC}) == {
        ("Music", _key("No One You Know", t))
        for t in ("Call Me Today", "Call Me Tomorrow", "Call Me Yesterday")}
    # Other tables' events name nothing of interest.
    assert cloudtrail.event_items(transact, {"Orders": {"Id": "N"}}) == set()


def test_partiql_update_names_its_key_redacted_insert_and_select_name_nothing(
        load_event: Callable[[str], Any]) -> None:
    events, _ = cloudtrail.parse_log(load_event(DOC))
    select, batch = events[4], events[5]
    assert cloudtrail.event_items(select, {"Music": MUSIC}) == set()
    # The UPDATE gives both key attributes; the INSERT's key values are redacted: it is
    # some item of Music, which one unknown.
    assert cloudtrail.event_items(batch, {"Music": MUSIC}) == {
        ("Music", _key("No One You Know", "Call Me Today")), ("Music", None)}


@pytest.mark.parametrize(("statement", "expected"), [
    ('UPDATE "Orders" SET status = ***(Redacted) WHERE "Id" = 101', ("Orders", '{"Id":101}')),
    ("DELETE FROM Orders WHERE Id = 101.0;", ("Orders", '{"Id":101}')),
    ("UPDATE Orders REMOVE note WHERE Id = 7 AND status = ***(Redacted) RETURNING ALL OLD *",
     ("Orders", '{"Id":7}')),
    ("INSERT INTO Orders VALUE {'Id': 5, 'status': ***(Redacted)}", ("Orders", '{"Id":5}')),
    ("UPDATE Orders SET a = 1 WHERE Id = 7 OR Id = 8", None),
    ("UPDATE Orders SET a = 1 WHERE Id IN [7, 8]", None),
    ("DELETE FROM Orders WHERE Id = ***(Redacted)", None),
    ("DELETE FROM Orders WHERE Id = '101'", None),  # a string for an N key: no guess
    ("DELETE FROM Orders WHERE status = 'x'", None),
    ("SELECT * FROM Orders WHERE Id = 1", None),
    ("UPDATE Orders SET a = 'WHERE' WHERE Id = 3", ("Orders", '{"Id":3}')),
])
def test_partiql_keys(statement: str, expected: tuple[str, str] | None) -> None:
    assert cloudtrail.partiql_key(statement, {"Id": "N"}) == expected


@pytest.mark.parametrize(("logged", "types", "expected"), [
    ({"Id": 101}, {"Id": "N"}, '{"Id":101}'),
    ({"Id": "101"}, {"Id": "N"}, '{"Id":101}'),
    ({"Id": {"N": "101.00"}}, {"Id": "N"}, '{"Id":101}'),
    ({"Id": {"S": "101"}}, {"Id": "N"}, None),
    ({"pk": "a", "sk": {"S": "b"}}, {"sk": "S", "pk": "S"}, '{"pk":"a","sk":"b"}'),
    ({"pk": "a"}, {"pk": "S", "sk": "S"}, None),
    ({"Id": 101}, None, '{"Id":101}'),
    ({"Id": "x"}, {"Id": "N"}, None),
    ({"Id": True}, {"Id": "N"}, None),
])
def test_plain_and_typed_keys_meet_the_lake_key(logged: dict[str, Any],
                                                types: dict[str, str] | None,
                                                expected: str | None) -> None:
    parsed = codec.parse_plain(__import__("json").dumps(logged))
    assert cloudtrail.resolve_key(parsed, types) == expected


def test_bad_records_are_named_and_the_rest_still_count(load_event: Callable[[str], Any]) -> None:
    doc = load_event(DOC)
    broken = dict(doc["Records"][1], eventID="broken-1")
    broken["requestParameters"] = {"tableName": "Music"}  # no key
    doc["Records"].insert(0, broken)
    doc["Records"].insert(0, "not an object")
    events, problems = cloudtrail.parse_log(doc, where="f.json.gz")
    assert len(events) == 6
    assert problems == ["f.json.gz: a record is not a JSON object",
                        "f.json.gz: record broken-1: PutItem without requestParameters "
                        "tableName and key"]
    assert cloudtrail.parse_log({"nope": 1}, where="x")[1] == [
        "x: not a CloudTrail log file (no Records list)"]


def test_service_identity_is_named_by_its_service() -> None:
    assert cloudtrail.actor_of({"type": "AWSService", "invokedBy": "dynamodb.amazonaws.com"}) \
        == ("dynamodb.amazonaws.com", "AWSService")
    assert cloudtrail.actor_of({"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"}) == (
        "arn:aws:iam::1:user/a", "IAMUser")


def test_written_records_have_the_documented_shape(load_event: Callable[[str], Any]) -> None:
    documented = load_event(DOC)["Records"][1]  # PutItem (successful)
    written = cloudtrail.write_record(
        event_name="PutItem", event_time="2024-05-01T12:00:00Z", event_id="e-1",
        identity=cloudtrail.assumed_role_identity("123456789012", "orders-service", "s1"),
        account="123456789012", region="us-east-1", items=[("Put", "Orders", {"Id": 101})])
    assert set(written) - {"errorCode", "errorMessage"} == set(documented)
    assert set(written["requestParameters"]) <= set(documented["requestParameters"])
    assert set(written["userIdentity"]) == set(documented["userIdentity"])
    assert set(written["resources"][0]) == set(documented["resources"][0])
    (event,) = cloudtrail.parse_log({"Records": [written]})[0]
    assert cloudtrail.event_items(event, {"Orders": {"Id": "N"}}) == {("Orders", '{"Id":101}')}


ORDERS_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders"


@pytest.mark.parametrize(("event_name", "params"), [
    ("PutItem", {"tableName": ORDERS_ARN, "key": {"Id": 101}}),
    ("TransactWriteItems", {"requestItems": [
        {"operation": "Update", "TableName": ORDERS_ARN, "Key": {"Id": {"N": "101"}}}]}),
    ("BatchWriteItem", {"requestItems": {ORDERS_ARN: [
        {"DeleteRequest": {"Key": {"Id": {"N": "101"}}}}]}}),
    ("ExecuteStatement", {"statement": f'DELETE FROM "{ORDERS_ARN}" WHERE Id = 101'}),
])
def test_a_table_arn_names_the_table(event_name: str, params: dict[str, Any]) -> None:
    # DynamoDB accepts the table's ARN wherever it takes its name.
    record = cloudtrail.write_record(
        event_name="PutItem", event_time="2024-05-01T12:00:00Z", event_id="e-1",
        identity=cloudtrail.iam_user_identity("123456789012", "admin"),
        account="123456789012", region="us-east-1", items=[("Put", "Orders", {"Id": 1})])
    record.update(eventName=event_name, requestParameters=params)
    event = cloudtrail.parse_record(record)
    assert event is not None
    assert cloudtrail.event_items(event, {"Orders": {"Id": "N"}}) == {("Orders", '{"Id":101}')}


@pytest.mark.parametrize("logged", [
    "Orders", "arn:aws:dynamodb:eu-west-1:1:table/Orders",
    "arn:aws-cn:dynamodb:cn-north-1:1:table/Orders"])
def test_table_name_of_a_name_or_an_arn(logged: str) -> None:
    assert cloudtrail.table_name(logged) == "Orders"


def test_an_index_or_stream_arn_is_not_the_table() -> None:
    for other in ("arn:aws:dynamodb:us-east-1:1:table/Orders/stream/2024",
                  "arn:aws:s3:::table/Orders"):
        assert cloudtrail.table_name(other) == other
