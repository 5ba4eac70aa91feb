"""One batch of stream records -> rows delivered to a sink, or reported as failures.

This is the code path of the capture Lambda and of the local stream runner alike. The
target is any ``ddbtrail.delivery.sink.Sink`` (Firehose in AWS, the local delivery stream
on one machine); nothing here knows which.
The contract is at-least-once: every record's row is delivered, spilled, quarantined,
or named in ``batchItemFailures`` so that Lambda retries from it. Nothing is dropped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ddbtrail.capture.redaction_key import policy_from_env
from ddbtrail.core.exceptions import MalformedRecord
from ddbtrail.core.flatten import event_records, flatten_records, record_identity, row_bytes
from ddbtrail.core.redact import RedactionPolicy
from ddbtrail.core.row import Row, partition_path
from ddbtrail.delivery.sink import DeliveryReport, EncodedRow, Sink
from ddbtrail.evidence.receipts import (
    DEFAULT_RECEIPTS_PREFIX,
    ReceiptChange,
    ReceiptStore,
    S3Receipts,
    write_receipts,
)

logger = logging.getLogger(__name__)

def _prefix(raw: str) -> str:
    raw = raw.strip("/")
    return raw + "/" if raw else ""


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """What the capture path does besides delivering (the sink has its own settings).
    Explicit values win over the environment."""

    table_name: str | None = None
    spill_bucket: str | None = None
    spill_prefix: str = "spill/"
    quarantine_prefix: str = "quarantine/"
    redaction: RedactionPolicy | None = None
    receipts_bucket: str | None = None  # None: no receipts (unless capture_batch gets a store)
    receipts_prefix: str = DEFAULT_RECEIPTS_PREFIX
    receipt_source: str = "capture"  # what receipts say delivered the rows

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **clients: Any) -> CaptureSettings:
        """Read TABLE_NAME, SPILL_BUCKET, SPILL_PREFIX, QUARANTINE_PREFIX,
        RECEIPTS_BUCKET (empty: no receipts), RECEIPTS_PREFIX, and REDACTION_POLICY with its
        key (see ``capture.redaction_key.load_key``; ``clients`` may pass ``secretsmanager=``
        or ``ssm=``). The sink reads its own (DELIVERY_STREAM_NAME, ...:
        ``ddbtrail.delivery.targets.sink_from_env``).
        Raises ConfigError naming the variable that is wrong."""
        env = os.environ if env is None else env
        return cls(
            table_name=env.get("TABLE_NAME") or None,
            spill_bucket=env.get("SPILL_BUCKET") or None,
            spill_prefix=_prefix(env.get("SPILL_PREFIX", "spill/")),
            quarantine_prefix=_prefix(env.get("QUARANTINE_PREFIX", "quarantine/")),
            receipts_bucket=env.get("RECEIPTS_BUCKET") or None,
            receipts_prefix=_prefix(env.get("RECEIPTS_PREFIX", DEFAULT_RECEIPTS_PREFIX)),
            redaction=policy_from_env(env, **clients),
        )


@dataclass(slots=True)
class CaptureResult:
    """What one batch did. ``response()`` is the Lambda return value."""

    records: int = 0
    rows: int = 0
    spilled: int = 0
    quarantined: int = 0
    malformed: list[MalformedRecord] = field(default_factory=list)
    undeliverable: list[str] = field(default_factory=list)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    first_failure: str | None = None
    receipts: list[str] = field(default_factory=list)  # keys of the receipts written
    receipt_error: str | None = None

    @property
    def failed(self) -> bool:
        return self.first_failure is not None

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Partial batch response: Lambda retries from the first undelivered record."""
        if self.first_failure is None:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": self.first_failure}]}

    def metrics(self) -> dict[str, int]:
        """Counts to publish, by metric name (named for what they count, whatever the sink)."""
        d = self.delivery
        return {
            "Records": self.records,
            "Rows": self.rows,
            "DeliveredRecords": d.records_sent,
            "DeliveryCalls": d.calls,
            "DeliveryBilledUnits": d.billed_units,
            "RetriedDeliveries": d.retried_entries,
            "SpilledRows": self.spilled,
            "QuarantinedRecords": self.quarantined,
            "MalformedRecords": len(self.malformed),
            "FailedBatches": int(self.failed),
            "Receipts": len(self.receipts),
            "ReceiptFailures": int(self.receipt_error is not None),
        }


