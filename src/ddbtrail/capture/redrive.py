"""Redrive: re-read the sequence ranges of failed batches from the stream and deliver them.

When Lambda gives up on a batch, its on-failure destination (SQS, or SNS delivered to
SQS) gets only metadata: ``DDBStreamBatchInfo`` names the stream, the shard and the first
and last sequence numbers, not the changes. ``redrive`` reads each message, re-reads
exactly that range (GetShardIterator AT_SEQUENCE_NUMBER start, GetRecords until past the
end; sequence numbers compared as integers), runs the records through the capture path
(``ddbtrail.capture.batch.capture_batch``) into Firehose or the local delivery stream, and
deletes the message only after every record of its range was delivered (the sink's
``flush`` first).

A range no longer fully in the stream (DynamoDB Streams keeps records 24 hours) is
*trimmed*: TrimmedDataAccessException, a shard or stream no longer listed, or retained
records that begin after ``startSequenceNumber``. Its message is kept (the records still
in the stream are delivered all the same), and the outcome carries a DataTrimmed error
naming the shard, the range and the time lost, pointing to ``ddbtrail backfill``.

Nothing is deleted that was not delivered; a message may be redriven twice (if deleting it
fails), so rows may repeat: at-least-once, deduplicated by ``event_id`` downstream.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.capture.runner.shards import (
    MAX_GET_RECORDS,
    Shard,
    describe_shards,
    error_code,
    lambda_event,
    seq_int,
)
from ddbtrail.core.exceptions import (
    DataTrimmed,
    DdbtrailError,
    DeliveryFailed,
    MalformedEvent,
    StreamNotEnabled,
)
from ddbtrail.core.flatten import table_from_arn
from ddbtrail.core.settings import env_bool, env_int, env_required
from ddbtrail.core.timefmt import iso_s
from ddbtrail.delivery.sink import Sink
from ddbtrail.evidence.receipts import ReceiptStore

logger = logging.getLogger(__name__)

STREAM_RETENTION_SECONDS: Final = 86_400
# Keys of Lambda's on-failure invocation record; anything else is not sent to a destination.
ON_FAILURE_KEYS: Final = ("requestContext", "responseContext", "version", "timestamp",
                          "DDBStreamBatchInfo")
# An open shard may answer with empty pages before records further on: read this many.
MAX_EMPTY_PAGES: Final = 10
# Records per capture_batch call (a Lambda batch can hold up to 10,000).
CAPTURE_CHUNK: Final = 1000

Status = Literal["redriven", "listed", "trimmed", "discarded", "incomplete", "failed",
                 "unreadable"]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class RedriveSettings:
    """The scheduled redrive's settings (the capture settings come from CaptureSettings).

    ``visibility_timeout`` and ``min_remaining_seconds`` are seconds.
    """

    queue_url: str
    visibility_timeout: int = 300
    min_remaining_seconds: float = 30.0
    max_messages: int | None = None
    discard_trimmed: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RedriveSettings:
        """Read QUEUE_URL (required), VISIBILITY_TIMEOUT (0..43200), MIN_REMAINING_SECONDS,
        MAX_MESSAGES and DISCARD_TRIMMED. Raises ConfigError naming the variable."""
        env = os.environ if env is None else env
        queue_url = env_required(env, "QUEUE_URL")
        max_messages = env.get("MAX_MESSAGES") or None
        return cls(
            queue_url=queue_url,
            visibility_timeout=env_int(env, "VISIBILITY_TIMEOUT", 300, 0, 43_200),
            min_remaining_seconds=float(env_int(env, "MIN_REMAINING_SECONDS", 30, 0, 900)),
            max_messages=(None if max_messages is None
                          else env_int(env, "MAX_MESSAGES", 0, 1, 1_000_000)),
            discard_trimmed=env_bool(env, "DISCARD_TRIMMED", False),
        )


# --------------------------------------------------------------------------- messages


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FailedRange:
    """The shard and inclusive sequence-number range of one failed batch."""

    stream_arn: str
    shard_id: str
    start: str
    end: str
    batch_size: int | None = None
    first_arrival: datetime | None = None
    last_arrival: datetime | None = None
    condition: str = ""

    @property
    def table_name(self) -> str | None:
        return table_from_arn(self.stream_arn)

    def label(self) -> str:
        """``shard <id> sequence numbers <start>..<end>``, for messages."""
        return f"shard {self.shard_id} sequence numbers {self.start}..{self.end}"

    def contains(self, sequence_number: str) -> bool:
        return seq_int(self.start) <= seq_int(sequence_number) <= seq_int(self.end)

    def age_seconds(self, now: float) -> float | None:
        """Seconds since the batch's first record reached the stream (None if unknown)."""
        if self.first_arrival is None:
            return None
        return max(0.0, now - self.first_arrival.timestamp())


