"""Firehose throttling, failed entries and lost responses, against a ground-truth log.

The runner reads moto's stream and runs the capture Lambda's code path; between it and the
local delivery stream sits a seeded Firehose that throttles whole calls, fails random
entries (FailedPutCount > 0), and sometimes accepts a call but loses the answer (a read
timeout: the caller resends what was already delivered). Nothing may be lost; the
duplicates that resends create must be removed by the deduplicated views.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.capture.runner import CheckpointStore, RunnerSettings, StreamRunner
from ddbtrail.core.backoff import RetryPolicy
from ddbtrail.delivery.firehose import FirehoseSink
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.files import Lake
from tests.faults.conftest import no_sleep
from tests.faults.figures import record, seed
from tests.faults.ledger import Ledger, make_table, verify

pytestmark = pytest.mark.integration


@dataclass
class FlakyFirehose:
    """PutRecordBatch in front of ``inner``, failing as Firehose can (seeded)."""

    inner: LocalDeliveryStream
    rng: random.Random
    throttle: float = 0.15
    entry_failure: float = 0.1
    lost_response: float = 0.08
    throttled: int = 0
    failed_entries: int = 0
    lost_responses: int = 0

    @property
    def faults(self) -> int:
        return self.throttled + self.failed_entries + self.lost_responses

    def put_record_batch(self, *, DeliveryStreamName: str,
                         Records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if self.rng.random() < self.throttle:
            self.throttled += 1
            raise ClientError({"Error": {"Code": "ThrottlingException",
                                         "Message": "Rate exceeded"}}, "PutRecordBatch")
        failing = [self.rng.random() < self.entry_failure for _ in Records]
        passed = [rec for rec, fail in zip(Records, failing, strict=True) if not fail]
        inner: list[dict[str, Any]] = []
        if passed:
            inner = self.inner.put_record_batch(DeliveryStreamName=DeliveryStreamName,
                                                Records=passed)["RequestResponses"]
        answers = iter(inner)
        responses = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
                     if fail else next(answers) for fail in failing]
        self.failed_entries += sum(failing)
        if self.rng.random() < self.lost_response:
            # Delivered, but the answer never arrives: the caller must resend (duplicates).
            self.lost_responses += 1
            raise ReadTimeoutError(endpoint_url="https://firehose.us-east-1.amazonaws.com")
        return {"FailedPutCount": sum(1 for r in responses if "ErrorCode" in r),
                "Encrypted": False, "RequestResponses": responses}


def run_capture(streams: Any, arn: str, table: str, lake: Lake, rng: random.Random,
                fmt: str) -> FlakyFirehose:
    """One runner process: read to the stream's end through a flaky Firehose, then close."""
    delivery = LocalDeliveryStream(lake, name="faults", fmt=fmt, buffer_seconds=3600)
    flaky = FlakyFirehose(delivery, rng)
    # One row per Firehose record (the deployed default for Parquet): more entries to fail.
    settings = CaptureSettings(table_name=table)
    sink = FirehoseSink(flaky, delivery.name, pack_rows=False, sleep=no_sleep,
                        retry=RetryPolicy(max_attempts=3, base_delay=0, max_delay=0))

    def process(event: dict[str, Any]) -> dict[str, Any]:
        return capture_batch(event, sink=sink, settings=settings).response()

    runner = StreamRunner(streams, arn, process, CheckpointStore(lake, f"capture-{table}"),
                          RunnerSettings(batch_size=10, checkpoint_interval=0, poll_interval=0,
                                         max_retry_attempts=-1),
                          before_checkpoint=delivery.flush, sleep=no_sleep)
    try:
        runner.run(once=True)
    finally:
        delivery.close()
    return flaky


def test_throttling_failed_entries_and_lost_responses_lose_nothing(
        moto_server: Any, lake: Lake) -> None:
    rng = random.Random(seed(9001))
    ddb, table, arn = make_table(moto_server, "fh-faults")
    streams = moto_server.client("dynamodbstreams")
    ledger = Ledger(ddb, table, rng)
    faults = runs = 0
    kinds: set[str] = set()
    for fmt in ("parquet", "jsonl", "parquet"):  # writes keep coming between runs
        ledger.write(120)
        flaky = run_capture(streams, arn, table, lake, rng, fmt)
        faults += flaky.faults
        runs += 1
        kinds |= {k for k in ("throttled", "failed_entries", "lost_responses")
                  if getattr(flaky, k)}
    assert kinds == {"throttled", "failed_entries", "lost_responses"}

    v = verify(lake, ledger)
    record("Firehose throttling, failed entries, lost responses", runs=runs, faults=faults,
           written=v.written, lost=v.lost, duplicates_delivered=v.duplicates_delivered,
           duplicates_after_dedup=v.duplicates_after_dedup)
    assert v.lost == 0
    assert v.out_of_order == 0
    assert v.events == v.written
    # Resends after lost answers deliver some rows twice; the views keep one copy each.
    assert v.duplicates_delivered > 0
    assert v.duplicates_after_dedup == 0
    assert v.disagreeing_copies == 0


@dataclass
class SilentlyLossyFirehose(FlakyFirehose):
    """The known bug of some samples: failed entries reported as delivered."""

    def put_record_batch(self, *, DeliveryStreamName: str,
                         Records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        kept = [rec for rec in Records if self.rng.random() >= self.entry_failure]
        self.failed_entries += len(Records) - len(kept)
        if kept:
            self.inner.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=kept)
        return {"FailedPutCount": 0, "Encrypted": False,
                "RequestResponses": [{"RecordId": "x"} for _ in Records]}


def test_the_ground_truth_catches_a_firehose_that_drops_entries_silently(
        moto_server: Any, lake: Lake) -> None:
    """The check has teeth: a pipeline that loses rows is caught, and by how many."""
    rng = random.Random(seed(9002))
    ddb, table, arn = make_table(moto_server, "fh-lossy")
    ledger = Ledger(ddb, table, rng)
    ledger.write(60)
    delivery = LocalDeliveryStream(lake, name="lossy", buffer_seconds=3600)
    lossy = SilentlyLossyFirehose(delivery, rng, entry_failure=0.1)
    settings = CaptureSettings(table_name=table)
    sink = FirehoseSink(lossy, "lossy", pack_rows=False)
    runner = StreamRunner(moto_server.client("dynamodbstreams"), arn,
                          lambda e: capture_batch(e, sink=sink, settings=settings).response(),
                          CheckpointStore(lake, "lossy"), RunnerSettings(poll_interval=0),
                          before_checkpoint=delivery.flush, sleep=no_sleep)
    runner.run(once=True)
    delivery.close()
    v = verify(lake, ledger)
    assert lossy.failed_entries > 0
    assert v.lost == lossy.failed_entries
    assert v.events == v.written - lossy.failed_entries