def capture_batch(
    event: object,
    *,
    sink: Sink,
    settings: CaptureSettings | None = None,
    s3: Any = None,
    now_ms: int | None = None,
    remaining_seconds: Callable[[], float] | None = None,
    receipts: ReceiptStore | None = None,
) -> CaptureResult:
    """Flatten one event's records and deliver the rows to ``sink``.

    ``s3`` has ``put_object`` and is used for spill (rows larger than
    ``sink.max_row_bytes``), quarantine, and receipts when ``settings.receipts_bucket`` is
    set. ``receipts`` (a ``ReceiptStore``) overrides where receipts go. Once the sink
    accepted rows, one receipt names them (``ddbtrail.evidence.receipts``); if it cannot be
    written the batch is reported failed from its first record, so it is delivered again
    (duplicates, never a row without its receipt). Raises MalformedEvent if ``event`` has no
    Records list; every per-record problem is isolated and reported in the result instead.
    """
    settings = settings or CaptureSettings()
    if receipts is None and settings.receipts_bucket and s3 is not None:
        receipts = S3Receipts(s3, settings.receipts_bucket, settings.receipts_prefix)
    records = event_records(event)
    ingested = now_ms if now_ms is not None else int(time.time() * 1000)
    result = CaptureResult(records=len(records))
    encoded: list[EncodedRow] = []
    undeliverable: set[int] = set()
    seqs: list[str | None] = []
    covered: list[ReceiptChange] = []  # parallel to ``encoded`` when receipts are on
    max_row_bytes = sink.max_row_bytes

    for item in flatten_records(records, ingested_at_ms=ingested,
                                table_name=settings.table_name, policy=settings.redaction):
        seqs.append(item.sequence_number)
        if item.error is not None:
            result.malformed.append(item.error)
            logger.error("malformed record", extra={"event_id": item.event_id,
                                                    "error": _error_text(item.error, settings)})
            if _quarantine(records[item.index], item.error, s3, settings, ingested, item.index):
                result.quarantined += 1
            else:
                undeliverable.add(item.index)
            continue
        row = item.row
        assert row is not None
        data = row_bytes(row)
        if len(data) > max_row_bytes:
            data_or_none = _spill(row, data, s3, settings, max_row_bytes)
            if data_or_none is None:
                undeliverable.add(item.index)
                result.undeliverable.append(row["event_id"])
                continue
            data = data_or_none
            result.spilled += 1
        encoded.append(EncodedRow(data, item.index, (row["table_name"], row["dt"])))
        if receipts is not None:
            covered.append(ReceiptChange(row["table_name"], row["dt"], row["event_id"],
                                         row["item_key"], row["action"],
                                         row["sequence_number"]))

    result.rows = len(encoded)
    result.delivery = sink.send(encoded, deadline=remaining_seconds)
    failed = undeliverable | result.delivery.failed_sources
    if receipts is not None and covered:
        delivered = [c for c, e in zip(covered, encoded, strict=True)
                     if e.source not in result.delivery.failed_sources]
        try:
            result.receipts = write_receipts(
                receipts, delivered, source=settings.receipt_source,
                source_arn=_source_arn(records))
        except Exception as exc:  # noqa: BLE001 - any failure: deliver the batch again
            result.receipt_error = str(exc)
            logger.error("receipt not written; the batch will be delivered again",
                         extra={"error": str(exc), "rows": len(delivered)})
            failed = failed | {e.source for e in encoded}
    if failed:
        first = min(failed)
        # An empty identifier makes Lambda retry the whole batch: still no loss.
        result.first_failure = seqs[first] or ""
        logger.error("batch not fully delivered; Lambda will retry from the first failure",
                     extra={"first_failure": result.first_failure, "failed_records": len(failed),
                            "error": result.delivery.last_error})
    return result