def parse_on_failure(body: str | Mapping[str, Any], *, message_id: str = "?") -> FailedRange:
    """An on-failure record -> FailedRange. Accepts Lambda's JSON as is, or inside an SNS
    envelope (``{"Type": "Notification", "Message": "<json>"}``).

    Raises MalformedEvent naming the message when it is not a DynamoDB Streams on-failure
    record.
    """
    where = f"message {message_id}"
    try:
        data: Any = json.loads(body) if isinstance(body, str | bytes) else body
        if isinstance(data, Mapping) and isinstance(data.get("Message"), str) \
                and "DDBStreamBatchInfo" not in data:
            data = json.loads(data["Message"])  # SNS envelope
    except ValueError as exc:
        raise MalformedEvent(f"{where}: not JSON ({exc})") from exc
    if not isinstance(data, Mapping):
        raise MalformedEvent(f"{where}: not a JSON object")
    info = data.get("DDBStreamBatchInfo")
    if not isinstance(info, Mapping):
        hint = (" (a Kinesis on-failure record; ddbtrail redrives DynamoDB Streams only)"
                if "KinesisBatchInfo" in data else "")
        raise MalformedEvent(f"{where}: not a DynamoDB Streams on-failure record: no "
                             f"DDBStreamBatchInfo{hint}")
    fields = {}
    for name in ("streamArn", "shardId", "startSequenceNumber", "endSequenceNumber"):
        value = info.get(name)
        if not isinstance(value, str) or not value:
            raise MalformedEvent(f"{where}: DDBStreamBatchInfo.{name} is missing")
        fields[name] = value
    for name in ("startSequenceNumber", "endSequenceNumber"):
        if not fields[name].isdigit():
            raise MalformedEvent(f"{where}: DDBStreamBatchInfo.{name} {fields[name]!r} is not "
                                 "a sequence number")
    if seq_int(fields["startSequenceNumber"]) > seq_int(fields["endSequenceNumber"]):
        raise MalformedEvent(f"{where}: startSequenceNumber is after endSequenceNumber")
    size = info.get("batchSize")
    context = data.get("requestContext")
    return FailedRange(
        stream_arn=fields["streamArn"],
        shard_id=fields["shardId"],
        start=fields["startSequenceNumber"],
        end=fields["endSequenceNumber"],
        batch_size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        first_arrival=_parse_time(info.get("approximateArrivalOfFirstRecord")),
        last_arrival=_parse_time(info.get("approximateArrivalOfLastRecord")),
        condition=str(context.get("condition", "")) if isinstance(context, Mapping) else "",
    )


def on_failure_sender(client: Any, destination: str) -> Callable[[Mapping[str, Any]], None]:
    """A callable that sends an on-failure record to ``destination`` as Lambda does: an SQS
    queue URL (``client`` is SQS) or an SNS topic ARN (``client`` is SNS).

    Only Lambda's own keys are sent (see ON_FAILURE_KEYS). For the local stream runner's
    ``on_failure`` option.
    """
    is_topic = destination.startswith("arn:") and ":sns:" in destination

    def send(record: Mapping[str, Any]) -> None:
        body = json.dumps({k: record[k] for k in ON_FAILURE_KEYS if k in record})
        if is_topic:
            client.publish(TopicArn=destination, Message=body)
        else:
            client.send_message(QueueUrl=destination, MessageBody=body)

    return send


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class RangeRead:
    """What the stream still holds of a range. ``records`` are boto3 GetRecords records
    inside the range, in sequence order."""

    records: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False
    trimmed: bool = False
    reason: str = ""
    # The first record the stream still holds after a trimmed start (None if unknown).
    first_retained: dict[str, Any] | None = None


