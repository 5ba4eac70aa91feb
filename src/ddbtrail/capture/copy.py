"""Throttled copy of selected items through SQS: source table -> queue -> target table.

The sender (``ddbtrail copy``) reads the selected keys with BatchGetItem and sends each
item as one SQS message, typed and lossless, at a steady rate (a token bucket), so the
target account sees no load spike. The consumer (``handlers/sqs_copy.py``) puts each
item into the target table; reserved concurrency and batch size bound its write rate.

Keys file: JSON Lines, one key per line, either plain values or DynamoDB typed JSON::

    {"pk": "user#1", "sk": 42}                       plain: S as a string, N as a number
    {"pk": {"S": "user#1"}, "sk": {"N": "42"}}       typed
    {"id": "AAEC"}                                   plain B key: its base64 text

Plain values are typed with the table's key schema (DescribeTable), numbers keep every
digit. Blank lines and lines starting with ``#`` are skipped.

Message body (version 1), typed DynamoDB JSON with B as base64, so nothing is lost::

    {"ddbtrail": "copy/1", "table": "<source>", "key": "<item_key>",
     "read_at": <epoch ms>, "item": {"pk": {"S": "user#1"}, ...}}
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.capture.keys import to_client, to_wire
from ddbtrail.core import codec
from ddbtrail.core.backoff import RetryPolicy, TokenBucket, fix_hint, is_permanent
from ddbtrail.core.exceptions import (
    DeliveryFailed,
    InvalidArgument,
    InvalidValue,
    PermanentAwsError,
    TableNotFound,
)

logger = logging.getLogger(__name__)

MESSAGE_FORMAT: Final = "copy/1"
MAX_BATCH_GET_KEYS: Final = 100
MAX_SQS_BATCH: Final = 10
# 256 KiB fits every queue; queues configured for it take up to 1 MiB.
DEFAULT_MAX_MESSAGE_BYTES: Final = 256 * 1024
MAX_SQS_MESSAGE_BYTES: Final = 1024 * 1024


# --------------------------------------------------------------------------- read


# Retry delays for BatchGetItem and SendMessageBatch: full jitter, 50 ms doubling to 5 s.
_BACKOFF: Final = RetryPolicy(base_delay=0.05, max_delay=5.0)


def batch_get(client: Any, table: str, keys: Sequence[codec.TypedItem], *,
              consistent: bool = False, max_attempts: int = 10,
              sleep: Callable[[float], None] = time.sleep,
              rng: random.Random | None = None) -> Iterator[codec.TypedItem]:
    """Items for ``keys`` (typed, B as base64 text), 100 keys per BatchGetItem call.

    UnprocessedKeys are retried with backoff and full jitter. Items that do not exist
    are simply not yielded. Order is not kept. Raises DeliveryFailed when keys are
    still unprocessed after ``max_attempts`` calls.
    """
    rng = rng or random.Random()
    for start in range(0, len(keys), MAX_BATCH_GET_KEYS):
        pending = [to_client(k) for k in keys[start:start + MAX_BATCH_GET_KEYS]]
        attempt = 0
        while pending:
            request = {table: {"Keys": pending, "ConsistentRead": consistent}}
            try:
                response = client.batch_get_item(RequestItems=request)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "ResourceNotFoundException":
                    raise TableNotFound(f"table {table} does not exist") from exc
                if code not in ("ProvisionedThroughputExceededException",
                                "ThrottlingException", "RequestLimitExceeded",
                                "InternalServerError"):
                    raise
                unprocessed: list[Any] = pending
            else:
                for item in response.get("Responses", {}).get(table, []):
                    yield to_wire(item)
                unprocessed = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not unprocessed:
                break
            attempt += 1
            if attempt >= max_attempts:
                raise DeliveryFailed(f"BatchGetItem on {table}: {len(unprocessed)} keys still "
                                     f"unprocessed after {attempt} attempts")
            sleep(_BACKOFF.delay(attempt, rng))
            pending = unprocessed


# --------------------------------------------------------------------------- send


def message_body(table: str, item: Mapping[str, Any], key_names: Iterable[str],
                 read_at_ms: int) -> str:
    """The SQS body for one item (JSON-safe typed item, B as base64)."""
    key = {n: item[n] for n in key_names}
    return json.dumps({"ddbtrail": MESSAGE_FORMAT, "table": table,
                       "key": codec.item_key(key), "read_at": read_at_ms, "item": item},
                      ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class CopyReport:
    """What a copy did. ``missing`` and ``too_large`` name item keys."""

    requested: int = 0
    read: int = 0
    sent: int = 0
    calls: int = 0
    retried_entries: int = 0
    waited_seconds: float = 0.0
    missing: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.too_large


def send_messages(sqs: Any, queue_url: str, bodies: Sequence[tuple[str, str]], *,
                  max_attempts: int = 8, sleep: Callable[[float], None] = time.sleep,
                  rng: random.Random | None = None, report: CopyReport | None = None) -> None:
    """Send ``(item_key, body)`` pairs in one SendMessageBatch (<= 10 entries), resending
    only the failed entries. Raises DeliveryFailed naming the keys still unsent."""
    rng = rng or random.Random()
    report = report if report is not None else CopyReport()
    pending = {str(i): pair for i, pair in enumerate(bodies)}
    attempt = 0
    while pending:
        report.calls += 1
        entries = [{"Id": i, "MessageBody": body} for i, (_, body) in pending.items()]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if is_permanent(exc):
                said = exc.response.get("Error", {}).get("Message", "")
                raise PermanentAwsError(f"SendMessageBatch to {queue_url}: {code}: {said}; "
                                        f"{fix_hint(code, 'queue ' + queue_url)}") from exc
            if "Throttl" not in code and code not in ("RequestThrottled", "ServiceUnavailable",
                                                      "InternalError", "KmsThrottled"):
                raise DeliveryFailed(f"SendMessageBatch to {queue_url}: {code}: {exc}") from exc
            failed = dict(pending)
            last = code
        except BotoCoreError as exc:
            failed, last = dict(pending), str(exc)
        else:
            for ok in response.get("Successful", []):
                if pending.pop(ok["Id"], None) is not None:
                    report.sent += 1
            failed = dict(pending)
            errors = response.get("Failed", [])
            last = "; ".join(f"{e.get('Code')}: {e.get('Message', '')}" for e in errors[:3])
            for e in errors:
                if e.get("SenderFault") and e.get("Id") in failed:
                    raise DeliveryFailed(f"SendMessageBatch rejected item "
                                         f"{failed[e['Id']][0]}: {e.get('Code')}: "
                                         f"{e.get('Message', '')}")
        if not failed:
            return
        attempt += 1
        if attempt >= max_attempts:
            raise DeliveryFailed(
                f"SendMessageBatch to {queue_url}: {len(failed)} messages unsent after "
                f"{attempt} attempts ({last}); first: {next(iter(failed.values()))[0]}")
        report.retried_entries += len(failed)
        sleep(_BACKOFF.delay(attempt, rng))
        pending = failed


def copy_items(
    *,
    source: Any,
    sqs: Any,
    table: str,
    keys: Sequence[codec.TypedItem],
    queue_url: str,
    rate: float | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    consistent: bool = False,
    progress: Callable[[int], None] | None = None,
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    sleep: Callable[[float], None] = time.sleep,
) -> CopyReport:
    """Read ``keys`` from ``table`` and send each item to ``queue_url``.

    At most ``rate`` messages per second (token bucket, burst of one SQS batch), batches
    of at most 10 messages and ``max_message_bytes`` (each message and each batch).
    ``progress(n)`` is called with the number of keys just handled. Items that do not
    exist are listed in ``missing``; items larger than one message in ``too_large``
    (not sent). Raises DeliveryFailed if messages cannot be sent after retries.
    """
    if not 1024 <= max_message_bytes <= MAX_SQS_MESSAGE_BYTES:
        raise InvalidArgument("max_message_bytes", max_message_bytes, "outside 1 KiB..1 MiB")
    names = list(keys[0]) if keys else []
    report = CopyReport(requested=len(keys))
    bucket = TokenBucket(rate, burst=min(MAX_SQS_BATCH, max(1.0, rate)),
                         sleep=sleep) if rate else None
    for start in range(0, len(keys), MAX_BATCH_GET_KEYS):
        chunk = keys[start:start + MAX_BATCH_GET_KEYS]
        read_at = clock_ms()
        found: set[str] = set()
        batch: list[tuple[str, str]] = []
        batch_bytes = 0

        def flush() -> None:
            nonlocal batch, batch_bytes
            if not batch:
                return
            if bucket is not None:
                report.waited_seconds += bucket.take(len(batch))
            send_messages(sqs, queue_url, batch, sleep=sleep, report=report)
            if progress is not None:
                progress(len(batch))
            batch, batch_bytes = [], 0

        for item in batch_get(source, table, chunk, consistent=consistent, sleep=sleep):
            report.read += 1
            key = codec.item_key({n: item[n] for n in names})
            found.add(key)
            body = message_body(table, item, names, read_at)
            size = len(body.encode("utf-8"))
            if size > max_message_bytes:
                report.too_large.append(key)
                logger.error("item too large for one SQS message", extra={
                    "item_key": key, "bytes": size, "max": max_message_bytes})
                if progress is not None:
                    progress(1)
                continue
            if len(batch) >= MAX_SQS_BATCH or batch_bytes + size > max_message_bytes:
                flush()
            batch.append((key, body))
            batch_bytes += size
        flush()
        missing = [k for k in (codec.item_key(x) for x in chunk) if k not in found]
        report.missing.extend(missing)
        if progress is not None and missing:
            progress(len(missing))
    return report


# --------------------------------------------------------------------------- consume


@dataclass(frozen=True, slots=True)
class CopyMessage:
    """A parsed copy message: the item in the low-level client's form."""

    table: str
    item_key: str
    read_at_ms: int
    item: codec.TypedItem


def parse_message(body: str) -> CopyMessage:
    """Parse a copy message body. Raises InvalidValue saying what is wrong."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidValue(f"message body is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("ddbtrail") != MESSAGE_FORMAT:
        raise InvalidValue(f"not a ddbtrail {MESSAGE_FORMAT} message")
    item = data.get("item")
    if not isinstance(item, dict) or not item:
        raise InvalidValue("message has no item")
    read_at = data.get("read_at")
    return CopyMessage(table=str(data.get("table", "")), item_key=str(data.get("key", "")),
                       read_at_ms=read_at if isinstance(read_at, int) else 0,
                       item=to_client(item))


def write_message(body: str, *, target: Any, table: str) -> CopyMessage:
    """Put one copied item into ``table``. Idempotent: a redelivered message puts the
    same item again. Raises InvalidValue for a bad body, ClientError from DynamoDB."""
    message = parse_message(body)
    target.put_item(TableName=table, Item=message.item)
    return message