def _source_arn(records: list[Any]) -> str | None:
    first = records[0] if records else None
    arn = first.get("eventSourceARN") if isinstance(first, Mapping) else None
    return arn if isinstance(arn, str) else None


def _spill(row: Row, data: bytes, s3: Any, settings: CaptureSettings,
           limit: int) -> bytes | None:
    """Put an oversize row in S3 and return the pointer row's bytes; None if impossible."""
    if s3 is None or settings.spill_bucket is None:
        logger.error("row exceeds the sink's record limit and no SPILL_BUCKET is set",
                     extra={"event_id": row["event_id"], "bytes": len(data), "limit": limit})
        return None
    key = (f"{settings.spill_prefix}{partition_path(row['table_name'], row['dt'])}"
           f"{row['event_id']}.json")
    try:
        s3.put_object(Bucket=settings.spill_bucket, Key=key, Body=data,
                      ContentType="application/json")
    except Exception as exc:  # noqa: BLE001 - any failure leaves the record for Lambda to retry
        logger.error("spill to S3 failed", extra={"event_id": row["event_id"], "error": str(exc)})
        return None
    pointer: Row = {**row, "old_image": None, "new_image": None, "type_hints": None,
                    "spill_uri": f"s3://{settings.spill_bucket}/{key}"}
    small = row_bytes(pointer)
    if len(small) > limit:
        logger.error("pointer row still exceeds the record limit",
                     extra={"event_id": row["event_id"], "bytes": len(small)})
        return None
    return small


def _withhold_values(record: object) -> object:
    """A malformed record cannot be redacted reliably, so under a redaction policy its
    keys and images are withheld from the quarantine copy; the position stays."""
    if not isinstance(record, Mapping):
        return "<withheld: redaction policy active>"
    ddb = record.get("dynamodb")
    kept = {k: v for k, v in record.items() if k not in ("dynamodb", "kinesis")}
    if isinstance(ddb, Mapping):
        kept["dynamodb"] = {k: v for k, v in ddb.items()
                            if k in ("SequenceNumber", "ApproximateCreationDateTime",
                                     "StreamViewType", "SizeBytes")}
    kept["withheld"] = "keys and images (redaction policy active)"
    return kept


def _error_text(error: MalformedRecord, settings: CaptureSettings) -> str:
    """The error as logged and quarantined. A codec error quotes the value at fault; under a
    redaction policy only its JSON pointer is kept."""
    if settings.redaction is None or not error.reason.startswith("/"):
        return str(error)
    where = error.reason.split(":", 1)[0]
    return (f"record {error.event_id or '<no eventID>'}: {where}: invalid value "
            "(details withheld: redaction policy active)")


def _quarantine(record: object, error: MalformedRecord, s3: Any, settings: CaptureSettings,
                now_ms: int, index: int) -> bool:
    """Keep a malformed record in S3 so it cannot block its shard. False if not kept."""
    if s3 is None or settings.spill_bucket is None:
        return False
    day = time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000))
    # Records without an eventID are told apart by their place in the batch.
    name = error.event_id or f"no-event-id-{now_ms}-{index}"
    key = f"{settings.quarantine_prefix}dt={day}/{name}.json"
    if settings.redaction is not None:
        record = _withhold_values(record)
    text = _error_text(error, settings)
    try:
        body = json.dumps({"error": text, "record": record}, default=str).encode()
    except (RecursionError, ValueError):
        # Too deeply nested to serialise: keep the error and the record's position.
        event_id, seq = record_identity(record)
        body = json.dumps({"error": text,
                           "record": {"eventID": event_id, "SequenceNumber": seq},
                           "withheld": "the record is nested too deeply to store"}).encode()
    try:
        s3.put_object(Bucket=settings.spill_bucket, Key=key, Body=body,
                      ContentType="application/json")
    except Exception as exc:  # noqa: BLE001 - keep the record in the batch failures instead
        logger.error("quarantine to S3 failed", extra={"event_id": error.event_id,
                                                       "error": str(exc)})
        return False
    return True