class _ShardCache:
    """DescribeStream once per stream ARN per run."""

    def __init__(self, streams: Any) -> None:
        self.streams = streams
        self._shards: dict[str, list[Shard] | None] = {}

    def get(self, stream_arn: str) -> list[Shard] | None:
        """The stream's shards, or None when the stream no longer exists."""
        if stream_arn not in self._shards:
            try:
                self._shards[stream_arn] = describe_shards(self.streams, stream_arn)
            except StreamNotEnabled:
                self._shards[stream_arn] = None
        return self._shards[stream_arn]


def read_range(streams: Any, rng: FailedRange) -> RangeRead:
    """Re-read ``rng`` from the stream (DescribeStream, GetShardIterator, GetRecords).

    Never raises for trimming: the result says ``trimmed`` with the reason. Raises
    botocore errors other than trimming/expiry (access denied, throttling after retries).
    """
    return _read_range(streams, rng, _ShardCache(streams).get(rng.stream_arn))


def _read_range(streams: Any, rng: FailedRange, shards: list[Shard] | None,
                max_empty_pages: int = MAX_EMPTY_PAGES) -> RangeRead:
    """``read_range`` with the stream's shards given (None: the stream is gone)."""
    if shards is None:
        return RangeRead(trimmed=True, reason=f"stream {rng.stream_arn} no longer exists")
    shard = next((s for s in shards if s.shard_id == rng.shard_id), None)
    if shard is None:
        return RangeRead(trimmed=True, reason="the shard is no longer in the stream "
                         "(shards leave the stream 24 hours after they close)")
    shard_start = shard.starting_sequence_number
    if shard_start and shard_start.isdigit() and seq_int(rng.start) < seq_int(shard_start):
        return RangeRead(trimmed=True, reason=f"the shard now begins at {shard_start}")

    out = RangeRead()
    start, end = seq_int(rng.start), seq_int(rng.end)
    iterator = _iterator(streams, rng, "AT_SEQUENCE_NUMBER", rng.start)
    if iterator is None:
        out.trimmed, out.reason = True, "its first record is no longer readable"
        iterator = _iterator(streams, rng, "TRIM_HORIZON", None)
    last: str | None = None
    empty = 0
    reached_end = False
    while iterator is not None and not reached_end:
        try:
            resp = streams.get_records(ShardIterator=iterator, Limit=MAX_GET_RECORDS)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ExpiredIteratorException":
                iterator = (_iterator(streams, rng, "AFTER_SEQUENCE_NUMBER", last) if last
                            else _iterator(streams, rng, "AT_SEQUENCE_NUMBER", rng.start))
                continue
            if code == "TrimmedDataAccessException":
                out.trimmed = True
                out.reason = out.reason or "TrimmedDataAccessException while reading"
                break
            raise
        page = resp.get("Records", [])
        iterator = resp.get("NextShardIterator")
        empty = 0 if page else empty + 1
        for record in page:
            seq_text = record["dynamodb"]["SequenceNumber"]
            seq = seq_int(seq_text)
            last = seq_text
            if seq < start:
                continue
            if seq > end:
                reached_end = True
                if not out.records and out.first_retained is None:
                    out.first_retained = record
                break
            if not out.records and seq > start:
                # The stream's oldest record in this range is not the range's first.
                out.trimmed = True
                out.reason = out.reason or "records before the first retained one are gone"
                out.first_retained = record
            out.records.append(record)
            if seq == end:
                reached_end = True
                break
        if not page and empty >= max_empty_pages:
            break
    if reached_end and not out.records and not out.trimmed:
        out.trimmed, out.reason = True, "no record of the range is left in the stream"
    if out.trimmed and out.first_retained is None and out.records:
        out.first_retained = out.records[0]
    out.complete = reached_end and not out.trimmed
    return out


def _iterator(streams: Any, rng: FailedRange, kind: str, seq: str | None) -> str | None:
    """A shard iterator, or None when the position was trimmed."""
    kwargs: dict[str, Any] = {"StreamArn": rng.stream_arn, "ShardId": rng.shard_id,
                              "ShardIteratorType": kind}
    if seq is not None:
        kwargs["SequenceNumber"] = seq
    try:
        return str(streams.get_shard_iterator(**kwargs)["ShardIterator"])
    except ClientError as exc:
        if error_code(exc) in ("TrimmedDataAccessException", "ResourceNotFoundException"):
            return None
        raise


