"""Receipts: capture_batch writes one after the sink accepted rows, naming each of them,
and none for rows that were not delivered; a receipt it cannot write fails the batch."""

from __future__ import annotations

import json
from typing import Any

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.core.backoff import RetryPolicy
from ddbtrail.delivery.firehose import FirehoseSink
from ddbtrail.evidence.receipts import S3Receipts
from tests.stubs import StubFirehose
from tests.unit.test_capture_delivery import FakeS3, delivered_ids, make_event

NOW = 1714564900000


def run(event: dict, stub: StubFirehose, settings: CaptureSettings, **kwargs: Any) -> Any:
    sink = FirehoseSink(stub, "s", sleep=lambda s: None, retry=RetryPolicy(max_attempts=2))
    return capture_batch(event, sink=sink, settings=settings, now_ms=NOW, **kwargs)


def receipts_in(s3: FakeS3) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for (_, key), body in sorted(s3.objects.items()):
        assert body.endswith(b"\n") and body.count(b"\n") == 1  # one line of JSON
        out.append((key, json.loads(body)))
    return out


def test_a_delivered_batch_leaves_one_receipt_naming_every_change() -> None:
    s3, stub = FakeS3(), StubFirehose()
    settings = CaptureSettings.from_env({"RECEIPTS_BUCKET": "lake", "RECEIPTS_PREFIX": "p/"})
    result = run(make_event(30), stub, settings, s3=s3)
    assert result.response() == {"batchItemFailures": []}
    [(key, doc)] = receipts_in(s3)
    # Filed under the day it was received (the clock's), not the changes' day.
    assert key == f"p/table=orders/dt={doc['received_at'][:10]}/{doc['receipt_id']}.json"
    assert doc["table"] == "orders" and doc["source"] == "capture"
    assert [c["event_id"] for c in doc["changes"]] == delivered_ids(stub)
    assert doc["counts"] == {"INSERT": 30, "MODIFY": 0, "REMOVE": 0, "SNAPSHOT": 0}
    assert doc["first_sequence"] == str(10**20) and doc["last_sequence"] == str(10**20 + 29)
    assert doc["changes"][0] == {"event_id": "e0", "item_key": '{"pk":"k0"}',
                                 "action": "INSERT", "sequence_number": str(10**20),
                                 "dt": "2024-05-01"}
    assert result.metrics()["Receipts"] == 1


def test_without_a_receipts_bucket_nothing_is_written() -> None:
    s3, stub = FakeS3(), StubFirehose()
    run(make_event(3), stub, CaptureSettings.from_env({"RECEIPTS_BUCKET": ""}), s3=s3)
    assert s3.objects == {}


def test_rows_the_sink_did_not_accept_get_no_receipt() -> None:
    # Entries holding e5 fail every attempt: Lambda retries from it; rows before it are
    # delivered and named, it is not.
    stub = StubFirehose(fail_entry=lambda call, i, data: b'"e5"' in data)
    s3 = FakeS3()
    sink = FirehoseSink(stub, "s", sleep=lambda s: None, pack_rows=False,
                        retry=RetryPolicy(max_attempts=2))
    result = capture_batch(make_event(8), sink=sink, settings=CaptureSettings(),
                           receipts=S3Receipts(s3, "lake"), now_ms=NOW)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": str(10**20 + 5)}]}
    [(_, doc)] = receipts_in(s3)
    named = [c["event_id"] for c in doc["changes"]]
    assert "e5" not in named
    assert named == delivered_ids(stub)


def test_a_batch_that_is_not_delivered_at_all_gets_no_receipt() -> None:
    stub = StubFirehose(fail_entry=lambda call, i, data: True)
    s3 = FakeS3()
    result = capture_batch(make_event(4), sink=FirehoseSink(
        stub, "s", sleep=lambda s: None, retry=RetryPolicy(max_attempts=2)),
        settings=CaptureSettings(), receipts=S3Receipts(s3, "lake"), now_ms=NOW)
    assert result.failed
    assert s3.objects == {}


def test_a_receipt_that_cannot_be_written_fails_the_batch_from_its_first_record() -> None:
    stub = StubFirehose()
    result = run(make_event(5), stub, CaptureSettings(receipts_bucket="lake"),
                 s3=FakeS3(fail=True))
    # Delivered, but without its receipt: Lambda delivers it again (duplicates, no gap).
    assert len(delivered_ids(stub)) == 5
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": str(10**20)}]}
    assert result.receipt_error and "S3 is down" in result.receipt_error
    assert result.metrics()["ReceiptFailures"] == 1
