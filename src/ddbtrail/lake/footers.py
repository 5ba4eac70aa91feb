"""Parquet footers parsed once per process, and one item's rows read through them.

A key lookup on a compacted lake needs one row group per partition, but finding it means
parsing each file's footer (its row groups' ``item_key`` ranges), which costs more than
the rows themselves. Footers are cached here as pyarrow dataset fragments, whose parsed
metadata every read of the file reuses. A file is known by its path, size and
modification time: lake files are never rewritten in place (Firehose and compaction write
new names), and one that were would miss the cache, not be misread. S3 fragments are
also keyed by the filesystem object that read them, so a lake opened with other
credentials reads its own.
The cache holds at most ``MAX_FOOTER_BYTES`` of serialized footers, least recently used
out first.
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ddbtrail.core.exceptions import LakeError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

MAX_FOOTER_BYTES: Final = 64 << 20


@dataclass(frozen=True, slots=True)
class ParquetFile:
    """A Parquet file to read: where, its listing's size and mtime, and the partition
    values its path gives (empty when the file holds its partition columns)."""

    path: str
    size: int
    mtime_ms: int = 0
    partition: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Entry:
    fs: pafs.FileSystem  # held so that the id in the key stays this filesystem's
    fragment: ds.ParquetFileFragment
    # (min, max, row group id) of item_key per row group; None bounds: no statistics.
    key_ranges: tuple[tuple[str | None, str | None, int], ...]
    # (min, max) ``timestamp`` of each row group, in key_ranges' order; None: no statistics.
    times: tuple[tuple[int, int] | None, ...]
    footer_bytes: int
    # The file's item_key range when every group has one (a key-range file is skipped
    # without looking at its groups); None otherwise.
    bounds: tuple[str, str] | None


class _Cache:
    """Entries by file, least recently used first, and the footer bytes they hold."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self.held = 0

    def get(self, key: tuple[Any, ...]) -> _Entry | None:
        with self.lock:
            hit = self.entries.get(key)
            if hit is not None:
                self.entries.move_to_end(key)
            return hit

    def put(self, key: tuple[Any, ...], entry: _Entry) -> None:
        with self.lock:
            if key not in self.entries:
                self.entries[key] = entry
                self.held += entry.footer_bytes
            while self.held > MAX_FOOTER_BYTES and len(self.entries) > 1:
                _, old = self.entries.popitem(last=False)
                self.held -= old.footer_bytes

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.held = 0


_cache = _Cache()


def clear() -> None:
    """Forget every cached footer."""
    _cache.clear()


# A fragment on a Python-implemented filesystem (pyarrow.fs.PyFileSystem) cannot be
# destroyed once the interpreter is finalising (the process aborts): drop them before.
atexit.register(clear)


def _key(fs: pafs.FileSystem, f: ParquetFile) -> tuple[Any, ...]:
    import pyarrow.fs as pafs

    owner = 0 if isinstance(fs, pafs.LocalFileSystem) else id(fs)
    return owner, f.path, f.size, f.mtime_ms, f.partition


def _entry(fs: pafs.FileSystem, f: ParquetFile) -> _Entry:
    key = _key(fs, f)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    expr = None
    for name, value in f.partition:
        term = pc.field(name) == value
        expr = term if expr is None else expr & term
    try:
        fragment = ds.ParquetFileFormat().make_fragment(
            f.path, filesystem=fs,
            **({"partition_expression": expr} if expr is not None else {}))
        fragment.ensure_complete_metadata()
    except (OSError, pa.ArrowException) as exc:
        raise LakeError(f"{f.path}: cannot read its Parquet footer ({exc})") from exc
    ranges, times = [], []
    for group in fragment.row_groups:
        stats = group.statistics or {}
        keys, ts = stats.get("item_key"), stats.get("timestamp")
        ranges.append((keys["min"], keys["max"], group.id) if keys else (None, None, group.id))
        times.append((ts["min"], ts["max"]) if ts else None)
    known = [(lo, hi) for lo, hi, _ in ranges if lo is not None and hi is not None]
    bounds = (min(lo for lo, _ in known), max(hi for _, hi in known)) \
        if known and len(known) == len(ranges) else None
    entry = _Entry(fs, fragment, tuple(ranges), tuple(times),
                   int(fragment.metadata.serialized_size), bounds)
    _cache.put(key, entry)
    return entry