# --------------------------------------------------------------------------- outcomes


def _iso(when: datetime | None) -> str:
    return iso_s(when) if when else "an unknown time"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _created(record: Mapping[str, Any] | None) -> datetime | None:
    if record is None:
        return None
    value = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def trimmed_error(rng: FailedRange, read: RangeRead, *, now: float) -> DataTrimmed:
    """The one-line error for a trimmed range: shard, range, time lost, the remedy."""
    lost_until = _created(read.first_retained) if read.records else None
    if lost_until is not None:
        first_kept = read.records[0]["dynamodb"]["SequenceNumber"]
        lost = (f"changes made from {_iso(rng.first_arrival)} until {_iso(lost_until)} "
                f"(before sequence number {first_kept}) are lost; {len(read.records)} "
                "later record(s) of the range are still in the stream")
    else:
        span = ""
        if rng.first_arrival and rng.last_arrival:
            span = f" ({_duration(rng.last_arrival.timestamp() - rng.first_arrival.timestamp())})"
        count = f"{rng.batch_size} " if rng.batch_size is not None else ""
        lost = (f"the {count}change(s) made from {_iso(rng.first_arrival)} to "
                f"{_iso(rng.last_arrival)}{span} are lost")
    age = rng.age_seconds(now)
    ago = f"; the batch failed {_duration(age)} ago" if age is not None else ""
    past = " (past the stream's 24 h retention)" if age is not None \
        and age > STREAM_RETENTION_SECONDS else ""
    table = rng.table_name or "<table>"
    return DataTrimmed(
        f"{rng.label()} of table {table} was trimmed from the stream ({read.reason}){ago}"
        f"{past}; {lost}. "
        f"Run 'ddbtrail backfill --table {table}' to snapshot the current items; the "
        "message stays in the queue ('ddbtrail redrive --discard-trimmed' deletes it once "
        "backfilled)")


@dataclass(slots=True)
class RangeOutcome:
    """What redrive did with one message."""

    message_id: str
    status: Status
    range: FailedRange | None = None
    records: int = 0  # records of the range the stream still holds
    rows: int = 0  # rows delivered
    error: DdbtrailError | None = None
    deleted: bool = False
    message_age_seconds: float | None = None

    def log_fields(self) -> dict[str, Any]:
        """Flat fields for one structured log line."""
        r = self.range
        return {
            "message_id": self.message_id, "status": self.status,
            "stream_arn": r.stream_arn if r else None, "shard_id": r.shard_id if r else None,
            "start_sequence_number": r.start if r else None,
            "end_sequence_number": r.end if r else None,
            "batch_size": r.batch_size if r else None, "records": self.records,
            "rows": self.rows, "deleted": self.deleted,
            "message_age_seconds": self.message_age_seconds,
            "error": str(self.error) if self.error else None,
        }


