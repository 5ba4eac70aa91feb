"""Throttled copy end to end: keys file -> ddbtrail copy -> SQS -> sqs_copy handler -> target."""

from __future__ import annotations

import importlib
import json
import random
import uuid
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from ddbtrail.core import codec
from tests.cli import exit_code
from tests.e2e.jobs_workload import assert_same_items, create_table, every_type, key_value, scan

pytestmark = pytest.mark.e2e


def load_handler(monkeypatch: pytest.MonkeyPatch, url: str, table: str) -> ModuleType:
    monkeypatch.setenv("TARGET_TABLE", table)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ddbtrail-test")
    module = importlib.import_module("handlers.sqs_copy")
    return importlib.reload(module)  # settings and client are read at import


def context() -> Any:
    return SimpleNamespace(function_name="sqs-copy", memory_limit_in_mb=256,
                           invoked_function_arn="arn:aws:lambda:us-east-1:1:function:sqs-copy",
                           aws_request_id=str(uuid.uuid4()),
                           get_remaining_time_in_millis=lambda: 60_000)


def sqs_event(queue_arn: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                         "body": m["Body"], "attributes": {}, "messageAttributes": {},
                         "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                         "eventSourceARN": queue_arn, "awsRegion": "us-east-1"}
                        for m in messages]}


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        out.extend(got)


def test_copy_of_selected_keys_reaches_the_target(moto_server: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ddb, sqs, url = (moto_server.client("dynamodb"), moto_server.client("sqs"),
                     moto_server.endpoint_url)
    source = create_table(ddb, stream=None, sk_type="B")  # a binary sort key, too
    target = create_table(ddb, stream=None, sk_type="B")
    rng = random.Random(42)
    for i in range(30):
        ddb.put_item(TableName=source, Item={**every_type(rng), **key_value(rng, "B", i)})
    everything = scan(ddb, source)
    chosen = [key_value(rng, "B", i) for i in (1, 4, 9, 16, 25)]
    lines = []
    for n, key in enumerate(chosen):
        wire = codec.decode_item(*codec.encode_item(key))  # B as base64 text
        if n % 2:  # typed line
            lines.append(json.dumps(wire))
        else:  # plain line: S as a string, B as its base64 text
            lines.append(json.dumps({"pk": wire["pk"]["S"], "sk": wire["sk"]["B"]}))
    lines += ["# a comment, then a duplicate and a key that does not exist", lines[0],
              json.dumps({"pk": "nobody", "sk": "AAA="})]
    keys_file = tmp_path / "keys.jsonl"
    keys_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    queue_url = sqs.create_queue(QueueName=f"copy-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]

    assert exit_code(["copy", "--from-table", source, "--keys-file", str(keys_file),
                    "--queue-url", queue_url, "--rate", "100/s",
                    "--endpoint-url", url]) == 0
    captured = capsys.readouterr()
    assert "sent 5 of 6" in captured.out
    assert "not found" in captured.err and "nobody" in captured.err

    messages = drain(sqs, queue_url)
    assert len(messages) == 5
    handler = load_handler(monkeypatch, url, target)
    event = sqs_event(queue_arn, messages)
    assert handler.handler(event, context()) == {"batchItemFailures": []}
    wanted = {codec.item_key(codec.decode_item(*codec.encode_item(k))) for k in chosen}
    expected = {k: v for k, v in everything.items() if k in wanted}
    assert_same_items(scan(ddb, target), expected)
    # SQS redelivers at least once: writing the same messages again changes nothing.
    assert handler.handler(event, context()) == {"batchItemFailures": []}
    assert_same_items(scan(ddb, target), expected)


def test_handler_reports_only_the_bad_message(moto_server: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ddb = moto_server.client("dynamodb")
    target = create_table(ddb, stream=None)
    handler = load_handler(monkeypatch, moto_server.endpoint_url, target)
    good = json.dumps({"ddbtrail": "copy/1", "table": "src", "key": "k", "read_at": 1,
                       "item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "b": {"B": "AP8="}}})
    messages = [{"MessageId": "m-good", "ReceiptHandle": "r1", "Body": good, "MD5OfBody": ""},
                {"MessageId": "m-bad", "ReceiptHandle": "r2", "Body": "{not json",
                 "MD5OfBody": ""}]
    response = handler.handler(sqs_event("arn:aws:sqs:us-east-1:1:q", messages), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    item = ddb.get_item(TableName=target, Key={"pk": {"S": "a"}, "sk": {"N": "1"}})["Item"]
    assert item["b"] == {"B": b"\x00\xff"}


def test_copy_names_the_bad_line_of_the_keys_file(moto_server: Any, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    source = create_table(ddb, stream=None)
    keys_file = tmp_path / "keys.jsonl"
    keys_file.write_text('{"pk": "a", "sk": 1}\n{"pk": "a"}\n', encoding="utf-8")
    code = exit_code(["copy", "--from-table", source, "--keys-file", str(keys_file),
                    "--queue-url", "http://unused", "--endpoint-url", moto_server.endpoint_url])
    err = capsys.readouterr().err
    assert code == 2 and "line 2" in err and err.startswith("error:")
