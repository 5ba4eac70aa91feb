"""Stream records become schema-v1 rows: every view type, action and value type."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from ddbtrail.core import codec
from ddbtrail.core.exceptions import MalformedEvent, MalformedRecord
from ddbtrail.core.flatten import event_records, flatten_record, flatten_records, row_bytes
from ddbtrail.core.row import COLUMN_NAMES, COLUMNS

NOW = 1_800_000_000_123  # ingested_at for every row here


def rows_by_id(event: dict) -> dict[str, dict]:
    rows = (flatten_record(r, ingested_at_ms=NOW) for r in event_records(event))
    return {row["event_id"]: row for row in rows}


@pytest.fixture
def rows(load_event: Any) -> dict[str, dict]:
    return rows_by_id(load_event("every-kind.json"))


def test_every_row_has_exactly_the_schema_columns(rows: dict[str, dict]) -> None:
    for row in rows.values():
        assert tuple(row) == COLUMN_NAMES
        for col in COLUMNS:
            if not col.nullable:
                assert row[col.name] is not None, col.name


def test_insert_keeps_values_plain_and_lossless(rows: dict[str, dict]) -> None:
    row = rows["ins-1"]
    assert row["action"] == "INSERT"
    assert row["table_name"] == "orders"
    assert row["item_key"] == '{"pk":"ORDER#1","sk":1}'
    assert json.loads(row["keys"]) == {"pk": "ORDER#1", "sk": 1}
    assert row["old_image"] is None
    new = json.loads(row["new_image"], parse_int=Decimal, parse_float=Decimal)
    assert new["total"] == Decimal("110111111111111110000000000000000000000")
    assert '"total":110111111111111110000000000000000000000' in row["new_image"]
    assert '"tiny":-1E-130' in row["new_image"]
    assert '"huge":1E+100' in row["new_image"]
    assert new["note"] == ""
    assert new["coupon"] is None
    assert new["gift"] is False
    assert new["photo"] == "AAH+/w=="
    assert new["tags"] == ["red", "blue"]
    assert new["lines"] == [{"sku": "A-1", "qty": 2}, "x"]
    assert json.loads(row["type_hints"]) == {
        "/new_image/photo": "B", "/new_image/tags": "SS", "/new_image/sizes": "NS",
        "/new_image/blobs": "BS", "/new_image/meta/deep/l/0": "B",
    }
    assert row["changed_attributes"] == sorted(new)
    assert row["timestamp"] == 1714564800000
    assert row["event_time"] == "2024-05-01T12:00:00.000Z"
    assert row["dt"] == "2024-05-01"
    assert row["ingested_at"] == "2027-01-15T08:00:00.123Z"
    assert row["sequence_number"] == "100000000000000000001"
    assert row["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    assert row["size_bytes"] == 310
    assert row["ttl_delete"] is False
    assert row["aws_region"] == "eu-west-1"
    assert row["event_source"] == "aws:dynamodb"


def test_row_rebuilds_the_exact_typed_item(load_event: Any, rows: dict[str, dict]) -> None:
    record = load_event("every-kind.json")["Records"][0]
    row = rows["ins-1"]
    hints = json.loads(row["type_hints"])
    assert codec.decode_item(row["new_image"], codec.hints_under(hints, "/new_image")) \
        == record["dynamodb"]["NewImage"]


def test_modify_lists_only_what_changed(rows: dict[str, dict]) -> None:
    row = rows["mod-1"]
    assert row["action"] == "MODIFY"
    # tags only changed order (a set), so it did not change
    assert row["changed_attributes"] == ["note", "paid_at", "status"]
    assert json.loads(row["old_image"])["status"] == "NEW"
    assert json.loads(row["new_image"])["status"] == "PAID"


def test_user_delete_and_ttl_delete_are_told_apart(rows: dict[str, dict]) -> None:
    user, ttl = rows["rem-user"], rows["rem-ttl"]
    assert (user["action"], user["ttl_delete"], user["new_image"]) == ("REMOVE", False, None)
    assert (ttl["action"], ttl["ttl_delete"]) == ("REMOVE", True)
    assert ttl["user_identity"] == "dynamodb.amazonaws.com"
    assert ttl["dt"] == "2024-05-02"
    assert user["changed_attributes"] == ["pk", "sk", "status"]


def test_keys_only_view_has_no_images_and_binary_keys(rows: dict[str, dict]) -> None:
    row = rows["keys-only"]
    assert (row["old_image"], row["new_image"], row["changed_attributes"]) == (None, None, None)
    assert row["stream_view_type"] == "KEYS_ONLY"
    assert row["item_key"] == '{"id":"3q2+7w=="}'
    assert json.loads(row["type_hints"]) == {"/keys/id": "B"}
    assert row["table_name"] == "blobs"


def test_single_image_views(rows: dict[str, dict]) -> None:
    new_only, old_only = rows["new-only"], rows["old-only"]
    assert new_only["old_image"] is None
    assert json.loads(new_only["new_image"]) == {"id": "u1", "name": "Jüri 鈴木"}
    assert new_only["changed_attributes"] is None  # unknown without the old image
    assert old_only["new_image"] is None
    assert json.loads(old_only["old_image"])["name"] == "gone"


def test_non_ascii_survives_the_wire_format(rows: dict[str, dict]) -> None:
    line = row_bytes(rows["new-only"])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(json.loads(line)["new_image"])["name"] == "Jüri 鈴木"


def test_kinesis_data_streams_records_are_accepted() -> None:
    payload = {
        "awsRegion": "us-east-1", "eventID": "k-1", "eventName": "MODIFY",
        "userIdentity": None, "recordFormat": "application/json", "tableName": "orders",
        "dynamodb": {"ApproximateCreationDateTime": 1714564800123,
                     "Keys": {"pk": {"S": "a"}},
                     "NewImage": {"pk": {"S": "a"}, "n": {"N": "5"}},
                     "OldImage": {"pk": {"S": "a"}, "n": {"N": "4"}},
                     "SizeBytes": 20},
        "eventSource": "aws:dynamodb",
    }
    record = {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "x",
                    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "data": base64.b64encode(json.dumps(payload).encode()).decode(),
                    "approximateArrivalTimestamp": 1714564800.5},
        "eventSource": "aws:kinesis", "eventID": "shardId-000:4959", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/changes",
    }
    row = flatten_record(record, ingested_at_ms=NOW)
    assert row["event_source"] == "aws:kinesis"
    assert row["event_id"] == "k-1"
    assert row["timestamp"] == 1714564800123  # milliseconds kept
    assert row["event_time"] == "2024-05-01T12:00:00.123Z"
    assert row["sequence_number"].startswith("4959033827")
    assert row["table_name"] == "orders"
    assert row["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    assert row["changed_attributes"] == ["n"]


def test_kinesis_records_at_microsecond_precision_keep_their_microseconds(
        load_event: Any) -> None:
    """Microsecond precision is the default for Kinesis streaming destinations: the row's
    timestamp stays epoch ms, event_time carries the microseconds."""
    [record] = event_records(load_event("kinesis-microsecond.json"))
    row = flatten_record(record, ingested_at_ms=NOW)
    assert row["timestamp"] == 1720740233012  # 1720740233012995 us, in ms
    assert row["event_time"] == "2024-07-11T23:23:53.012995Z"
    assert row["dt"] == "2024-07-11"
    assert row["event_source"] == "aws:kinesis" and row["table_name"] == "devices"
    assert row["changed_attributes"] == ["humidity"]


def test_an_unknown_timestamp_precision_is_named() -> None:
    record = {"eventID": "e1", "eventName": "INSERT", "dynamodb": {
        "ApproximateCreationDateTime": 1720740233012995,
        "ApproximateCreationDateTimePrecision": "NANOSECOND", "Keys": {"pk": {"S": "a"}},
        "SequenceNumber": "1"}}
    with pytest.raises(MalformedRecord, match="record e1: ApproximateCreationDateTimePrecision "
                                              "'NANOSECOND' is not MILLISECOND or MICROSECOND"):
        flatten_record(record, ingested_at_ms=NOW, table_name="t")


def test_moto_millisecond_timestamps_are_kept() -> None:
    record = {"eventID": "e", "eventName": "INSERT",
              "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
              "dynamodb": {"ApproximateCreationDateTime": 1714564800.25,
                           "Keys": {"k": {"S": "a"}}, "SequenceNumber": "1"}}
    assert flatten_record(record, ingested_at_ms=NOW)["timestamp"] == 1714564800250


def test_public_sample_events(load_event: Any) -> None:
    rows = [f.row for f in flatten_records(
        event_records(load_event("powertools-dynamo-stream-event.json")),
        ingested_at_ms=NOW, table_name="Example")]
    assert [r["action"] for r in rows if r] == ["INSERT", "MODIFY"]
    modify = rows[1]
    assert modify is not None
    # No ApproximateCreationDateTime: the event time falls back to ingestion time.
    assert modify["timestamp"] == NOW
    assert modify["changed_attributes"] == ["Message"]

    storer = load_event("history-storer-multiple.json")
    rows = [flatten_record(r, ingested_at_ms=NOW) for r in event_records(storer)]
    assert rows[0]["table_name"] == "TestArchiving"
    assert json.loads(rows[0]["new_image"])["AnotherAttribute"] == 10  # "N": 10 taken exactly


def test_placeholder_arn_needs_a_table_name(load_event: Any) -> None:
    records = event_records(load_event("sam-cli-dynamodb-update.json"))
    with pytest.raises(MalformedRecord, match="c4ca4238a0b923820dcc509a6f75849b: cannot tell"):
        flatten_record(records[0], ingested_at_ms=NOW)
    assert flatten_record(records[0], ingested_at_ms=NOW, table_name="T")["table_name"] == "T"


def test_on_failure_record_is_explained(load_event: Any) -> None:
    with pytest.raises(MalformedEvent, match="on-failure destination record"):
        event_records(load_event("powertools-on-failure-invocation-record.json"))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r.pop("dynamodb"), "record bad-1: no 'dynamodb' section"),
    (lambda r: r["dynamodb"]["NewImage"].update(x={"Z": "1"}),
     "record bad-1: /new_image/x: unknown type tag 'Z'"),
    (lambda r: r.update(eventName="UPSERT"), "record bad-1: eventName 'UPSERT'"),
    (lambda r: r["dynamodb"].pop("Keys"), "record bad-1: no Keys"),
    (lambda r: r["dynamodb"].update(SequenceNumber=12), "record bad-1: SequenceNumber 12"),
])
def test_malformed_records_are_isolated_and_named(load_event: Any, mutate: Any,
                                                  message: str) -> None:
    event = load_event("every-kind.json")
    bad = event["Records"][1]
    bad["eventID"] = "bad-1"
    mutate(bad)
    results = list(flatten_records(event["Records"], ingested_at_ms=NOW))
    assert [r.error is not None for r in results] == [False, True, False, False, False, False,
                                                      False]
    assert message in str(results[1].error)
