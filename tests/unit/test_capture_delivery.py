"""capture_batch delivers every row or reports it in batchItemFailures; never drops one."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.core.backoff import RetryPolicy
from ddbtrail.core.exceptions import ConfigError, MalformedEvent
from ddbtrail.delivery.firehose import (
    MAX_BATCH_BYTES,
    MAX_RECORD_BYTES,
    EncodedRow,
    FirehoseSink,
    billed_units,
    chunk_batches,
    pack,
)
from ddbtrail.delivery.targets import sink_from_env
from tests.stubs import StubFirehose

SETTINGS = CaptureSettings()


def make_event(n: int, *, table: str = "orders", pad: int = 0, days: int = 1) -> dict:
    records = []
    for i in range(n):
        records.append({
            "eventID": f"e{i}", "eventName": "INSERT", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:1:table/{table}/stream/x",
            "dynamodb": {
                "ApproximateCreationDateTime": 1714564800 + (i % days) * 86400,
                "Keys": {"pk": {"S": f"k{i}"}},
                "NewImage": {"pk": {"S": f"k{i}"}, "n": {"N": str(i)},
                             "pad": {"S": "x" * pad}},
                "SequenceNumber": str(10**20 + i), "SizeBytes": 30 + pad,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
        })
    return {"Records": records}


def delivered_ids(stub: StubFirehose) -> list[str]:
    return [json.loads(line)["event_id"] for line in stub.rows()]


class FakeS3:
    def __init__(self, fail: bool = False) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.fail = fail

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict:
        if self.fail:
            raise OSError("S3 is down")
        self.objects[(Bucket, Key)] = Body
        return {}


def firehose(stub: StubFirehose, **options: Any) -> FirehoseSink:
    """The stub as a Firehose sink that does not sleep between retries."""
    return FirehoseSink(stub, "s", sleep=lambda s: None, **options)


def run(event: dict, stub: StubFirehose, settings: CaptureSettings = SETTINGS,
        sink: FirehoseSink | None = None, **kwargs: Any) -> Any:
    sink = sink or firehose(stub, retry=RetryPolicy(max_attempts=4))
    return capture_batch(event, sink=sink, settings=settings, now_ms=1714564900000, **kwargs)


def test_all_rows_delivered_newline_terminated_and_packed() -> None:
    stub = StubFirehose()
    result = run(make_event(1200), stub)
    assert result.response() == {"batchItemFailures": []}
    assert delivered_ids(stub) == [f"e{i}" for i in range(1200)]
    assert all(data.endswith(b"\n") for data in stub.accepted)
    # 1,200 small rows of one partition: 3 Firehose records (500 + 500 + 200), one call.
    assert len(stub.accepted) == 3
    assert stub.calls == 1
    assert result.delivery.billed_units == sum(billed_units(len(d)) for d in stub.accepted)


def test_packing_keeps_one_partition_per_record() -> None:
    stub = StubFirehose()
    run(make_event(40, days=3), stub)
    for data in stub.accepted:
        dts = {json.loads(line)["dt"] for line in data.splitlines()}
        assert len(dts) == 1


def test_without_packing_there_is_one_record_per_row_and_500_per_call() -> None:
    stub = StubFirehose()
    run(make_event(1200), stub, sink=firehose(stub, pack_rows=False))
    assert len(stub.accepted) == 1200
    assert stub.calls == 3


def test_batches_respect_the_4_mib_call_limit() -> None:
    rows = [EncodedRow(b"x" * 900_000 + b"\n", i, ("t", "d")) for i in range(12)]
    records = pack(rows)
    assert all(len(r.data) <= MAX_RECORD_BYTES for r in records)
    batches = chunk_batches(records)
    assert all(sum(len(r.data) for r in b) <= MAX_BATCH_BYTES for b in batches)
    assert sum(len(b) for b in batches) == 12


def test_failed_entries_are_retried_alone_until_delivered() -> None:
    seen_failures: list[bytes] = []

    def fail_first_two_calls(call: int, i: int, data: bytes) -> bool:
        if call <= 2 and i % 3 == 0:
            seen_failures.append(data)
            return True
        return False

    stub = StubFirehose(fail_entry=fail_first_two_calls)
    result = run(make_event(30), stub, sink=firehose(stub, pack_rows=False))
    assert result.response() == {"batchItemFailures": []}
    assert sorted(delivered_ids(stub)) == sorted(f"e{i}" for i in range(30))
    assert len(delivered_ids(stub)) == 30  # no entry sent twice once accepted
    assert result.delivery.retried_entries == len(seen_failures)


def test_throttled_calls_are_retried() -> None:
    stub = StubFirehose(throttle_calls={1, 2})
    result = run(make_event(10), stub)
    assert not result.failed
    assert delivered_ids(stub) == [f"e{i}" for i in range(10)]
    assert result.delivery.throttled_calls == 2


def test_persistent_failure_reports_the_first_undelivered_record() -> None:
    # Entry for record e7 always fails; without packing, each record is its own entry.
    stub = StubFirehose(fail_entry=lambda call, i, data: b'"event_id":"e7"' in data)
    sink = firehose(stub, pack_rows=False, retry=RetryPolicy(max_attempts=3))
    result = run(make_event(20), stub, sink=sink)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": str(10**20 + 7)}]}
    delivered = set(delivered_ids(stub))
    # Lambda retries from e7, so everything from e7 on comes again: nothing is lost.
    assert delivered | {f"e{i}" for i in range(7, 20)} == {f"e{i}" for i in range(20)}


def test_fails_fast_after_a_call_that_cannot_complete() -> None:
    stub = StubFirehose(throttle_calls=set(range(1, 100)))
    sink = firehose(stub, pack_rows=False, retry=RetryPolicy(max_attempts=2))
    result = run(make_event(1200), stub, sink=sink)
    assert result.first_failure == str(10**20)
    assert stub.calls == 2  # the later batches are not attempted


def test_no_retry_starts_past_the_lambda_deadline() -> None:
    stub = StubFirehose(fail_entry=lambda call, i, data: True)
    result = run(make_event(3), stub, sink=firehose(stub), remaining_seconds=lambda: 0.5)
    assert result.failed
    assert stub.calls == 1


def test_oversize_row_is_spilled_to_s3_with_a_pointer() -> None:
    event = make_event(3)
    event["Records"][1]["dynamodb"]["NewImage"]["pad"] = {"S": "y" * 1_100_000}
    s3 = FakeS3()
    stub = StubFirehose()
    settings = CaptureSettings(spill_bucket="spill", spill_prefix="spill/")
    result = run(event, stub, settings, sink=firehose(stub), s3=s3)
    assert not result.failed and result.spilled == 1
    rows = {json.loads(line)["event_id"]: json.loads(line) for line in stub.rows()}
    pointer = rows["e1"]
    assert pointer["new_image"] is None
    assert pointer["spill_uri"] == "s3://spill/spill/table_name=orders/dt=2024-05-01/e1.json"
    full = json.loads(s3.objects[("spill", "spill/table_name=orders/dt=2024-05-01/e1.json")])
    assert json.loads(full["new_image"])["pad"] == "y" * 1_100_000
    assert set(rows) == {"e0", "e1", "e2"}


def test_oversize_row_without_spill_location_is_reported_not_dropped() -> None:
    event = make_event(3)
    event["Records"][1]["dynamodb"]["NewImage"]["pad"] = {"S": "y" * 1_100_000}
    stub = StubFirehose()
    result = run(event, stub)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": str(10**20 + 1)}]}
    assert result.undeliverable == ["e1"]
    assert set(delivered_ids(stub)) == {"e0", "e2"}


def test_malformed_record_is_named_and_the_rest_still_delivered(
        caplog: pytest.LogCaptureFixture) -> None:
    event = make_event(5)
    event["Records"][2]["dynamodb"]["NewImage"]["bad"] = {"QQ": "1"}
    stub = StubFirehose()
    result = run(event, stub)
    assert set(delivered_ids(stub)) == {"e0", "e1", "e3", "e4"}
    assert [str(e) for e in result.malformed] == [
        "record e2: /new_image/bad: unknown type tag 'QQ'"]
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": str(10**20 + 2)}]}
    assert "malformed record" in caplog.text


def test_malformed_record_is_quarantined_when_a_bucket_is_set() -> None:
    event = make_event(3)
    del event["Records"][1]["dynamodb"]
    s3, stub = FakeS3(), StubFirehose()
    settings = CaptureSettings(spill_bucket="spill")
    result = run(event, stub, settings, sink=firehose(stub), s3=s3)
    assert result.response() == {"batchItemFailures": []}
    assert result.quarantined == 1
    ((_, key),) = s3.objects
    assert key.startswith("quarantine/dt=") and key.endswith("/e1.json")
    body = json.loads(s3.objects[("spill", key)])
    assert body["error"] == "record e1: no 'dynamodb' section"
    assert body["record"]["eventID"] == "e1"


@pytest.mark.parametrize(("value", "reason"), [
    ({"N": "1e130"}, "/new_image/bad: '1e130' is out of range"),
    ({"N": "1" * 39}, "/new_image/bad: '" + "1" * 39 + "' has 39 significant digits"),
    ({"N": " 12 "}, "/new_image/bad: ' 12 ' is not a number as DynamoDB writes it"),
    ({"N": "+12"}, "/new_image/bad: '+12' is not a number as DynamoDB writes it"),
    ({"N": "007"}, "/new_image/bad: '007' is not a number as DynamoDB writes it"),
    ({"N": "7."}, "/new_image/bad: '7.' is not a number as DynamoDB writes it"),
    ({"N": "1_000"}, "/new_image/bad: '1_000' is not a number as DynamoDB writes it"),
    ({"SS": ["a", "a"]}, "/new_image/bad: SS holds 'a' twice"),
    ({"S": "\udc80"}, "/new_image/bad: the S value holds a lone surrogate"),
])
def test_a_value_dynamodb_refuses_is_quarantined_never_rewritten(value: dict,
                                                                 reason: str) -> None:
    event = make_event(3)
    event["Records"][1]["dynamodb"]["NewImage"]["bad"] = value
    s3, stub = FakeS3(), StubFirehose()
    result = run(event, stub, CaptureSettings(spill_bucket="spill"), sink=firehose(stub), s3=s3)
    assert result.response() == {"batchItemFailures": []}
    assert delivered_ids(stub) == ["e0", "e2"]  # the batch goes on
    assert result.quarantined == 1
    [error] = result.malformed
    assert str(error).startswith(f"record e1: {reason}")
    body = json.loads(s3.objects[("spill", next(k for _, k in s3.objects))])
    assert body["error"].startswith(f"record e1: {reason}")


def test_quarantine_failure_falls_back_to_batch_failure() -> None:
    event = make_event(3)
    event["Records"][1]["dynamodb"]["NewImage"]["bad"] = {"QQ": "1"}
    settings = CaptureSettings(spill_bucket="b")
    stub = StubFirehose()
    result = run(event, stub, settings, sink=firehose(stub), s3=FakeS3(fail=True))
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": str(10**20 + 1)}]}


def test_a_failed_record_without_sequence_number_fails_the_whole_batch() -> None:
    # Lambda treats an empty itemIdentifier as a failure of the whole batch: no loss.
    event = make_event(3)
    del event["Records"][1]["dynamodb"]
    result = run(event, StubFirehose())
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": ""}]}


def test_not_an_event_raises_one_clear_error() -> None:
    with pytest.raises(MalformedEvent, match="expected"):
        run({"foo": 1}, StubFirehose())


def test_settings_from_environment_name_the_bad_variable() -> None:
    stub = StubFirehose()
    with pytest.raises(ConfigError, match="DELIVERY_STREAM_NAME is not set"):
        sink_from_env({}, client=lambda service: stub)
    with pytest.raises(ConfigError, match=r"PACK_ROWS='maybe'"):
        sink_from_env({"DELIVERY_STREAM_NAME": "s", "PACK_ROWS": "maybe"},
                      client=lambda service: stub)
    with pytest.raises(ConfigError, match=r"MAX_ROWS_PER_RECORD=501 is outside 1\.\.500"):
        sink_from_env({"DELIVERY_STREAM_NAME": "s", "MAX_ROWS_PER_RECORD": "501"},
                      client=lambda service: stub)
    env = {"DELIVERY_STREAM_NAME": "s", "SPILL_BUCKET": "b", "SPILL_PREFIX": "/x/y",
           "PACK_ROWS": "false"}
    s = CaptureSettings.from_env(env)
    sink = sink_from_env(env, client=lambda service: stub)
    assert isinstance(sink, FirehoseSink) and sink.client is stub
    assert (s.spill_bucket, s.spill_prefix, sink.pack_rows) == ("b", "x/y/", False)


def test_input_event_is_not_mutated() -> None:
    event = make_event(4)
    before = copy.deepcopy(event)
    run(event, StubFirehose())
    assert event == before


_DELIVERED_BYTES = """
import base64, json, sys
if sys.argv[1] == "stdlib":
    sys.modules["orjson"] = None  # as in a Lambda asset without the wheel
