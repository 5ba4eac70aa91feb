"""Backfill: a parallel, rate-limited, resumable Scan that writes SNAPSHOT rows to the lake.

A stream only carries changes made after it was enabled. A backfill reads every item once
and writes one ``action = SNAPSHOT`` row per item into the same lake (through the local
delivery stream, or a Firehose client), so as-of and history see items that never changed
since. For very large tables, DynamoDB's *export to S3* (point-in-time recovery required,
no read capacity consumed) is the better source; see docs/jobs.md.

How a SNAPSHOT row is ordered against stream changes of the same item
------------------------------------------------------------------------
* ``timestamp`` is the time the Scan page was *requested*, rounded down to the second
  (the precision of DynamoDB Streams' ApproximateCreationDateTime). Every change that
  committed before that second is already in the scanned image; a change stamped with the
  same second or later may or may not be, and wins (next point), which is correct either
  way: if it came before the read its image *is* the scanned state, if after, it is newer.
* ``sequence_number`` is the page request time in epoch milliseconds (13 digits). Stream
  sequence numbers have 21 to 40 digits, so compared as numbers ((length, value), as the
  saved queries do) a SNAPSHOT row sorts before *every* stream change of its item, and
  a later snapshot after an earlier one. With the stream captured continuously from
  before the backfill this is exact: any stream change of the item is at least as new as
  the scanned image, or equal to it. Ordered by (timestamp, sequence number) instead, a
  SNAPSHOT row sorts before any real change with the same timestamp, so that change
  wins the tie, and after older ones, which lets a backfill repair a capture gap.
* ``event_id`` is ``snapshot:<snapshot_id>:<sha256 of item_key, 32 hex>``, deterministic per
  run and item, so a resumed run that re-reads a page yields rows that deduplicate.
* ``snapshot_id`` names the run (one id per run; a resumed run keeps it).
* As-of for an instant *before* the snapshot cannot know items that predate the stream.

Resuming: each segment's LastEvaluatedKey is checkpointed under
``<lake>/_ddbtrail/backfill/<table>/`` *after* the page's rows are delivered (and, for the
local delivery stream, flushed), so a crash re-reads at most one page per segment.
Rate limit: a token bucket of ``max_rcu`` read capacity units per second shared by all
segments, charged with each page's ConsumedCapacity (ReturnConsumedCapacity=TOTAL).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.capture.keys import key_schema, to_client, to_wire
from ddbtrail.core import codec
from ddbtrail.core.backoff import RetryPolicy, TokenBucket
from ddbtrail.core.exceptions import DeliveryFailed, InvalidArgument, LakeError, TableNotFound
from ddbtrail.core.flatten import row_bytes
from ddbtrail.core.redact import RedactionPolicy, Redactor
from ddbtrail.core.row import Row, make_row
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.delivery.sink import EncodedRow, Sink
from ddbtrail.evidence.receipts import LakeReceipts, ReceiptChange, ReceiptStore, write_receipts
from ddbtrail.lake.files import Lake

logger = logging.getLogger(__name__)

EVENT_SOURCE: Final = "ddbtrail:backfill"
MAX_SEGMENTS: Final = 1_000_000  # DynamoDB's TotalSegments limit


def snapshot_event_id(snapshot_id: str, item_key: str) -> str:
    """Deterministic event id of one item's SNAPSHOT row in one run."""
    digest = hashlib.sha256(item_key.encode("utf-8")).hexdigest()[:32]
    return f"snapshot:{snapshot_id}:{digest}"


def snapshot_timestamp(requested_ms: int) -> int:
    """A SNAPSHOT row's timestamp: the page request time rounded down to the second."""
    return requested_ms - requested_ms % 1000


def snapshot_row(item: Mapping[str, Any], *, key_names: list[str], table_name: str,
                 snapshot_id: str, requested_ms: int, ingested_ms: int,
                 region: str | None, redactor: Redactor | None = None) -> Row:
    """The schema-v1 SNAPSHOT row of one scanned item (typed, B as base64 or bytes). Pure.

    ``redactor`` is applied to the key and the image before anything is encoded, as the
    capture path applies it to a change. Raises InvalidValue naming the attribute path if
    the item is not valid typed JSON.
    """
    keys: Mapping[str, Any] = {n: item[n] for n in key_names}
    if redactor is not None:
        codec.item_key(keys)  # a key DynamoDB could not hold stays an error when HMAC'd
        keys = redactor.item(keys, is_key=True)
        item = redactor.item(item)
    keys_text, hints = codec.encode_item(keys, "/keys")
    image_text, image_hints = codec.encode_item(item, "/new_image")
    hints.update(image_hints)
    item_key = codec.item_key(keys)
    return make_row(
        event_id=snapshot_event_id(snapshot_id, item_key),
        sequence_number=str(requested_ms),
        action="SNAPSHOT",
        item_key=item_key,
        keys=keys_text,
        old_image=None,
        new_image=image_text,
        type_hints=codec.hints_json(hints),
        changed_attributes=None,
        timestamp=snapshot_timestamp(requested_ms),
        ingested_at_ms=ingested_ms,
        event_source=EVENT_SOURCE,
        aws_region=region,
        snapshot_id=snapshot_id,
        table_name=table_name,
    )