@dataclass(slots=True)
class RedriveReport:
    """Every outcome of a run, in the order messages were handled."""

    outcomes: list[RangeOutcome] = field(default_factory=list)
    dry_run: bool = False

    def by_status(self, *statuses: Status) -> list[RangeOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def kept(self) -> list[RangeOutcome]:
        return [o for o in self.outcomes if not o.deleted]

    def metrics(self) -> dict[str, float]:
        """Counts (and the oldest message age, in seconds) to publish, by metric name."""
        ages = [o.message_age_seconds for o in self.kept if o.message_age_seconds is not None]
        return {
            "Messages": len(self.outcomes),
            "RedrivenRanges": len(self.by_status("redriven")),
            "RedrivenRecords": sum(o.records for o in self.by_status("redriven")),
            "RedrivenRows": sum(o.rows for o in self.outcomes),
            "TrimmedRanges": len(self.by_status("trimmed", "discarded")),
            "FailedRanges": len(self.by_status("failed", "incomplete", "unreadable")),
            "KeptMessages": len(self.kept),
            "OldestKeptMessageAgeSeconds": max(ages, default=0.0),
        }

    def first_error(self) -> DdbtrailError | None:
        """The error to report for the run: a trimmed range first, else any other."""
        errors = [o.error for o in self.outcomes if o.error is not None]
        trimmed = [e for e in errors if isinstance(e, DataTrimmed)]
        return (trimmed or errors or [None])[0]


# --------------------------------------------------------------------------- redrive


@dataclass(frozen=True, slots=True)
class _Message:
    message_id: str
    receipt: str
    body: str
    sent_ms: int | None


def _receive(sqs: Any, queue_url: str, *, visibility: int, wait: int) -> list[_Message]:
    resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                               VisibilityTimeout=visibility, WaitTimeSeconds=wait,
                               AttributeNames=["SentTimestamp"])
    out = []
    for m in resp.get("Messages", []):
        sent = m.get("Attributes", {}).get("SentTimestamp")
        out.append(_Message(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""),
                            int(sent) if sent and sent.isdigit() else None))
    return out


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def deliver_records(records: Sequence[Mapping[str, Any]], stream_arn: str, *,
                    sink: Sink, capture: CaptureSettings, s3: Any = None,
                    remaining_seconds: Callable[[], float] | None = None,
                    receipts: ReceiptStore | None = None) -> int:
    """Run GetRecords records through the capture path; return the rows handed over.
    Receipts (when ``receipts`` or ``capture.receipts_bucket`` says where) name the
    source ``redrive``.

    Raises DeliveryFailed naming the first record not delivered.
    """
    capture = replace(capture, receipt_source="redrive")
    rows = 0
    for chunk in _batches(records, CAPTURE_CHUNK):
        event = lambda_event(chunk, stream_arn)
        try:
            result = capture_batch(event, sink=sink, settings=capture, s3=s3,
                                   remaining_seconds=remaining_seconds, receipts=receipts)
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryFailed(f"delivery to {sink.name} failed: {exc}") from exc
        rows += result.rows
        if result.failed:
            why = "; ".join(str(m) for m in result.malformed[:1]) or (
                result.delivery.last_error or "not accepted after retries")
            raise DeliveryFailed(f"record {result.first_failure or '?'} and later ones were "
                                 f"not delivered ({why})")
    return rows


def redrive(
    queue_url: str,
    *,
    sqs: Any,
    streams: Any,
    sink: Sink,
    capture: CaptureSettings,
    s3: Any = None,
    dry_run: bool = False,
    discard_trimmed: bool = False,
    max_messages: int | None = None,
    visibility_timeout: int = 300,
    wait_seconds: int = 1,
    now: Callable[[], float] = time.time,
    remaining_seconds: Callable[[], float] | None = None,
    min_remaining_seconds: float = 30.0,
    on_outcome: Callable[[RangeOutcome], None] | None = None,
    receipts: ReceiptStore | None = None,
) -> RedriveReport:
    """Redrive every on-failure message of ``queue_url`` (see the module docstring).
    Delivered rows leave receipts (source ``redrive``) in ``receipts``, or under
    ``capture.receipts_bucket`` through ``s3``.

    ``sink`` takes the rows (Firehose or the local delivery stream); its ``flush`` makes
    handed-over rows durable and is called before any message is deleted.
    Messages received but kept are made visible again when the run ends. ``on_outcome``
    is called once per message, after its deletion was decided (one log line each). With ``dry_run``
    ranges are read and counted, nothing is delivered or deleted. The run stops when the
    queue is empty, after ``max_messages``, or when ``remaining_seconds()`` drops under
    ``min_remaining_seconds``. Returns the report; raises DeliveryFailed if ``sink.flush``
    fails (no message of that receive is then deleted) and botocore errors for SQS.
    """
    report = RedriveReport(dry_run=dry_run)
    shards = _ShardCache(streams)
    kept: list[_Message] = []
    try:
        while max_messages is None or len(report.outcomes) < max_messages:
            if remaining_seconds is not None and remaining_seconds() < min_remaining_seconds:
                logger.warning("stopping: too little time left for another receive")
                break
            messages = _receive(sqs, queue_url, visibility=visibility_timeout,
                                wait=wait_seconds)
            if not messages:
                break
            if max_messages is not None:
                extra = messages[max_messages - len(report.outcomes):]
                kept.extend(extra)
                messages = messages[:max_messages - len(report.outcomes)]
            handled = [(m, _handle(m, streams=streams, shards=shards, sink=sink,
                                   capture=capture, s3=s3, dry_run=dry_run, now=now(),
                                   remaining_seconds=remaining_seconds, receipts=receipts))
                       for m in messages]
            deletable = [(m, o) for m, o in handled if o.status == "redriven"
                         or (o.status == "trimmed" and discard_trimmed)]
            if deletable:
                try:
                    sink.flush()
                except DdbtrailError as exc:
                    for _, o in deletable:
                        o.status, o.error = "failed", exc
                    kept.extend(m for m, _ in handled)
                    _finish(report, handled, on_outcome)
                    raise
            deleted = _delete(sqs, queue_url, [m for m, _ in deletable])
            for m, o in handled:
                if m.message_id in deleted:
                    o.deleted = True
                    if o.status == "trimmed":
                        o.status = "discarded"
                else:
                    kept.append(m)
            _finish(report, handled, on_outcome)
    finally:
        _release(sqs, queue_url, kept)
    return report


