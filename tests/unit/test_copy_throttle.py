"""Copy: keys-file parsing, the token bucket, and retries of partial SQS/DynamoDB failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ddbtrail.capture.copy import batch_get, copy_items, parse_message, send_messages
from ddbtrail.capture.keys import parse_key, read_keys_file
from ddbtrail.core.backoff import TokenBucket, parse_rate
from ddbtrail.core.exceptions import DeliveryFailed, InvalidArgument, InvalidValue

SCHEMA = {"pk": "S", "sk": "N"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_holds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=10, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        bucket.take(10)  # 100 tokens at 10/s: the first 10 are the burst
    assert clock.now == pytest.approx(9.0)


def test_token_bucket_debt_is_paid_by_waiting() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, burst=5, clock=clock, sleep=clock.sleep)
    bucket.charge(25)  # a Scan page that consumed 25 RCU
    bucket.wait()
    assert clock.now == pytest.approx(4.0, abs=0.01)  # 20 RCU of debt at 5/s


@pytest.mark.parametrize(("text", "per_second"), [("50", 50), ("50/s", 50), ("120/min", 2)])
def test_parse_rate(text: str, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["fast", "0", "-3/s"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^rate "):
        parse_rate(text)


def test_plain_and_typed_keys_agree_and_keep_digits() -> None:
    big = "12345678901234567890123456789012345678"  # 38 digits, DynamoDB's most
    plain = parse_key(f'{{"pk": "a", "sk": {big}}}', SCHEMA, "f line 1")
    typed = parse_key(f'{{"pk": {{"S": "a"}}, "sk": {{"N": "{big}"}}}}', SCHEMA, "f line 2")
    assert plain == typed == {"pk": {"S": "a"}, "sk": {"N": big}}


@pytest.mark.parametrize(("line", "message"), [
    ('{"pk": "a"}', "do not match"),
    ('{"pk": 1, "sk": 1}', "pk must be a string"),
    ('{"pk": "a", "sk": {"S": "1"}}', "typed N"),
    ('{"pk": "a", "sk": 1.5e400x}', "not valid JSON"),
])
def test_bad_key_lines_are_named(line: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message) as info:
        parse_key(line, SCHEMA, "keys.jsonl line 9")
    assert "keys.jsonl line 9" in str(info.value)


def test_keys_file_skips_comments_and_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "k.jsonl"
    f.write_text('# c\n{"pk":"a","sk":1}\n\n{"pk":"a","sk":1.0}\n{"pk":"b","sk":2}\n')
    keys = read_keys_file(str(f), SCHEMA)
    assert [k["pk"]["S"] for k in keys] == ["a", "b"]  # 1 and 1.0 are the same key


class FlakySQS:
    """Fails the first entry of every call once; records what was sent."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.failed_once: set[str] = set()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([e["MessageBody"] for e in Entries])
        ok, failed = [], []
        for n, e in enumerate(Entries):
            if n == 0 and e["MessageBody"] not in self.failed_once:
                self.failed_once.add(e["MessageBody"])
                failed.append({"Id": e["Id"], "Code": "InternalError", "SenderFault": False})
            else:
                ok.append({"Id": e["Id"], "MessageId": "m"})
        return {"Successful": ok, "Failed": failed}


def test_failed_sqs_entries_are_resent_alone() -> None:
    sqs = FlakySQS()
    send_messages(sqs, "q", [(f"k{i}", f"body{i}") for i in range(4)], sleep=lambda s: None)
    assert sqs.calls == [["body0", "body1", "body2", "body3"], ["body0"]]


def test_sender_faults_are_not_retried() -> None:
    class Rejects:
        def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            return {"Successful": [], "Failed": [{"Id": "0", "Code": "InvalidMessageContents",
                                                  "SenderFault": True}]}

    with pytest.raises(DeliveryFailed, match="k0"):
        send_messages(Rejects(), "q", [("k0", "x")], sleep=lambda s: None)


class UnprocessedDynamo:
    """BatchGetItem that leaves half the keys unprocessed on the first call."""

    def __init__(self) -> None:
        self.requests: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, req),) = RequestItems.items()
        keys = req["Keys"]
        self.requests.append(len(keys))
        if len(self.requests) == 1:
            done, rest = keys[: len(keys) // 2], keys[len(keys) // 2:]
        else:
            done, rest = keys, []
        items = [{**k, "b": {"B": b"\x01\x02"}} for k in done]
        return {"Responses": {table: items},
                "UnprocessedKeys": {table: {"Keys": rest}} if rest else {}}


def test_unprocessed_keys_are_retried_and_bytes_travel_as_base64() -> None:
    client = UnprocessedDynamo()
    keys = [{"pk": {"S": f"p{i}"}, "sk": {"N": str(i)}} for i in range(10)]
    items = list(batch_get(client, "t", keys, sleep=lambda s: None))
    assert client.requests == [10, 5]
    assert len(items) == 10 and all(i["b"] == {"B": "AQI="} for i in items)


def test_throttled_batch_get_is_retried() -> None:
    class Throttled(UnprocessedDynamo):
        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            if not self.requests:
                self.requests.append(0)
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}},
                                  "BatchGetItem")
            return super().batch_get_item(RequestItems)

    keys = [{"pk": {"S": "p"}, "sk": {"N": "1"}}]
    assert len(list(batch_get(Throttled(), "t", keys, sleep=lambda s: None))) == 1


def test_copy_messages_are_lossless_and_oversize_items_are_named() -> None:
    sqs = FlakySQS()
    source = UnprocessedDynamo()
    keys = [{"pk": {"S": "a"}, "sk": {"N": "1"}}, {"pk": {"S": "b"}, "sk": {"N": "2"}}]
    report = copy_items(source=source, sqs=sqs, table="t", keys=keys, queue_url="q",
                        rate=1000, sleep=lambda s: None, max_message_bytes=1024)
    sent = [parse_message(body) for call in sqs.calls for body in call]
    assert {m.item_key for m in sent} == {'{"pk":"a","sk":1}', '{"pk":"b","sk":2}'}
    assert all(m.item["b"] == {"B": b"\x01\x02"} for m in sent)
    assert report.sent == 2 and report.ok

    class Huge(UnprocessedDynamo):
        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            out = super().batch_get_item(RequestItems)
            for item in out["Responses"]["t"]:
                item["blob"] = {"S": "x" * 2000}
            return out

    report = copy_items(source=Huge(), sqs=FlakySQS(), table="t", keys=keys, queue_url="q",
                        sleep=lambda s: None, max_message_bytes=1024)
    assert not report.ok and len(report.too_large) == 2


def test_a_message_that_is_not_ours_is_refused() -> None:
    with pytest.raises(InvalidValue, match="copy/1"):
        parse_message(json.dumps({"hello": 1}))
