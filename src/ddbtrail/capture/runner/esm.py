"""The stream runner: what Lambda's event source mapping does, on one machine.

For each shard (parents before children) it reads with GetRecords, builds the exact
Lambda event and calls ``processor(event)``, which returns Lambda's response
(``{"batchItemFailures": [...]}``) or raises. It then behaves as the event source mapping
does with ``FunctionResponseTypes=["ReportBatchItemFailures"]``:

* success: the batch is processed; the shard's position moves past it;
* partial response: the position moves to just before the *lowest* reported
  ``itemIdentifier`` and the rest is retried (an empty, unknown or malformed identifier
  fails the whole batch);
* error (an exception, or no progress): with ``bisect_on_error`` the batch is split in
  two and each half is retried separately (splits do not count as retries); a single
  record is retried with exponential backoff; after ``max_retry_attempts`` (-1: forever) the
  batch goes to the on-failure destination (a DDBStreamBatchInfo record in the lake) and
  the position moves past it. That is never silent: it is logged and counted.

Checkpoints: positions are written to the ``CheckpointStore`` every
``checkpoint_interval`` seconds, when a shard ends, and when the run ends -- and always
AFTER ``before_checkpoint()`` (the delivery stream's ``flush``) has returned, so a
checkpoint never covers rows still in a buffer. A crash re-reads from the last checkpoint:
duplicates, never losses.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from ddbtrail.capture.runner.checkpoint import Checkpoint, CheckpointStore
from ddbtrail.capture.runner.shards import (
    MAX_GET_RECORDS,
    Shard,
    StartingPosition,
    describe_shards,
    error_code,
    lambda_event,
    ready_shards,
    seq_int,
)
from ddbtrail.core.exceptions import (
    ConfigError,
    DdbtrailError,
    DeliveryFailed,
    PermanentAwsError,
)
from ddbtrail.core.timefmt import iso_s

logger = logging.getLogger(__name__)

Processor = Callable[[dict[str, Any]], Any]
Record = Mapping[str, Any]

MAX_BATCH_SIZE: Final = 10_000
# A closed shard may answer with empty pages before its end; read this many per step.
_EMPTY_PAGES_PER_STEP: Final = 10


@dataclass(frozen=True, slots=True)
class EsmSettings:
    """A DynamoDB Streams event source mapping's settings, with the one set of defaults:
    the stack deploys them (``infra/config.py``) and the local runner emulates them.

    The runner honours ``batch_size``, ``max_retry_attempts`` (-1: forever),
    ``bisect_on_error`` and ``starting_position``; it reads as fast as it can, so the
    batching window, record age and parallelization factor are the deployment's only.
    """

    batch_size: int = 500
    batch_window_seconds: int = 5
    max_retry_attempts: int = 10
    max_record_age_seconds: int = 21_600
    parallelization_factor: int = 1
    bisect_on_error: bool = True
    starting_position: StartingPosition = "TRIM_HORIZON"


@dataclass(frozen=True, slots=True)
class RunnerSettings(EsmSettings):
    """The local runner's settings: the mapping's, and how often it polls and checkpoints.

    ``checkpoint_interval``, ``poll_interval`` and ``describe_interval`` are seconds.
    """

    poll_interval: float = 1.0
    checkpoint_interval: float = 60.0
    describe_interval: float = 60.0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    function_name: str = "ddbtrail-local"

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"`batch_size` {self.batch_size}: must be 1..{MAX_BATCH_SIZE}")
        if not -1 <= self.max_retry_attempts <= 10_000:
            raise ConfigError(f"`max_retries` {self.max_retry_attempts}: must be -1 (forever) "
                              "or 0..10000")
        if self.starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ConfigError(f"starting position {self.starting_position!r}: "
                              "TRIM_HORIZON or LATEST")


@dataclass(slots=True)
class RunStats:
    """What a run did, for progress lines and summaries."""

    records: int = 0
    batches: int = 0
    invocations: int = 0
    retries: int = 0
    bisects: int = 0
    failed_batches: int = 0
    failed_records: int = 0
    checkpoints: int = 0
    expired_iterators: int = 0
    trimmed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failure_files: list[str] = field(default_factory=list)
    shards_total: int = 0
    shards_done: int = 0
    lag_seconds: float | None = None
    started: float = 0.0


@dataclass(slots=True)
class _ShardState:
    shard: Shard
    position: str | None = None  # last sequence number processed (or sent on-failure)
    committed: str | None = None
    done: bool = False
    committed_done: bool = False
    iterator: str | None = None
    last_read: str | None = None
    drained: bool = False
    buffer: list[Record] = field(default_factory=list)


class _BatchFailed(Exception):
    """The processor failed a whole batch (raised, or answered an invalid response)."""


class StreamRunner:
    """Read one DynamoDB stream and feed a processor, as Lambda's event source mapping does.

    ``streams_client`` has boto3's dynamodbstreams API. ``before_checkpoint`` is called
    before any checkpoint is written and must make every row handed over so far durable
    (raise if it cannot); ``on_progress`` is called after each batch; ``on_failure``
    receives each on-failure record (Lambda's DDBStreamBatchInfo shape) once it is kept.
    """

    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        processor: Processor,
        checkpoints: CheckpointStore,
        settings: RunnerSettings | None = None,
        *,
        before_checkpoint: Callable[[], object] | None = None,
        on_progress: Callable[[RunStats], None] | None = None,
        on_failure: Callable[[dict[str, Any]], object] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.client = streams_client
        self.stream_arn = stream_arn
        self.processor = processor
        self.checkpoints = checkpoints
        self.settings = settings or RunnerSettings()
        self.before_checkpoint = before_checkpoint
        self.on_progress = on_progress
        self.on_failure = on_failure
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._shards: list[Shard] = []
        self._states: dict[str, _ShardState] = {}
        self._initial_shards: set[str] | None = None  # open when the run began
        self._last_commit = 0.0
        self._last_describe = 0.0
        self.stats = RunStats()
        self._raw_json = bool(getattr(streams_client, "returns_lambda_json", False))

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the run to stop after the current batch; it then checkpoints and returns."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, once: bool = False) -> RunStats:
        """Process the stream until ``stop()`` or, with ``once``, until every shard is
        drained to its current end. Checkpoints before returning.

        Raises StreamNotEnabled if the stream is gone, DeliveryFailed if rows cannot be
        made durable (no checkpoint then covers them), LakeError for checkpoint I/O.
        """
        self.stats.started = self._clock()
        self._last_commit = self._clock()
        self._refresh_shards()
        try:
            while not self._stop.is_set():
                ready = self._ready()
                if once and all(self._states[s.shard_id].drained for s in ready):
                    break
                read_any = False
                for shard in ready:
                    if self._stop.is_set():
                        break
                    state = self._states[shard.shard_id]
                    if once and state.drained:
                        continue
                    read_any |= self._step(state)
                    if state.done:
                        self.commit()
                self._maybe_commit()
                if self._clock() - self._last_describe >= self.settings.describe_interval:
                    self._refresh_shards()
                if not read_any and not once and not self._stop.is_set():
                    # Caught up: nothing older than now is waiting (Lambda's IteratorAge 0).
                    self.stats.lag_seconds = 0.0
                    if self.on_progress is not None:
                        self.on_progress(self.stats)
                    self._sleep(self.settings.poll_interval)
                    # New records may have arrived: the stream is read again.
                    for s in self._states.values():
                        s.drained = False
        finally:
            self.commit()
        return self.stats

    # ------------------------------------------------------------------ shards

    def _refresh_shards(self) -> None:
        self._shards = describe_shards(self.client, self.stream_arn)
        self._last_describe = self._clock()
        if self._initial_shards is None:
            self._initial_shards = {s.shard_id for s in self._shards}
        for shard in self._shards:
            old = self._states.get(shard.shard_id)
            if old is not None:
                old.shard = shard
                continue
            cp = self.checkpoints.load(self.stream_arn, shard.shard_id)
            state = _ShardState(shard)
            if cp is not None:
                state.position = state.committed = state.last_read = cp.sequence_number
                state.done = state.committed_done = cp.done
            self._states[shard.shard_id] = state
        self.stats.shards_total = len(self._shards)
        self.stats.shards_done = sum(1 for s in self._states.values() if s.done)

    def _ready(self) -> list[Shard]:
        done = {sid for sid, s in self._states.items() if s.done}
        return ready_shards(self._shards, done)

    def _acquire(self, state: _ShardState, *, after: str | None,
                 from_start: bool = False) -> None:
        """Get a shard iterator: AFTER ``after``; else TRIM_HORIZON when ``from_start``;
        else the starting position, which (as in Lambda) applies only to the shards open
        when the run began: shards that appear later are read from their start."""
        sid = state.shard.shard_id
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": sid}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        elif from_start or sid not in (self._initial_shards or ()):
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs["ShardIteratorType"] = self.settings.starting_position
        try:
            state.iterator = self.client.get_shard_iterator(**kwargs)["ShardIterator"]
        except ClientError as exc:
            code = error_code(exc)
            if code == "TrimmedDataAccessException" and after is not None:
                self._trimmed(state, after)
                self._acquire(state, after=None, from_start=True)
                return
            if code == "ResourceNotFoundException":
                self._warn(f"shard {sid} of {self.stream_arn} no longer exists (trimmed "
                           "after 24 hours); records not read from it are lost")
                state.done = True
                state.iterator = None
                return
            raise

    def _trimmed(self, state: _ShardState, after: str | None) -> None:
        sid = state.shard.shard_id
        self.stats.trimmed.append(sid)
        self._warn(f"shard {sid}: records after sequence number {after} were trimmed "
                   "(DynamoDB Streams keeps 24 hours) before they were read; continuing "
                   "from TRIM_HORIZON -- changes in that gap are missing from the trail")

    def _warn(self, message: str) -> None:
        logger.warning(message)
        self.stats.warnings.append(message)

    # ------------------------------------------------------------------ reading

    def _read_batch(self, state: _ShardState) -> list[Record]:
        """Up to batch_size new records of a shard. Sets ``drained`` and ``done``-ness."""
        if state.iterator is None and not state.done:
            self._acquire(state, after=state.last_read)
        records = state.buffer
        state.buffer = []
        empty_pages = 0
        while state.iterator is not None and len(records) < self.settings.batch_size:
            limit = min(MAX_GET_RECORDS, self.settings.batch_size - len(records))
            try:
                resp = self.client.get_records(ShardIterator=state.iterator, Limit=limit)
            except ClientError as exc:
                code = error_code(exc)
                if code == "ExpiredIteratorException":
                    self.stats.expired_iterators += 1
                    logger.info("shard %s: iterator expired; re-acquiring after %s",
                                state.shard.shard_id, state.last_read)
                    self._acquire(state, after=state.last_read)
                    continue
                if code == "TrimmedDataAccessException":
                    self._trimmed(state, state.last_read)
                    self._acquire(state, after=None, from_start=True)
                    continue
                raise
            page = resp.get("Records", [])
            state.iterator = resp.get("NextShardIterator")
            fresh = [r for r in page if self._is_new(state, r)]
            if fresh:
                state.last_read = fresh[-1]["dynamodb"]["SequenceNumber"]
                records.extend(fresh)
            if page:
                empty_pages = 0
                continue
            # An open shard with an empty page is drained for now; a closed one may
            # still hold records further on.
            empty_pages += 1
            if not state.shard.closed or empty_pages >= _EMPTY_PAGES_PER_STEP:
                break
        # A closed shard is drained only at its end (NextShardIterator null).
        if state.iterator is None or (not records and not state.shard.closed):
            state.drained = True
        return records

    @staticmethod
    def _is_new(state: _ShardState, record: Record) -> bool:
        if state.last_read is None:
            return True
        return seq_int(record["dynamodb"]["SequenceNumber"]) > seq_int(state.last_read)

    def _step(self, state: _ShardState) -> bool:
        """Read and process one batch of a shard; True if any record was read."""
        records = self._read_batch(state)
        if records:
            self._process(state, records)
        if state.iterator is None and not state.buffer and not self._stop.is_set() \
                and not state.done:
            # NextShardIterator null: the closed shard is read to its end.
            state.done = True
            logger.info("shard %s read to its end", state.shard.shard_id)
        self.stats.shards_done = sum(1 for s in self._states.values() if s.done)
        return bool(records)

    # ------------------------------------------------------------------ processing

    def _process(self, state: _ShardState, records: list[Record]) -> None:
        """Process a batch until done, sent to on-failure, or the run is stopping."""
        self.stats.batches += 1
        pending: list[tuple[list[Record], int]] = [(records, 0)]  # (sub-batch, attempts)
        while pending:
            batch, attempts = pending[0]
            if self._stop.is_set() and attempts > 0:
                # Unprocessed records stay unread from the checkpoint's point of view.
                self._unread(state, [r for b, _ in pending for r in b])
                return
            try:
                ok = self._invoke(batch)
            except _BatchFailed as exc:
                ok, error = 0, str(exc)
            else:
                error = "partial batch response" if ok < len(batch) else ""
            if ok:
                self._advance(state, batch[ok - 1])
                self.stats.records += ok
            if ok == len(batch):
                pending.pop(0)
                continue
            rest = batch[ok:]
            if ok:  # progress: retry the rest at once, as Lambda does
                pending[0] = (rest, 0)
                self.stats.retries += 1
                continue
            attempts += 1
            if self.settings.bisect_on_error and len(rest) > 1:
                half = len(rest) // 2
                pending[0:1] = [(rest[:half], 0), (rest[half:], 0)]
                self.stats.bisects += 1
                logger.warning("batch of %d records failed (%s); bisecting", len(rest), error)
                continue
            if 0 <= self.settings.max_retry_attempts < attempts:
                self._send_to_failure(state, rest, attempts, error)
                pending.pop(0)
                continue
            self.stats.retries += 1
            # The exponent is capped: with retries forever (-1), 2 ** 1024 overflows a float.
            delay = min(self.settings.retry_max_delay,
                        self.settings.retry_base_delay * 2 ** min(attempts - 1, 30))
            delay = self._rng.uniform(delay / 2, delay)
            if self.on_progress is not None:  # the retry shows while it waits
                self.on_progress(self.stats)
            logger.warning("shard %s: batch from %s failed (%s); retry %d in %.1f s",
                           state.shard.shard_id, rest[0]["dynamodb"]["SequenceNumber"],
                           error, attempts, delay)
            self._sleep(delay)
            pending[0] = (rest, attempts)
        if self.on_progress is not None:
            self.on_progress(self.stats)

    def _unread(self, state: _ShardState, records: list[Record]) -> None:
        state.buffer = records + state.buffer

    def _invoke(self, batch: Sequence[Record]) -> int:
        """Call the processor; return how many leading records succeeded.

        Raises _BatchFailed when the whole batch failed.
        """
        event = lambda_event(batch, self.stream_arn, raw_json=self._raw_json)
        self.stats.invocations += 1
        try:
            response = self.processor(event)
        except PermanentAwsError:
            raise  # no retry can fix it: the run stops (checkpointing what is done)
        except DdbtrailError as exc:
            raise _BatchFailed(str(exc)) from exc
        except Exception as exc:  # a function error, as Lambda sees it: retried
            raise _BatchFailed(f"{type(exc).__name__}: {exc}") from exc
        self._note_lag(batch[-1])
        return _successful_prefix(response, batch)

    def _note_lag(self, record: Record) -> None:
        created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            self.stats.lag_seconds = max(0.0, self._now() - float(created.timestamp()))
        elif isinstance(created, int | float):
            self.stats.lag_seconds = max(0.0, self._now() - float(created))

    def _advance(self, state: _ShardState, record: Record) -> None:
        state.position = record["dynamodb"]["SequenceNumber"]

    def _send_to_failure(self, state: _ShardState, batch: list[Record], attempts: int,
                         error: str) -> None:
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        info = {
            "requestContext": {"requestId": f"local-{int(self._now() * 1000)}",
                               "functionArn": self.settings.function_name,
                               "condition": "RetryAttemptsExhausted",
                               "approximateInvokeCount": attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": iso_s(self._now()),
            "DDBStreamBatchInfo": {
                "shardId": state.shard.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get(
                    "ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
            "error": error,
        }
        path = self.checkpoints.record_failure(info)
        if self.on_failure is not None:
            # Also to an on-failure destination (e.g. ddbtrail.capture.redrive.on_failure_sender).
            self.on_failure(info)
        self.stats.failed_batches += 1
        self.stats.failed_records += len(batch)
        self.stats.failure_files.append(path)
        self._warn(f"shard {state.shard.shard_id}: {len(batch)} record(s) "
                   f"{first['SequenceNumber']}..{last['SequenceNumber']} failed after "
                   f"{attempts} attempt(s) ({error}); kept in {path} for redrive")
        self._advance(state, batch[-1])

    # ------------------------------------------------------------------ checkpoints

    def _maybe_commit(self) -> None:
        if self._clock() - self._last_commit < self.settings.checkpoint_interval:
            return
        try:
            self.commit()
        except DeliveryFailed as exc:
            # Rows stay buffered and no checkpoint moved; the next commit tries again.
            self._warn(f"checkpoint postponed: {exc}")

    def commit(self) -> None:
        """Make handed-over rows durable (``before_checkpoint``), then write every moved
        checkpoint, parents first. Raises DeliveryFailed if ``before_checkpoint`` fails:
        then no checkpoint is written, so the rows will be read again.
        """
        moved = [s for s in (self._states.get(sh.shard_id) for sh in self._shards)
                 if s is not None and (s.position != s.committed or s.done != s.committed_done)]
        self._last_commit = self._clock()
        if not moved:
            return
        if self.before_checkpoint is not None:
            try:
                self.before_checkpoint()
            except DeliveryFailed:
                raise
            except Exception as exc:  # any failure: no checkpoint, the rows are read again
                raise DeliveryFailed(f"could not make rows durable before checkpointing: "
                                     f"{exc}") from exc
        for state in moved:
            self.checkpoints.save(Checkpoint(self.stream_arn, state.shard.shard_id,
                                             state.position, state.done))
            state.committed, state.committed_done = state.position, state.done
            self.stats.checkpoints += 1


def _iso(value: object) -> str | None:
    """A record's ApproximateCreationDateTime (datetime or epoch seconds) as ISO seconds."""
    if isinstance(value, datetime | int | float):
        return iso_s(value)
    return None


def _successful_prefix(response: object, batch: Sequence[Record]) -> int:
    """How many leading records a Lambda response says succeeded (see module docstring).

    Raises _BatchFailed for a response that fails the whole batch.
    """
    if response is None:
        return len(batch)
    if not isinstance(response, Mapping):
        raise _BatchFailed(f"the processor returned {type(response).__name__}, not a "
                           "batch response")
    failures = response.get("batchItemFailures")
    if not failures:
        return len(batch)
    if not isinstance(failures, list):
        raise _BatchFailed("batchItemFailures is not a list")
    index = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(batch)}
    lowest: int | None = None
    for failure in failures:
        ident = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(ident, str) or ident not in index:
            raise _BatchFailed(f"invalid itemIdentifier {ident!r} in batchItemFailures")
        i = index[ident]
        lowest = i if lowest is None else min(lowest, i)
    assert lowest is not None
    return lowest