def _finish(report: RedriveReport, handled: list[tuple[_Message, RangeOutcome]],
            on_outcome: Callable[[RangeOutcome], None] | None) -> None:
    for _, outcome in handled:
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)


def _handle(m: _Message, *, streams: Any, shards: _ShardCache, sink: Sink,
            capture: CaptureSettings, s3: Any, dry_run: bool, now: float,
            remaining_seconds: Callable[[], float] | None,
            receipts: ReceiptStore | None) -> RangeOutcome:
    age = (now - m.sent_ms / 1000) if m.sent_ms is not None else None
    try:
        rng = parse_on_failure(m.body, message_id=m.message_id)
    except MalformedEvent as exc:
        return RangeOutcome(m.message_id, "unreadable", error=exc, message_age_seconds=age)
    outcome = RangeOutcome(m.message_id, "listed", range=rng, message_age_seconds=age)
    try:
        read = _read_range(streams, rng, shards.get(rng.stream_arn))
    except (ClientError, BotoCoreError) as exc:
        outcome.status = "failed"
        outcome.error = DdbtrailError(f"{rng.label()}: cannot be read ({exc})")
        return outcome
    outcome.records = len(read.records)
    if read.trimmed:
        outcome.status = "trimmed"
        outcome.error = trimmed_error(rng, read, now=now)
    elif not read.complete:
        outcome.status = "incomplete"
        outcome.error = DdbtrailError(
            f"{rng.label()}: the stream returned {len(read.records)} record(s) but not the "
            "range's end; the message stays for the next run")
    if dry_run or not read.records:
        return outcome
    try:
        outcome.rows = deliver_records(read.records, rng.stream_arn, sink=sink,
                                       capture=capture, s3=s3,
                                       remaining_seconds=remaining_seconds,
                                       receipts=receipts)
    except DeliveryFailed as exc:
        outcome.status = "failed"
        outcome.error = DeliveryFailed(f"{rng.label()}: {exc}")
        return outcome
    if outcome.status == "listed":
        outcome.status = "redriven"
    return outcome


def _delete(sqs: Any, queue_url: str, messages: Sequence[_Message]) -> set[str]:
    """Delete messages; return the ids deleted. A failed delete keeps the message (the
    range will be redriven again: duplicates, never loss)."""
    done: set[str] = set()
    for batch in _batches(messages, 10):
        resp = sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(batch)])
        for ok in resp.get("Successful", []):
            done.add(batch[int(ok["Id"])].message_id)
        for bad in resp.get("Failed", []):
            logger.warning("could not delete message %s (%s); it will be redriven again",
                           batch[int(bad["Id"])].message_id, bad.get("Message", bad.get("Code")))
    return done


def _release(sqs: Any, queue_url: str, messages: Sequence[_Message]) -> None:
    """Make kept messages visible again at once, for the next run and the age alarm."""
    for batch in _batches(messages, 10):
        try:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt, "VisibilityTimeout": 0}
                for i, m in enumerate(batch)])
        except (ClientError, BotoCoreError) as exc:
            # Harmless: they reappear when the visibility timeout ends.
            logger.warning("could not release %d kept message(s): %s", len(batch), exc)
