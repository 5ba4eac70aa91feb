"""Replication: the stale-replay guard, binary and number exactness, failure handling."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from ddbtrail.capture.replicate import (
    DELETED_ATTRIBUTE,
    ReplicateSettings,
    plan_write,
    replicate_batch,
    target_client,
)
from ddbtrail.core.exceptions import ConfigError, MalformedRecord

RAW = b"\x00\xff\x10binary\x80"
B64 = base64.b64encode(RAW).decode()
BIG = "110111111111111110000000000000000000000"


def record(seq: str, action: str = "MODIFY", *, msg: str = "x", view: str = "NEW_AND_OLD_IMAGES",
           new: bool = True) -> dict[str, Any]:
    keys = {"Id": {"N": "101"}}
    ddb: dict[str, Any] = {"Keys": keys, "SequenceNumber": seq, "StreamViewType": view,
                           "ApproximateCreationDateTime": 1700000000}
    if new and action != "REMOVE":
        ddb["NewImage"] = {**keys, "msg": {"S": msg}, "bin": {"B": B64},
                           "bs": {"BS": [B64, "AA=="]}, "big": {"N": BIG},
                           "m": {"M": {"b": {"B": B64}}}}
    return {"eventID": f"e{seq}", "eventName": action, "eventSource": "aws:dynamodb",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/src/stream/x",
            "dynamodb": ddb}


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


S = ReplicateSettings(target_table="unused")


# ----------------------------------------------------------------------------- pure


def test_binary_becomes_bytes_once_and_numbers_keep_every_digit() -> None:
    write = plan_write(record("100000000000000000001"), S)
    assert write.item is not None
    assert write.item["bin"] == {"B": RAW}  # decoded once, never base64 of base64
    assert write.item["bs"] == {"BS": [RAW, b"\x00"]}
    assert write.item["m"] == {"M": {"b": {"B": RAW}}}
    assert write.item["big"] == {"N": BIG}
    assert write.item["_ddbtrail_seq"] == {"N": "100000000000000000001"}


def test_bytes_in_the_record_are_not_encoded_again() -> None:
    rec = record("100000000000000000001")
    rec["dynamodb"]["NewImage"]["bin"] = {"B": RAW}  # a runner that kept boto3's bytes
    write = plan_write(rec, S)
    assert write.item is not None
    assert write.item["bin"] == {"B": RAW}


@pytest.mark.parametrize("view", ["KEYS_ONLY", "OLD_IMAGE"])
def test_records_without_new_image_name_the_view_type(view: str) -> None:
    with pytest.raises(MalformedRecord, match=view) as info:
        plan_write(record("100000000000000000001", "INSERT", view=view, new=False), S)
    assert "e100000000000000000001" in str(info.value)


def test_sequence_number_beyond_38_digits_fails_loudly() -> None:
    with pytest.raises(MalformedRecord, match="38 significant digits"):
        plan_write(record("1" * 40), S)


def test_settings_from_env_name_the_bad_variable() -> None:
    with pytest.raises(ConfigError, match="TARGET_TABLE"):
        ReplicateSettings.from_env({})
    with pytest.raises(ConfigError, match="DELETE_MODE"):
        ReplicateSettings.from_env({"TARGET_TABLE": "t", "DELETE_MODE": "purge"})
    s = ReplicateSettings.from_env({"TARGET_TABLE": "t", "TARGET_REGION": "eu-west-1",
                                    "DELETE_MODE": "tombstone"})
    assert (s.target_table, s.target_region, s.delete_mode) == ("t", "eu-west-1", "tombstone")


# ----------------------------------------------------------------------------- against moto


@pytest.fixture
def target(moto_server: Any) -> tuple[Any, ReplicateSettings]:
    client = moto_server.client("dynamodb")
    name = f"replica-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "N"}])
    return client, ReplicateSettings(target_table=name)


def get(client: Any, table: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = client.get_item(
        TableName=table, Key={"Id": {"N": "101"}}, ConsistentRead=True).get("Item")
    return item


SEQ1, SEQ2, SEQ3 = "100000000000000000009", "100000000000000000010", "99999999999999999999999"


def test_stale_replay_never_overwrites_newer_data(target: tuple[Any, ReplicateSettings]) -> None:
    client, settings = target
    # SEQ2 > SEQ1 numerically though "...09" > "...10" as text: the guard compares numbers.
    result = replicate_batch(event(record(SEQ1, "INSERT", msg="old"),
                                   record(SEQ2, msg="new")), target=client, settings=settings)
    assert result.response() == {"batchItemFailures": []}
    assert get(client, settings.target_table)["msg"] == {"S": "new"}  # type: ignore[index]
    # Lambda retries the same batch (or an older one): nothing goes backwards.
    again = replicate_batch(event(record(SEQ1, "INSERT", msg="old"), record(SEQ2, msg="new")),
                            target=client, settings=settings)
    assert again.stale == 2 and not again.failed
    item = get(client, settings.target_table)
    assert item is not None and item["msg"] == {"S": "new"}
    assert item["bin"] == {"B": RAW} and item["big"] == {"N": BIG}


def test_stale_remove_does_not_delete_a_newer_item(target: tuple[Any, ReplicateSettings]) -> None:
    client, settings = target
    replicate_batch(event(record(SEQ3, msg="newest")), target=client, settings=settings)
    result = replicate_batch(event(record(SEQ2, "REMOVE")), target=client, settings=settings)
    assert result.stale == 1
    assert get(client, settings.target_table) is not None
    replicate_batch(event(record(SEQ3 + "1", "REMOVE")), target=client, settings=settings)
    assert get(client, settings.target_table) is None


def test_tombstones_keep_the_guard_after_a_delete(target: tuple[Any, ReplicateSettings]) -> None:
    client, settings = target
    tomb = ReplicateSettings(target_table=settings.target_table, delete_mode="tombstone",
                             tombstone_ttl_attribute="expires")
    replicate_batch(event(record(SEQ1, "INSERT"), record(SEQ2, "REMOVE")),
                    target=client, settings=tomb)
    item = get(client, settings.target_table)
    assert item is not None and item[DELETED_ATTRIBUTE] == {"BOOL": True}
    assert "expires" in item and "msg" not in item
    # A stale INSERT replayed after the delete cannot bring the item back.
    result = replicate_batch(event(record(SEQ1, "INSERT")), target=client, settings=tomb)
    assert result.stale == 1
    assert DELETED_ATTRIBUTE in (get(client, settings.target_table) or {})


def test_stops_at_the_first_failure_and_reports_it(target: tuple[Any, ReplicateSettings]) -> None:
    client, settings = target
    bad = record(SEQ2, "MODIFY", view="KEYS_ONLY", new=False)
    later = record(SEQ3, msg="must not be applied before the failed one")
    result = replicate_batch(event(record(SEQ1, "INSERT", msg="first"), bad, later),
                             target=client, settings=settings)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": SEQ2}]}
    assert get(client, settings.target_table)["msg"] == {"S": "first"}  # type: ignore[index]
    assert "KEYS_ONLY" in result.errors[0]


def test_a_missing_target_table_fails_the_batch_from_the_first_record(moto_server: Any) -> None:
    settings = ReplicateSettings(target_table=f"missing-{uuid.uuid4().hex[:6]}")
    result = replicate_batch(event(record(SEQ1, "INSERT"), record(SEQ2)),
                             target=moto_server.client("dynamodb"), settings=settings)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": SEQ1}]}


def test_the_input_event_is_not_modified(target: tuple[Any, ReplicateSettings]) -> None:
    client, settings = target
    ev = event(record(SEQ1, "INSERT"))
    before = copy.deepcopy(ev)
    replicate_batch(ev, target=client, settings=settings)
    assert ev == before


def test_role_arn_is_assumed_and_credentials_refresh(
        target: tuple[Any, ReplicateSettings], moto_server: Any) -> None:
    _, settings = target
    role = ReplicateSettings(target_table=settings.target_table, target_region="us-east-1",
                             role_arn="arn:aws:iam::123456789012:role/replicator")
    client = target_client(role, endpoint_url=moto_server.endpoint_url)
    creds = client._request_signer._credentials
    assert creds.method == "sts-assume-role"
    assert creds.access_key != "testing"  # came from STS, not the environment
    replicate_batch(event(record(SEQ1, "INSERT")), target=client, settings=role)
    assert get(client, settings.target_table) is not None


def test_lambda_handler_replicates_and_reports_failures(
        target: tuple[Any, ReplicateSettings], moto_server: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, settings = target
    monkeypatch.setenv("TARGET_TABLE", settings.target_table)
    monkeypatch.setenv("TARGET_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ddbtrail-test")
    handler = importlib.reload(importlib.import_module("handlers.replicate"))
    ctx = SimpleNamespace(function_name="replicate", memory_limit_in_mb=256,
                          invoked_function_arn="arn:aws:lambda:us-east-1:1:function:replicate",
                          aws_request_id="r1", get_remaining_time_in_millis=lambda: 60_000)
    ok = handler.handler(event(record(SEQ1, "INSERT")), ctx)
    assert ok == {"batchItemFailures": []}
    bad = handler.handler(event(record(SEQ2, view="KEYS_ONLY", new=False)), ctx)
    assert bad == {"batchItemFailures": [{"itemIdentifier": SEQ2}]}
    assert get(client, settings.target_table) is not None


def test_kinesis_records_are_refused_with_a_reason() -> None:
    payload = record(SEQ1, "INSERT")
    kinesis = {"eventID": "k1", "eventSource": "aws:kinesis", "kinesis": {
        "sequenceNumber": "4959033827149025660855969253836157109592157598913658889" + "8",
        "data": base64.b64encode(json.dumps(payload).encode()).decode()}}
    with pytest.raises(MalformedRecord, match="Kinesis"):
        plan_write(kinesis, S)
