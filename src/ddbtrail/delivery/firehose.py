"""Deliver rows with PutRecordBatch inside Firehose's limits, with no silent loss.

* At most 500 records and 4 MiB per call, at most 1,000 KiB per record.
* Small rows share one Firehose record (newline-delimited) because ingestion is billed
  per record in 5 KB steps. A packed record holds rows of one partition only and at most
  500 of them, so Firehose's RecordDeAggregation (JSON) can split it before dynamic
  partitioning reads ``table_name`` and ``dt``.
* Entries that fail (FailedPutCount > 0) are resent (only those, in one call) with
  exponential backoff and full jitter. Whatever still fails is reported, never dropped.

``client`` is anything with boto3's ``put_record_batch`` contract: a boto3 Firehose
client, or the local delivery stream. ``FirehoseSink`` is this module as a
``ddbtrail.delivery.sink.Sink``: what capture talks to.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import operator
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.core.backoff import RetryPolicy
from ddbtrail.core.settings import env_bool, env_int, env_required
from ddbtrail.delivery.sink import DeliveryReport, EncodedRow

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_RECORDS", "MAX_RECORD_BYTES", "MAX_ROWS_PER_RECORD",
           "DeliveryReport", "EncodedRow", "FirehoseRecord", "FirehoseSink", "billed_units",
           "chunk_batches", "deliver", "pack"]

logger = logging.getLogger(__name__)

MAX_RECORD_BYTES: Final = 1_000 * 1024
MAX_BATCH_RECORDS: Final = 500
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024
BILLING_UNIT_BYTES: Final = 5 * 1024
# RecordDeAggregation splits at most 500 JSON objects per record.
MAX_ROWS_PER_RECORD: Final = 500

# Whole-call errors worth retrying; anything else (bad stream name, access denied) fails fast.
RETRYABLE_CODES: Final = frozenset({
    "ServiceUnavailableException", "ThrottlingException", "Throttling",
    "InternalFailure", "InternalFailureException", "ServiceFailure",
    "RequestTimeout", "RequestTimeoutException", "LimitExceededException",
    "SlowDown", "ProvisionedThroughputExceededException",
})


def billed_units(size: int) -> int:
    """Firehose ingestion units of one record: 5 KB steps, rounded up."""
    return -(-size // BILLING_UNIT_BYTES)


@dataclass(slots=True)
class FirehoseRecord:
    """One Firehose record: one or more rows, and the source records they came from."""

    data: bytes
    sources: list[int]
    rows: int = 1


def pack(rows: Sequence[EncodedRow], *, enabled: bool = True,
         max_rows: int = MAX_ROWS_PER_RECORD,
         max_bytes: int = MAX_RECORD_BYTES) -> list[FirehoseRecord]:
    """Group rows into Firehose records, keeping batch order within each partition.

    Every row must already fit ``max_bytes`` on its own.
    """
    if not enabled:
        return [FirehoseRecord(r.data, [r.source]) for r in rows]
    # Rows by partition, in batch order; a batch's rows come in runs of one partition,
    # which groupby gathers without a Python step per row.
    groups: dict[tuple[str, str], list[EncodedRow]] = {}
    for partition, run in itertools.groupby(rows, key=_PARTITION):
        groups.setdefault(partition, []).extend(run)
    out: list[FirehoseRecord] = []
    for group in groups.values():
        datas = list(map(_DATA, group))
        sources = list(map(_SOURCE, group))
        ends = list(itertools.accumulate(map(len, datas), initial=0))  # ends[i]: bytes before row i
        n, i = len(datas), 0
        while i < n:
            # The most rows from i that fit both limits (always at least row i): what
            # filling one record row by row until the next would not fit takes.
            last = bisect.bisect_right(ends, ends[i] + max_bytes, i + 1, min(i + max_rows, n) + 1)
            j = max(last - 1, i + 1)
            out.append(FirehoseRecord(b"".join(datas[i:j]), sources[i:j], j - i))
            i = j
    # Deliver in order of each record's earliest source, so a stop on failure leaves
    # the lowest undelivered source reportable.
    out.sort(key=lambda r: r.sources[0])
    return out


_PARTITION: Final = operator.itemgetter(2)
_DATA: Final = operator.itemgetter(0)
_SOURCE: Final = operator.itemgetter(1)


def chunk_batches(records: Sequence[FirehoseRecord]) -> list[list[FirehoseRecord]]:
    """Split records into PutRecordBatch calls: <= 500 records and <= 4 MiB each."""
    batches: list[list[FirehoseRecord]] = []
    current: list[FirehoseRecord] = []
    size = 0
    for rec in records:
        full = len(current) >= MAX_BATCH_RECORDS or size + len(rec.data) > MAX_BATCH_BYTES
        if current and full:
            batches.append(current)
            current, size = [], 0
        current.append(rec)
        size += len(rec.data)
    if current:
        batches.append(current)
    return batches


def deliver(records: Sequence[FirehoseRecord], *, client: Any, stream_name: str,
            retry: RetryPolicy | None = None,
            sleep: Callable[[float], None] = time.sleep,
            deadline: Callable[[], float] | None = None,
            rng: random.Random | None = None) -> DeliveryReport:
    """Send records with PutRecordBatch until each is delivered or retries run out.

    Stops at the first call that cannot be completed: everything after it would be
    resent by Lambda anyway. ``deadline`` returns the seconds left (Lambda's remaining
    time); no retry starts that could not finish in time.
    """
    retry = retry or RetryPolicy()
    rng = rng or random.Random()
    report = DeliveryReport()
    batches = chunk_batches(records)
    for n, batch in enumerate(batches):
        undelivered = _send_batch(batch, client, stream_name, retry, sleep, deadline, rng, report)
        if undelivered:
            later = [rec for rest in batches[n + 1:] for rec in rest]
            report.failed_sources.update(s for rec in undelivered + later for s in rec.sources)
            break
    return report


def _send_batch(batch: list[FirehoseRecord], client: Any, stream_name: str,
                retry: RetryPolicy, sleep: Callable[[float], None],
                deadline: Callable[[], float] | None, rng: random.Random,
                report: DeliveryReport) -> list[FirehoseRecord]:
    """Send one call's records with retries; return those that could not be delivered."""
    pending = list(batch)
    attempt = 0
    while True:
        report.calls += 1
        try:
            response = client.put_record_batch(
                DeliveryStreamName=stream_name,
                Records=[{"Data": rec.data} for rec in pending],
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            report.last_error = f"{code}: {exc}"
            if code not in RETRYABLE_CODES:
                logger.error("PutRecordBatch failed, not retryable",
                             extra={"error": report.last_error})
                return pending
            report.throttled_calls += 1
            failed = pending
        except BotoCoreError as exc:  # connection errors and timeouts
            report.last_error = str(exc)
            failed = pending
        else:
            results = response.get("RequestResponses", [])
            failed = [rec for rec, res in zip(pending, results, strict=False)
                      if res.get("ErrorCode")]
            if len(results) < len(pending):  # a malformed answer: treat the rest as failed
                failed += pending[len(results):]
            for rec, res in zip(pending, results, strict=False):
                if not res.get("ErrorCode"):
                    report.records_sent += 1
                    report.rows_sent += rec.rows
                    report.bytes_sent += len(rec.data)
                    report.billed_units += billed_units(len(rec.data))
                else:
                    report.last_error = f"{res.get('ErrorCode')}: {res.get('ErrorMessage', '')}"
            if failed and response.get("FailedPutCount", len(failed)) == 0:
                logger.warning("FailedPutCount is 0 but entries carry ErrorCode; resending them")
        if not failed:
            return []
        attempt += 1
        delay = retry.delay(attempt, rng)
        out_of_time = deadline is not None and deadline() < delay + 1.0
        if attempt >= retry.max_attempts or out_of_time:
            logger.error(
                "entries not delivered after retries",
                extra={"failed_entries": len(failed), "attempts": attempt,
                       "error": report.last_error, "out_of_time": out_of_time},
            )
            return failed
        report.retried_entries += len(failed)
        sleep(delay)
        pending = failed


@dataclass(slots=True)
class FirehoseSink:
    """A Firehose delivery stream as a ``Sink``: rows packed, sent with PutRecordBatch.

    ``client`` has boto3's ``put_record_batch`` (a boto3 Firehose client or the local
    delivery stream). ``pack_rows`` shares Firehose records between small rows of one
    partition (billing is per record in 5 KB steps), at most ``max_rows_per_record``.
    """

    client: Any
    stream_name: str
    pack_rows: bool = True
    max_rows_per_record: int = MAX_ROWS_PER_RECORD
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_env(cls, client: Any, env: Mapping[str, str] | None = None) -> FirehoseSink:
        """Read DELIVERY_STREAM_NAME (required), PACK_ROWS, MAX_ROWS_PER_RECORD and
        MAX_ATTEMPTS. Raises ConfigError naming the variable that is missing or wrong."""
        env = os.environ if env is None else env
        return cls(
            client,
            env_required(env, "DELIVERY_STREAM_NAME"),
            pack_rows=env_bool(env, "PACK_ROWS", True),
            max_rows_per_record=env_int(env, "MAX_ROWS_PER_RECORD", MAX_ROWS_PER_RECORD,
                                        1, MAX_ROWS_PER_RECORD),
            retry=RetryPolicy(max_attempts=env_int(env, "MAX_ATTEMPTS", 8, 1, 100)),
        )

    @property
    def name(self) -> str:
        return self.stream_name

    @property
    def max_row_bytes(self) -> int:
        return MAX_RECORD_BYTES

    def send(self, rows: Sequence[EncodedRow], *,
             deadline: Callable[[], float] | None = None) -> DeliveryReport:
        records = pack(rows, enabled=self.pack_rows, max_rows=self.max_rows_per_record)
        return deliver(records, client=self.client, stream_name=self.stream_name,
                       retry=self.retry, sleep=self.sleep, deadline=deadline)

    def flush(self) -> None:
        """Firehose holds what it accepted; a client that buffers (the local stream) is
        flushed."""
        flush = getattr(self.client, "flush", None)
        if flush is not None:
            flush()