# --------------------------------------------------------------------------- checkpoints


@dataclass(slots=True)
class SegmentState:
    """Progress of one Scan segment: where to go on, and whether it is finished."""

    segment: int
    last_key: dict[str, Any] | None = None  # JSON-safe typed key (B as base64)
    done: bool = False
    items: int = 0
    pages: int = 0
    consumed: float = 0.0


class Checkpoints:
    """Backfill state under ``<lake>/_ddbtrail/backfill/<table>/``.

    ``run.json`` holds the current run (snapshot id, segments, status); each segment's
    state lives in ``<snapshot_id>/segment-<n>.json``. Writes are atomic.
    """

    def __init__(self, lake: Lake, table: str) -> None:
        self.lake = lake
        self.table = table

    def _path(self, *parts: str) -> str:
        return self.lake.state_path("backfill", self.table, *parts)

    def _read(self, path: str) -> dict[str, Any] | None:
        data = self.lake.read_bytes(path)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise LakeError(f"backfill checkpoint {path} is not JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise LakeError(f"backfill checkpoint {path} is not a JSON object")
        return value

    def run(self) -> dict[str, Any] | None:
        """The current run record, or None."""
        return self._read(self._path("run.json"))

    def save_run(self, run: Mapping[str, Any]) -> None:
        self.lake.write_atomic(self._path("run.json"), json.dumps(run).encode())

    def segment(self, snapshot_id: str, n: int) -> SegmentState:
        raw = self._read(self._path(snapshot_id, f"segment-{n:06d}.json"))
        if raw is None:
            return SegmentState(n)
        return SegmentState(n, raw.get("last_key"), bool(raw.get("done")),
                            int(raw.get("items", 0)), int(raw.get("pages", 0)),
                            float(raw.get("consumed", 0.0)))

    def save_segment(self, snapshot_id: str, state: SegmentState) -> None:
        body = {"segment": state.segment, "last_key": state.last_key, "done": state.done,
                "items": state.items, "pages": state.pages, "consumed": state.consumed}
        self.lake.write_atomic(self._path(snapshot_id, f"segment-{state.segment:06d}.json"),
                               json.dumps(body).encode())


# --------------------------------------------------------------------------- the run


@dataclass(slots=True)
class BackfillReport:
    """What a backfill run did (counts include pages done before a resume)."""

    table: str
    snapshot_id: str
    segments: int
    resumed: bool = False
    # The last snapshot had finished and no new one was asked for: nothing was scanned.
    already_done: bool = False
    finished_at: str | None = None
    items: int = 0
    pages: int = 0
    consumed_rcu: float = 0.0
    waited_seconds: float = 0.0
    too_large: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.too_large


def new_snapshot_id(now_ms: int) -> str:
    """``<UTC time>-<8 hex>``, sortable by start time."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ms / 1000))
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def backfill(
    *,
    dynamodb: Any,
    sink: Sink,
    lake: Lake,
    table: str,
    segments: int = 4,
    max_rcu: float | None = None,
    consistent: bool = False,
    restart: bool = False,
    region: str | None = None,
    page_limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    redaction: RedactionPolicy | None = None,
    receipts: ReceiptStore | None = None,
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillReport:
    """Scan ``table`` in ``segments`` parallel threads and deliver one SNAPSHOT row per
    item to ``sink`` (its ``flush()`` is called before each checkpoint).

    Resumes the table's unfinished run; a finished run is not repeated (the report says
    ``already_done``) unless ``restart`` asks for a new snapshot, as Debezium's snapshot
    modes make a new snapshot explicit. ``progress(segment, items)`` is called after each
    page. ``redaction`` drops or HMACs attributes as capture does. Each page delivered
    leaves a receipt (source ``backfill``) in ``receipts`` [default: the lake's]. Raises
    TableNotFound, InvalidArgument, DeliveryFailed (rows or their receipt not delivered
    after retries: the checkpoint is not advanced), LakeError.
    """
    if not 1 <= segments <= MAX_SEGMENTS:
        raise InvalidArgument("segments", segments, f"outside 1..{MAX_SEGMENTS}")
    if max_rcu is not None and max_rcu <= 0:
        raise InvalidArgument("max_rcu", max_rcu, "must be greater than 0")
    names = list(key_schema(dynamodb, table))
    store = receipts if receipts is not None else LakeReceipts(lake)
    redactor = redaction.redactor(table) if redaction is not None else None
    checkpoints = Checkpoints(lake, table)
    run = checkpoints.run()
    resumed = bool(run and run.get("status") == "running" and not restart)
    if run is not None and run.get("status") == "done" and not restart:
        return BackfillReport(table=table, snapshot_id=str(run["snapshot_id"]),
                              segments=int(run["segments"]), already_done=True,
                              finished_at=run.get("finished_at"),
                              items=int(run.get("items", 0)))
    if resumed and run is not None:
        snapshot_id = str(run["snapshot_id"])
        if int(run["segments"]) != segments:
            logger.warning("resuming with the run's own segment count",
                           extra={"segments": run["segments"], "asked": segments})
            segments = int(run["segments"])
    else:
        started = clock_ms()
        snapshot_id = new_snapshot_id(started)
        run = {"snapshot_id": snapshot_id, "segments": segments, "status": "running",
               "started_at": iso_ms(started), "table": table}
        checkpoints.save_run(run)
    report = BackfillReport(table=table, snapshot_id=snapshot_id, segments=segments,
                            resumed=resumed)
    bucket = TokenBucket(max_rcu, burst=max_rcu, sleep=sleep) if max_rcu else None
    lock = threading.Lock()

    def scan_segment(n: int) -> SegmentState:
        state = checkpoints.segment(snapshot_id, n)
        while not state.done:
            waited = bucket.wait() if bucket is not None else 0.0
            kwargs: dict[str, Any] = {"TableName": table, "Segment": n,
                                      "TotalSegments": segments, "ConsistentRead": consistent,
                                      "ReturnConsumedCapacity": "TOTAL"}
            if state.last_key is not None:
                kwargs["ExclusiveStartKey"] = to_client(state.last_key)
            if page_limit:
                kwargs["Limit"] = page_limit
            requested = clock_ms()
            page = _scan_page(dynamodb, kwargs, sleep)
            consumed = float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
            if bucket is not None:
                bucket.charge(consumed)
            ingested = clock_ms()
            encoded: list[EncodedRow] = []
            covered: list[ReceiptChange] = []
            large: list[str] = []
            for i, item in enumerate(page.get("Items", [])):
                row = snapshot_row(item, key_names=names, table_name=table,
                                   snapshot_id=snapshot_id, requested_ms=requested,
                                   ingested_ms=ingested, region=region,
                                   redactor=redactor)
                data = row_bytes(row)
                if len(data) > sink.max_row_bytes:
                    large.append(row["item_key"])
                    continue
                encoded.append(EncodedRow(data, i, (row["table_name"], row["dt"])))
                covered.append(ReceiptChange(row["table_name"], row["dt"], row["event_id"],
                                             row["item_key"], row["action"], None))
            if encoded:
                result = sink.send(encoded)
                if not result.ok:
                    raise DeliveryFailed(
                        f"backfill of {table} segment {n}: {len(result.failed_sources)} rows "
                        f"not delivered ({result.last_error}); rerun to resume")
                try:
                    write_receipts(store, covered, source="backfill", received_ms=clock_ms())
                except Exception as exc:
                    raise DeliveryFailed(f"backfill of {table} segment {n}: receipt not "
                                         f"written ({exc}); rerun to resume") from exc
                sink.flush()
            last = page.get("LastEvaluatedKey")
            state.last_key = to_wire(last) if last else None
            state.done = last is None
            state.items += len(page.get("Items", []))
            state.pages += 1
            state.consumed += consumed
            checkpoints.save_segment(snapshot_id, state)
            with lock:
                report.waited_seconds += waited
                report.too_large.extend(large)
            if large:
                logger.error("items too large for one delivery record were not written",
                             extra={"segment": n, "item_keys": large})
            if progress is not None:
                progress(n, len(page.get("Items", [])))
        return state

    workers = min(segments, 16)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
        states = list(pool.map(scan_segment, range(segments)))
    for state in states:
        report.items += state.items
        report.pages += state.pages
        report.consumed_rcu += state.consumed
    run = dict(run or {}, status="done", finished_at=iso_ms(clock_ms()), items=report.items)
    checkpoints.save_run(run)
    return report


_RETRYABLE: Final = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                               "RequestLimitExceeded", "InternalServerError"})


_SCAN_BACKOFF: Final = RetryPolicy(base_delay=0.05, max_delay=5.0)


def _scan_page(client: Any, kwargs: Mapping[str, Any], sleep: Callable[[float], None],
               max_attempts: int = 10, rng: random.Random | None = None) -> dict[str, Any]:
    """One Scan call, retried with backoff and full jitter on throttling.
    Raises TableNotFound."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            page: dict[str, Any] = client.scan(**kwargs)
            return page
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise TableNotFound(f"table {kwargs['TableName']} does not exist") from exc
            if code not in _RETRYABLE or attempt + 1 >= max_attempts:
                raise
        except BotoCoreError:
            if attempt + 1 >= max_attempts:
                raise
        attempt += 1
        # Full jitter: parallel segments throttled together must not retry in lockstep.
        sleep(_SCAN_BACKOFF.delay(attempt, rng))