def read_item(fs: pafs.FileSystem, files: Sequence[ParquetFile], item_key: str,
              schema: pa.Schema, *, as_of_ms: int | None = None) -> pa.Table:
    """The rows of ``item_key`` in ``files``, as ``schema`` (a column a file lacks reads
    as nulls; partition columns come from ``ParquetFile.partition``).

    Only row groups whose ``item_key`` statistics can hold the key are read (all of a
    file's, where it has none). Where statistics narrow a file down (a key-sorted file),
    those groups' item_key column is read first and only a group that holds the key is
    decoded: a group's range brackets many keys it lacks, and decoding it whole costs
    ~20x its key column. Files are read in parallel (``READ_THREADS``), each opened once.

    With ``as_of_ms`` (epoch ms) only the rows that can be the item's latest change at or
    before that instant: every row of its greatest ``timestamp`` up to it (duplicates and
    ties included). Groups are then read newest first by their ``timestamp`` statistics,
    until no unread group can hold a later row, so a hot key's as-of reads a group or two.
    """
    chosen: list[tuple[ParquetFile, _Entry, list[int]]] = []
    for f in files:
        entry = _entry(fs, f)
        if entry.bounds is not None and not entry.bounds[0] <= item_key <= entry.bounds[1]:
            continue
        ids = [i for (lo, hi, i), ts in zip(entry.key_ranges, entry.times, strict=True)
               if (lo is None or hi is None or lo <= item_key <= hi)
               and (as_of_ms is None or ts is None or ts[0] <= as_of_ms)]
        if ids:
            chosen.append((f, entry, ids))
    if as_of_ms is not None:
        return _latest(fs, chosen, item_key, schema, as_of_ms)
    # A file none of whose groups statistics rule out is read whole, unchecked.
    found = _pool().map(lambda c: _rows(fs, c[0], c[1], c[2], item_key, schema,
                                        check=len(c[2]) < len(c[1].key_ranges)), chosen)
    return _concat(schema, [t for t in found if t is not None])


# Threads that read an item's row groups: decoding is CPU bound on local disk and each
# S3 read waits on a round trip, so a few more threads than cores.
READ_THREADS: Final = 8


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(READ_THREADS, thread_name_prefix="ddbtrail-read")


def _rows(fs: pafs.FileSystem, f: ParquetFile, entry: _Entry, ids: list[int],
          item_key: str, schema: pa.Schema, *, check: bool,
          as_of_ms: int | None = None) -> pa.Table | None:
    """``item_key``'s rows (at or before ``as_of_ms``) in row groups ``ids`` of one file,
    as ``schema``; None when none of the groups holds the key. ``check``: decode only the
    groups whose item_key column holds the key."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        with fs.open_input_file(f.path) as handle:
            reader = pq.ParquetFile(handle, metadata=entry.fragment.metadata)
            if check:
                ids = [i for i in ids if pc.any(pc.equal(reader.read_row_group(
                    i, columns=["item_key"], use_threads=False).column(0), item_key)).as_py()]
            if not ids:
                return None
            rows = reader.read_row_groups(ids, use_threads=False)
        keep = pc.equal(rows.column("item_key"), item_key)
        if as_of_ms is not None:
            keep = pc.and_(keep, pc.less_equal(rows.column("timestamp"), as_of_ms))
        return _conform(rows.filter(keep), schema, f.partition)
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise LakeError(f"{f.path}: cannot read the rows of {item_key} ({exc})") from exc


def _conform(rows: pa.Table, schema: pa.Schema,
             partition: tuple[tuple[str, str], ...]) -> pa.Table:
    """``rows`` as ``schema``: the path's partition values, nulls for a column the file
    lacks, and the file's types cast to the schema's (what a dataset scan does)."""
    import pyarrow as pa

    values = dict(partition)
    n = rows.num_rows
    columns = []
    for field in schema:
        if field.name in values:
            columns.append(pa.repeat(pa.scalar(values[field.name], field.type), n))
        elif field.name in rows.column_names:
            column = rows.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _concat(schema: pa.Schema, tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    return pa.concat_tables(tables) if tables else schema.empty_table()


def _latest(fs: pafs.FileSystem, chosen: list[tuple[ParquetFile, _Entry, list[int]]],
            item_key: str, schema: pa.Schema, as_of_ms: int) -> pa.Table:
    """``read_item``'s rows at the item's greatest timestamp up to ``as_of_ms``."""
    import pyarrow.compute as pc

    # Group ids are positions in the file (key_ranges and times are in that order). A
    # group without statistics may hold anything up to the instant.
    groups = sorted(((min(ts[1], as_of_ms) if (ts := entry.times[i]) else as_of_ms,
                      f, entry, i) for f, entry, ids in chosen for i in ids),
                    key=lambda g: g[0], reverse=True)
    found: list[pa.Table] = []
    best: int | None = None
    for newest, f, entry, i in groups:
        if best is not None and newest < best:
            break
        rows = _rows(fs, f, entry, [i], item_key, schema, check=True, as_of_ms=as_of_ms)
        if rows is not None and rows.num_rows:
            top = pc.max(rows.column("timestamp")).as_py()
            best = top if best is None else max(best, top)
            found.append(rows)
    rows = _concat(schema, found)
    return rows.filter(pc.equal(rows.column("timestamp"), best)) if found else rows


def first_row(fs: pafs.FileSystem, files: Sequence[ParquetFile],
              columns: Sequence[str]) -> dict[str, Any] | None:
    """``columns`` of the first row of the first of ``files`` that has one (a column the
    file lacks is None), or None when they hold no rows."""
    import pyarrow as pa

    for f in files:
        entry = _entry(fs, f)
        if not entry.key_ranges:
            continue
        names = set(entry.fragment.physical_schema.names)
        try:
            head = entry.fragment.subset(row_group_ids=[0]).head(
                1, columns=[c for c in columns if c in names])
        except (OSError, pa.ArrowException) as exc:
            raise LakeError(f"{f.path}: cannot read its first row ({exc})") from exc
        if head.num_rows:
            row = head.to_pylist()[0]
            return {c: row.get(c) for c in columns}
    return None
