"""The local delivery stream: a stand-in for Amazon Data Firehose that writes the lake.

It is a ``ddbtrail.delivery.sink.Sink`` whose ``send`` is Firehose's own path (packing,
PutRecordBatch, retries: ``FirehoseSink``) into its ``put_record_batch``, so capture's rows
reach the lake exactly as they reach Firehose, and it enforces Firehose's limits the way
Firehose does:

* more than 500 records, or a record over 1,000 KiB, is a ``ValidationException`` for the
  whole call; more than 4 MiB in one call is an ``InvalidArgumentException``;
* when it cannot take more (its buffer is full because writes keep failing) it answers
  per record with ``ServiceUnavailableException``, as a throttled Firehose does.

Accepted records are processed as the deployed stream processes them, from the same
definition (``delivery.processing.Processing``: de-aggregation, the partition keys the jq
query reads, the delimiter, the prefix): each row is routed to its partition
(``table_name`` and ``dt`` read from the row) and buffered. A partition's buffer is written
when it reaches ``buffer_bytes``, when its oldest row is ``buffer_seconds`` old, or on
``flush()``: one object per partition per flush, JSON Lines or Parquet (Snappy, schema
``row.arrow_schema(include_partitions=False)``), named like Firehose's objects, under
``<lake>/table_name=<t>/dt=<d>/`` via ``Lake.write_atomic``. With ``fmt="iceberg"`` a flush
is one append commit to the lake's Iceberg table ``ddbtrail.changes`` (``lake.iceberg``)
holding every due partition's rows: a failed commit leaves its data files as orphans,
never a half-visible batch, and the rows stay buffered.

A failed write loses nothing: the rows stay buffered and ``flush()`` raises
``DeliveryFailed``. Callers that checkpoint a source (the stream runner) must call
``flush()`` *before* writing a checkpoint that covers the rows.

Rows that cannot be routed (not JSON, no ``table_name``/``dt``, a missing required column)
go where Firehose sends records that fail conversion: an error output, here
``<lake>/_ddbtrail/delivery-errors/``, as JSON holding the raw data and the reason.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from ddbtrail.core.exceptions import ConfigError, DeliveryFailed, LakeError
from ddbtrail.core.formats import LAKE_FORMATS, LakeFormat
from ddbtrail.core.row import DATA_COLUMNS, arrow_schema
from ddbtrail.delivery.firehose import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_RECORD_BYTES,
    FirehoseSink,
)
from ddbtrail.delivery.processing import Processing
from ddbtrail.delivery.sink import DeliveryReport, EncodedRow
from ddbtrail.lake.files import Lake

logger = logging.getLogger(__name__)

Format = LakeFormat
FORMATS: Final = LAKE_FORMATS
# Firehose's BufferingHints defaults: 5 MiB or 300 s, whichever comes first.
DEFAULT_BUFFER_BYTES: Final = 5 * 1024 * 1024
DEFAULT_BUFFER_SECONDS: Final = 300.0
# Past this many buffered bytes (writes failing), new records are refused per record.
DEFAULT_MAX_BUFFERED_BYTES: Final = 256 * 1024 * 1024
_DT: Final = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_TABLE: Final = re.compile(r"[A-Za-z0-9_.-]{1,255}\Z")
_REQUIRED: Final = tuple(c.name for c in DATA_COLUMNS if not c.nullable)


def _client_error(code: str, message: str) -> ClientError:
    """The exception boto3 raises for an error answer from the service."""
    response: Any = {"Error": {"Code": code, "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}
    return ClientError(response, "PutRecordBatch")


@dataclass(slots=True)
class _Buffer:
    """Rows of one partition waiting to be written, in arrival order; ``lines`` hold the
    bytes each row takes in a JSON Lines object."""

    lines: list[bytes] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    since: float = 0.0


@dataclass(slots=True)
class DeliveryStats:
    """Counts since the stream was opened."""

    calls: int = 0
    records: int = 0
    rows: int = 0
    rows_written: int = 0
    files_written: int = 0
    bytes_written: int = 0
    error_rows: int = 0
    refused_records: int = 0
    failed_writes: int = 0
    files: list[str] = field(default_factory=list)


class LocalDeliveryStream:
    """A Firehose delivery stream that writes to a ``Lake``. Use ``flush()``/``close()``.

    ``clock`` returns seconds (monotonic is fine); ``now`` returns epoch seconds for object
    names; ``sleep`` waits between the retries of ``send``. Thread-safe: one lock guards the
    buffers.
    """

    def __init__(
        self,
        lake: Lake,
        *,
        name: str = "ddbtrail-local",
        fmt: str = "parquet",
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        buffer_seconds: float = DEFAULT_BUFFER_SECONDS,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        gzip_jsonl: bool = False,
        processing: Processing | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if fmt not in FORMATS:
            raise ConfigError(f"`format` {fmt!r}: choose parquet, jsonl or iceberg")
        if buffer_bytes < 1 or buffer_seconds < 0:
            raise ConfigError("buffer_bytes must be >= 1 and buffer_seconds >= 0")
        self.lake = lake
        self.name = name
        self.fmt: str = fmt
        self.buffer_bytes = buffer_bytes
        self.buffer_seconds = buffer_seconds
        self.max_buffered_bytes = max_buffered_bytes
        self.gzip_jsonl = gzip_jsonl
        # Default: packed records, as FirehoseSink sends them (``send``).
        self.processing = processing or Processing.for_stream(fmt=fmt, packs_rows=True)
        self._clock = clock
        self._now = now
        self.sleep = sleep  # the backoff of ``send``'s retries
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        self._errors: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._closed = False
        self.stats = DeliveryStats()

    # ------------------------------------------------------------------ Sink

    @property
    def max_row_bytes(self) -> int:
        return MAX_RECORD_BYTES

    def send(self, rows: Sequence[EncodedRow], *,
             deadline: Callable[[], float] | None = None) -> DeliveryReport:
        """Deliver rows as capture delivers to Firehose: packed, PutRecordBatch, retries."""
        return FirehoseSink(self, self.name, sleep=self.sleep).send(rows, deadline=deadline)

    # ------------------------------------------------------------------ Firehose API

    def put_record_batch(self, *, DeliveryStreamName: str,
                         Records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Accept records as Firehose's PutRecordBatch does.

        Raises botocore's ClientError for what Firehose rejects as a whole (wrong stream
        name, limits); answers per record with ``ServiceUnavailableException`` when the
        buffer is full because writes are failing. Never drops an accepted record.
        """
        if DeliveryStreamName != self.name:
            raise _client_error("ResourceNotFoundException",
                                f"Firehose {DeliveryStreamName} not found under account.")
        self._validate(Records)
        with self._lock:
            if self._closed:
                raise _client_error("ResourceNotFoundException",
                                    f"Firehose {self.name} is closed.")
            self.stats.calls += 1
            responses: list[dict[str, str]] = []
            failed = 0
            for rec in Records:
                data = bytes(rec["Data"])
                if self._buffered_bytes() + len(data) > self.max_buffered_bytes:
                    failed += 1
                    self.stats.refused_records += 1
                    responses.append({"ErrorCode": "ServiceUnavailableException",
                                      "ErrorMessage": "Slow down: the local delivery stream "
                                      "cannot write to the lake and its buffer is full."})
                    continue
                self._accept(data)
                self.stats.records += 1
                responses.append({"RecordId": f"local-{self.stats.records:020d}"})
            self._flush_due(raise_errors=False)
            return {"FailedPutCount": failed, "Encrypted": False,
                    "RequestResponses": responses}

    def _validate(self, records: Sequence[Mapping[str, Any]]) -> None:
        n = len(records)
        if n == 0 or n > MAX_BATCH_RECORDS:
            raise _client_error(
                "ValidationException",
                f"1 validation error detected: Value with {n} records at 'records' failed to "
                f"satisfy constraint: Member must have length between 1 and {MAX_BATCH_RECORDS}")
        total = 0
        for i, rec in enumerate(records):
            data = rec.get("Data") if isinstance(rec, Mapping) else None
            if not isinstance(data, bytes | bytearray):
                raise _client_error("ValidationException",
                                    f"record {i}: Data must be bytes")
            if len(data) > MAX_RECORD_BYTES:
                raise _client_error(
                    "ValidationException",
                    f"1 validation error detected: Value at 'records.{i + 1}.member.data' failed "
                    f"to satisfy constraint: Member must have length less than or equal to "
                    f"{MAX_RECORD_BYTES} (got {len(data)} bytes)")
            total += len(data)
        if total > MAX_BATCH_BYTES:
            raise _client_error(
                "InvalidArgumentException",
                f"the request holds {total} bytes of records; the limit is {MAX_BATCH_BYTES} "
                "(4 MiB) per PutRecordBatch call")

    # ------------------------------------------------------------------ buffering

    def _buffered_bytes(self) -> int:
        return sum(b.size for b in self._buffers.values())

    def _accept(self, data: bytes) -> None:
        """Split a (possibly packed) record into rows and buffer each in its partition."""
        lines = self.processing.split(data)
        for line, written in zip(lines, self.processing.delimit(data, lines), strict=True):
            self.stats.rows += 1
            row, reason = _parse_row(line)
            if row is None:
                self._error(line, reason)
                continue
            table, dt = self.processing.extract(row).values()
            part = (table, dt)
            buf = self._buffers.get(part)
            if buf is None:
                buf = self._buffers[part] = _Buffer(since=self._clock())
            buf.lines.append(written)
            buf.rows.append(row)
            buf.size += len(written)

    def _error(self, line: bytes, reason: str) -> None:
        self.stats.error_rows += 1
        logger.error("row cannot be delivered to a partition; sent to the error output",
                     extra={"reason": reason})
        self._errors.append({
            "rawData": base64.b64encode(line).decode(),
            "errorCode": "local.RowInvalid",
            "errorMessage": reason,
            "deliveryStreamName": self.name,
            "approximateArrivalTimestamp": int(self._now() * 1000),
        })

    def _flush_due(self, *, raise_errors: bool) -> None:
        """Write the partitions whose buffer is full or old enough."""
        now = self._clock()
        due = [p for p, b in self._buffers.items()
               if b.size >= self.buffer_bytes or now - b.since >= self.buffer_seconds]
        if due or self._errors:
            self._write(due, raise_errors=raise_errors)

    def poll(self) -> None:
        """Write what is due by size or interval. Raises DeliveryFailed if a write fails."""
        with self._lock:
            self._flush_due(raise_errors=True)

    def flush(self) -> int:
        """Write every buffered row now; return how many rows were written.

        Raises DeliveryFailed if any partition could not be written; its rows stay
        buffered and the next ``flush()`` tries them again.
        """
        with self._lock:
            return self._write(list(self._buffers), raise_errors=True)

    def close(self) -> None:
        """Flush and refuse further records. Raises DeliveryFailed like ``flush``."""
        with self._lock:
            self.flush()
            self._closed = True

    def __enter__(self) -> LocalDeliveryStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pending_rows(self) -> int:
        """Rows accepted but not yet written."""
        with self._lock:
            return sum(len(b.rows) for b in self._buffers.values())

    # ------------------------------------------------------------------ writing

    def _write(self, parts: list[tuple[str, str]], *, raise_errors: bool) -> int:
        written = 0
        failures: list[str] = []
        if self.fmt == "iceberg":
            written = self._commit_iceberg(parts, failures)
            parts = []
        for part in parts:
            buf = self._buffers.get(part)
            if buf is None or not buf.rows:
                self._buffers.pop(part, None)
                continue
            path = self._object_path(part)
            try:
                body = self._encode(buf)
            except (ValueError, TypeError):
                # A row Parquet cannot hold (a wrong type): send it to the error output,
                # as Firehose's format conversion does, and write the others.
                self._reject_unconvertible(buf)
                if not buf.rows:
                    del self._buffers[part]
                    continue
                body = self._encode(buf)
            try:
                self.lake.write_atomic(path, body)
            except (LakeError, OSError) as exc:
                self.stats.failed_writes += 1
                failures.append(f"table_name={part[0]}/dt={part[1]} ({exc})")
                continue
            del self._buffers[part]
            written += len(buf.rows)
            self.stats.rows_written += len(buf.rows)
            self.stats.files_written += 1
            self.stats.bytes_written += buf.size
            self.stats.files.append(path)
        if self._errors:
            try:
                self._write_errors()
            except (LakeError, OSError) as exc:
                failures.append(f"error output ({exc})")
        if failures:
            message = (f"local delivery stream {self.name}: could not write "
                       f"{'; '.join(failures)}; {self.pending_rows} rows stay buffered")
            logger.error(message)
            if raise_errors:
                raise DeliveryFailed(message)
        return written

    def _commit_iceberg(self, parts: list[tuple[str, str]], failures: list[str]) -> int:
        """All due partitions in one Iceberg append: one commit per flush, so a reader (and
        a checkpoint written after ``flush()`` returns) sees the whole batch or none of it."""
        import pyarrow as pa

        from ddbtrail.lake.iceberg import IcebergLake

        schema = arrow_schema(include_partitions=True)
        bufs = []
        for part in parts:
            buf = self._buffers.get(part)
            if buf is None or not buf.rows:
                self._buffers.pop(part, None)
                continue
            try:
                parquet_bytes(buf.rows)
            except (ValueError, TypeError):
                self._reject_unconvertible(buf)
            if not buf.rows:
                del self._buffers[part]
                continue
            bufs.append((part, buf))
        if not bufs:
            return 0
        rows = [{n: r.get(n) for n in schema.names} for _, buf in bufs for r in buf.rows]
        try:
            added = IcebergLake(self.lake, create=True).append(
                pa.Table.from_pylist(rows, schema=schema))
        except (LakeError, OSError) as exc:
            self.stats.failed_writes += 1
            failures.append(f"Iceberg table ddbtrail.changes ({exc})")
            return 0
        for part, buf in bufs:
            del self._buffers[part]
            self.stats.rows_written += len(buf.rows)
            self.stats.bytes_written += buf.size
        self.stats.files_written += len(added)
        self.stats.files.extend(added)
        return len(rows)

    def _object_path(self, part: tuple[str, str]) -> str:
        when = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(self._now()))
        suffix = ".parquet" if self.fmt == "parquet" else (
            ".jsonl.gz" if self.gzip_jsonl else ".jsonl")
        # Firehose: <stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<random>
        name = self.lake.new_file_name(self.name, suffix, f"1-{when}")
        prefix = self.processing.object_prefix(dict(zip(self.processing.partition_keys, part,
                                                        strict=True)))
        return self.lake.path(prefix.removeprefix(self.processing.lake_prefix), name)

    def _encode(self, buf: _Buffer) -> bytes:
        if self.fmt == "jsonl":
            data = b"".join(buf.lines)  # each row with its delimiter (Processing.delimit)
            return gzip.compress(data) if self.gzip_jsonl else data
        return parquet_bytes(buf.rows)

    def _reject_unconvertible(self, buf: _Buffer) -> None:
        keep_lines, keep_rows = [], []
        for line, row in zip(buf.lines, buf.rows, strict=True):
            try:
                parquet_bytes([row])
            except (ValueError, TypeError) as exc:
                self._error(line, f"event {row.get('event_id')!r}: cannot convert to "
                                  f"Parquet ({exc})")
            else:
                keep_lines.append(line)
                keep_rows.append(row)
        buf.lines, buf.rows = keep_lines, keep_rows
        buf.size = sum(len(line) for line in keep_lines)

    def _write_errors(self) -> None:
        when = time.strftime("%Y-%m-%d", time.gmtime(self._now()))
        path = self.lake.state_path(
            "delivery-errors", f"dt={when}",
            self.lake.new_file_name(self.name, ".jsonl", "1"))
        body = "".join(json.dumps(e) + "\n" for e in self._errors).encode()
        self.lake.write_atomic(path, body)
        self._errors.clear()


def parquet_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Rows as one Snappy Parquet file with the schema Firehose's conversion writes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(include_partitions=False)
    table = pa.Table.from_pylist(
        [{name: r.get(name) for name in schema.names} for r in rows], schema=schema)
    out = io.BytesIO()
    pq.write_table(table, out, compression="snappy")
    return out.getvalue()


def _parse_row(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """A row dict and "" if the line is a routable row, else None and the reason."""
    try:
        row = json.loads(line)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(row, dict):
        return None, "not a JSON object"
    table, dt = row.get("table_name"), row.get("dt")
    if not isinstance(table, str) or not _TABLE.match(table):
        return None, f"table_name {table!r} is not a table name"
    if not isinstance(dt, str) or not _DT.match(dt):
        return None, f"dt {dt!r} is not YYYY-MM-DD"
    missing = [c for c in _REQUIRED if row.get(c) is None]
    if missing:
        return None, f"event {row.get('event_id')!r}: required column(s) {missing} missing"
    return row, ""