from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.core import codec
from ddbtrail.delivery.firehose import FirehoseSink
from tests.stubs import StubFirehose
stub = StubFirehose()
event = json.load(sys.stdin)
capture_batch(event, sink=FirehoseSink(stub, "s"), settings=CaptureSettings(), now_ms=1)
print(json.dumps({"fast": codec.FAST_JSON,
                  "data": [base64.b64encode(d).decode() for d in stub.accepted]}))
"""


def test_without_orjson_the_capture_path_delivers_the_same_bytes(load_event: Any) -> None:
    records = [r for name in ("every-kind.json", "kinesis-microsecond.json")
               for r in load_event(name)["Records"]]
    for i, r in enumerate(make_event(50, pad=3)["Records"]):
        r["dynamodb"]["NewImage"].update({
            "n38": {"N": "12345678901234567890123456789012345678"}, "e": {"N": "1E-130"},
            "txt": {"S": 'Jüri "鈴木"\n\t\u2028\x00\x1f 😀'}, "b": {"B": "AAH+/w=="},
            "ns": {"NS": ["1", "2.5", "-3E+7"]}, "m": {"M": {"l": {"L": [{"BOOL": i % 2 == 0},
                                                                        {"NULL": True}]}}}})
        records.append(r)
    event = json.dumps({"Records": records})
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=f"{root / 'src'}:{root}")
    out = {}
    for backend in ("orjson", "stdlib"):
        proc = subprocess.run([sys.executable, "-c", _DELIVERED_BYTES, backend], input=event,
                              capture_output=True, text=True, env=env, cwd=root, check=False)
        assert proc.returncode == 0, proc.stderr
        out[backend] = json.loads(proc.stdout)
    assert out["orjson"]["fast"] is True and out["stdlib"]["fast"] is False
    assert out["orjson"]["data"] == out["stdlib"]["data"]
    delivered = b"".join(base64.b64decode(d) for d in out["stdlib"]["data"])
    assert len(delivered.splitlines()) == len(records)
