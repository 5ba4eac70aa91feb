"""Compaction: rewrite closed partitions into a few Parquet files sorted by item_key.

Why: Firehose leaves one small file per buffer flush (at least 96 a day per partition), in
arrival order, so a lookup of one item has to read every file. A compacted partition is
sorted by (item_key, sequence_number) and cut into small row groups whose min/max
statistics on ``item_key`` let DuckDB and Athena skip every row group but the item's own.
docs/benchmarks.md has the measurements behind the defaults.

Safety (argued in docs/benchmarks.md, proved in tests/integration/test_compact.py):

1. List the partition's files (the *old* set) and read them all.
2. Drop duplicate event_ids (at-least-once delivery), sort, write the new files. Each is
   written whole (local: temp file + rename; S3: one PUT), then read back to check its
   row count. Readers now see old + new: every event twice, once after dedup by event_id,
   which every ddbtrail reader does anyway.
3. Delete exactly the old set. Files that arrived after step 1 are not in it and stay.
   On a lake sealed by the stack's digest function, ``compact_one(defer_delete=True)``
   writes a pending-replacement note instead (``lake.replacements``): the hourly seal
   writes the compaction digest and then deletes the old set.

A crash anywhere leaves extra copies, never a gap; the next run folds them in. A reader
that listed the old set and then finds a file gone must list again: the new files were in
place before any old file was deleted.

An Iceberg lake (``lake.iceberg``) needs none of that: each partition's rewrite is one
commit that removes the old files from the table and adds the new ones, so a reader sees
one snapshot or the other. Old files stay on disk for readers of older snapshots until
snapshots are expired and orphans removed.
"""

from __future__ import annotations

import datetime as dt_mod
import gzip
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ddbtrail.core.exceptions import (
    CompactionFailed,
    InvalidArgument,
    LakeError,
    PartitionTooLarge,
)
from ddbtrail.core.row import arrow_schema
from ddbtrail.core.timefmt import iso_ms, parse_instant
from ddbtrail.lake.files import DataFile, Lake
from ddbtrail.lake.iceberg import (
    IcebergLake,
    PlannedFile,
    open_if_present,
    partition_needs_compacting,
    require_inside_root,
)
from ddbtrail.lake.jsonl import gunzip, read_jsonl
from ddbtrail.lake.replacements import pending_partitions, write_replacement
from ddbtrail.lake.result import PartitionResult

if TYPE_CHECKING:
    import pyarrow as pa

COMPACTED_PREFIX: Final = "compacted-"
# compacted-<UTC yyyymmddThhmmss>-<run id>-<part>.<suffix>
_COMPACTED_NAME: Final = re.compile(r"compacted-(\d{8}T\d{6}-[0-9a-f]{8})-\d{3}\.")


@dataclass(frozen=True, slots=True)
class CompactOptions:
    """Layout of compacted files.

    A partition becomes files that each hold a contiguous key range: ``file_rows`` rows,
    or None for files of about ``file_bytes`` of Arrow data (~40% of that as Parquet).
    ``row_group_rows``: rows per Parquet row group, or None to size them for the
    partition (``auto_row_group_rows``). Key-range files let a reader that knows each
    file's key bounds (an Iceberg manifest, the footer cache of ``lake.footers``) skip
    every file but one; an engine reading every footer reads the same total either way.
    """

    row_group_rows: int | None = None
    file_rows: int | None = None
    file_bytes: int = 16 << 20
    # Statistics only where a predicate can use them; footers stay small.
    stats_columns: tuple[str, ...] = ("item_key", "sequence_number", "timestamp", "action")


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    """One partition to compact and the files it has now (the old set)."""

    table_name: str
    dt: str
    files: tuple[DataFile, ...]

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def format(self) -> str:
        """parquet or jsonl; LakeError if the partition mixes them."""
        formats = {f.format for f in self.files}
        if len(formats) != 1:
            raise LakeError(f"partition table_name={self.table_name}/dt={self.dt} mixes "
                            f"formats {sorted(formats)}; compact it by hand")
        return formats.pop()


def today_utc() -> str:
    """Today's date (UTC) as YYYY-MM-DD: the first partition that is still open."""
    return dt_mod.datetime.now(dt_mod.UTC).strftime("%Y-%m-%d")


def check_before(before: str | None, *, today: str | None = None,
                 open_partitions: bool = False) -> str:
    """The ``before`` cut-off date: partitions with a dt before it are compacted. Takes
    every instant form (``timefmt.parse_instant``); an instant's own partition is not
    closed, so the cut-off is the instant's date (UTC). Defaults to today. InvalidArgument if
    malformed or in the future.

    ``open_partitions`` (Iceberg, whose commits make compacting a partition that is still
    written safe) allows up to tomorrow, so today's partition is compacted too.
    """
    today = today or today_utc()
    if before is None:
        return today
    before = iso_ms(parse_instant(before, what="before"))[:10]
    if open_partitions:
        tomorrow = (dt_mod.date.fromisoformat(today) + dt_mod.timedelta(days=1)).isoformat()
        if before > tomorrow:
            raise InvalidArgument("before", before, f"after tomorrow ({tomorrow}, UTC)")
        return before
    if before > today:
        raise InvalidArgument("before", before, f"after today ({today}, UTC); partitions "
                              "from today on are still being written")
    return before


def is_compacted(files: Sequence[DataFile]) -> bool:
    """True when the files are exactly the output of one compaction run."""
    runs = {m.group(1) if (m := _COMPACTED_NAME.match(f.path.rsplit("/", 1)[-1])) else None
            for f in files}
    return len(runs) == 1 and None not in runs


@dataclass(frozen=True, slots=True)
class Skipped:
    """A partition compaction leaves alone, and why (``open``, ``compacted`` or
    ``pending``: its last compaction awaits its digest, ``lake.replacements``)."""

    table_name: str
    dt: str
    reason: str


def skipped(lake: Lake, *, table: str | None = None, before: str | None = None,
            today: str | None = None) -> list[Skipped]:
    """The Hive partitions ``plan`` leaves out: ``open`` (dt on or after the cut-off, still
    being written), ``compacted`` (already one compaction run's output) or ``pending``."""
    cutoff = check_before(before, today=today)
    pending = pending_partitions(lake, table)
    by_partition: dict[tuple[str, str], list[DataFile]] = {}
    for f in lake.data_files(table):
        by_partition.setdefault((f.table_name, f.dt), []).append(f)
    out = []
    for (t, d), files in sorted(by_partition.items()):
        if d >= cutoff:
            out.append(Skipped(t, d, "open"))
        elif (t, d) in pending:
            out.append(Skipped(t, d, "pending"))
        elif is_compacted(files):
            out.append(Skipped(t, d, "compacted"))
    return out


def plan(lake: Lake, *, table: str | None = None, before: str | None = None,
         today: str | None = None, since: str | None = None) -> list[PartitionPlan]:
    """Closed partitions (dt < ``before``, default today UTC; and dt >= ``since``, a
    YYYY-MM-DD, when given) that need compacting.

    A partition needs it unless its files are exactly one compaction run's output, or its
    last compaction still awaits its digest (``lake.replacements``: compacting it again
    before then would replace files no digest lists). Sorted by table, then dt.
    """
    cutoff = check_before(before, today=today)
    pending = pending_partitions(lake, table)
    by_partition: dict[tuple[str, str], list[DataFile]] = {}
    for f in lake.data_files(table, dt_from=since):
        if f.dt < cutoff:
            by_partition.setdefault((f.table_name, f.dt), []).append(f)
    return [PartitionPlan(t, d, tuple(files)) for (t, d), files in sorted(by_partition.items())
            if not is_compacted(files) and (t, d) not in pending]


def _read_parquet(lake: Lake, files: Sequence[DataFile]) -> pa.Table:
    import pyarrow.dataset as ds

    schema = arrow_schema(include_partitions=False)
    # A file written before a column existed reads that column as nulls.
    dataset = ds.dataset([f.path for f in files], schema=schema, format="parquet",
                         filesystem=lake.fs)
    return dataset.to_table()


def dedup_and_sort(table: pa.Table) -> pa.Table:
    """One row per event_id (the earliest ingested), ordered by item_key, then
    sequence_number compared as a number (shorter first, then by digits)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return table
    # Indices are computed on the key columns alone and the whole rows taken once, so the
    # peak holds two copies of the partition (read and sorted), not four.
    order = pc.sort_indices(table.select(["event_id", "ingested_at"]),
                            sort_keys=[("event_id", "ascending"), ("ingested_at", "ascending")])
    ids = pc.take(table.column("event_id"), order)
    keep = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    first = pc.filter(order, pa.concat_arrays([pa.array([True]), keep.combine_chunks()]))
    keys = table.select(["item_key", "sequence_number"]).take(first)
    keyed = keys.append_column("__seq_len", pc.utf8_length(keys.column("sequence_number")))
    final = pc.sort_indices(keyed, sort_keys=[("item_key", "ascending"),
                                              ("__seq_len", "ascending"),
                                              ("sequence_number", "ascending")])
    return table.take(pc.take(first, final))


# Bytes of footer metadata per column chunk (measured with pyarrow 25, no statistics).
_FOOTER_BYTES_PER_CHUNK: Final = 80
# Columns that repeat within a sorted file (or have few values) keep dictionary encoding;
# unique ones (ids, times, images) skip it: a dictionary page there is pure overhead.
_DICTIONARY_COLUMNS: Final = (
    "schema_version", "action", "item_key", "keys", "type_hints", "changed_attributes",
    "stream_view_type", "ttl_delete", "user_identity", "event_source", "aws_region",
    "spill_uri", "snapshot_id",
)


def auto_row_group_rows(rows: int, row_bytes: float, columns: int) -> int:
    """Rows per row group for a partition of ``rows`` rows of ``row_bytes`` (Arrow) each.

    A key lookup on Athena, or one with no footer cached, reads every footer of the
    partition's files (about ``columns * 80`` bytes per row group) and the key's row
    group, least in total at sqrt(rows * footer_per_group / stored_row_bytes). Arrow's row
    bytes are about twice Parquet's, so this sizes groups a little under that minimum
    (the curve is flat there): a lookup with cached footers decodes a group every time.
    ~250 rows for 33k rows of ~0.85 KB, ~800 for 333k. Clamped to 128..131,072.
    """
    per_group_footer = columns * _FOOTER_BYTES_PER_CHUNK
    best = (max(rows, 1) * per_group_footer / max(row_bytes, 1.0)) ** 0.5
    return int(min(max(best, 128), 131_072))


def layout(table: pa.Table, options: CompactOptions) -> tuple[int, int]:
    """(rows per file, rows per row group) for a deduplicated, sorted partition."""
    row_bytes = table.nbytes / max(table.num_rows, 1)
    file_rows = options.file_rows or max(int(options.file_bytes / max(row_bytes, 1.0)), 1_024)
    group_rows = options.row_group_rows or auto_row_group_rows(
        table.num_rows, row_bytes, table.num_columns)
    return file_rows, group_rows


def _parquet_bytes(table: pa.Table, options: CompactOptions, group_rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(include_partitions=False)
    schema = schema.with_metadata({**(schema.metadata or {}),
                                   b"ddbtrail.compacted": b"1",
                                   b"ddbtrail.sorted_by": b"item_key,sequence_number"})
    sorting = [pq.SortingColumn(schema.get_field_index("item_key"))]
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema, compression="snappy",
                          write_statistics=list(options.stats_columns),
                          use_dictionary=list(_DICTIONARY_COLUMNS),
                          sorting_columns=sorting) as writer:
        writer.write_table(table.cast(schema), row_group_size=group_rows)
    return bytes(sink.getvalue().to_pybytes())


def _jsonl_gz_bytes(table: pa.Table, table_name: str, dt: str) -> bytes:
    """Whole rows as Firehose delivers them: JSON Lines carry their partition columns in each
    line (the jq partition query reads them), so they go back in beside the data columns."""
    from ddbtrail.core.flatten import row_bytes

    partition = {"table_name": table_name, "dt": dt}
    return gzip.compress(b"".join(row_bytes(r | partition) for r in table.to_pylist()),
                         mtime=0)


def _check_written(lake: Lake, path: str, expected_rows: int, fmt: str) -> int:
    """Size of a file just written, after checking it holds ``expected_rows`` rows."""
    import pyarrow.parquet as pq

    size = lake.fs.get_file_info(path).size or 0
    if fmt == "parquet":
        with lake.fs.open_input_file(path) as f:
            rows = pq.ParquetFile(f).metadata.num_rows
    else:
        rows = gunzip(lake.read_bytes(path) or b"").count(b"\n")
    if rows != expected_rows:
        raise LakeError(f"{path}: wrote {expected_rows} rows but it reads back {rows}")
    return size


def compact_partition(lake: Lake, part: PartitionPlan, *,
                      options: CompactOptions | None = None, dry_run: bool = False,
                      now: dt_mod.datetime | None = None,
                      on_written: Callable[[PartitionResult], None] | None = None,
                      keep_old: bool = False) -> PartitionResult:
    """Compact one partition (module docstring: the protocol). Never raises on the
    partition's data: the error goes in ``PartitionResult.error``, the old files stay.

    ``on_written`` runs between steps 2 and 3 (new files in place, old not yet deleted);
    ``keep_old`` skips step 3 (``on_written`` has left it to another: ``compact_one``).
    """
    options = options or CompactOptions()
    result = PartitionResult(part.table_name, part.dt, len(part.files), part.bytes)
    if dry_run:
        return result
    try:
        fmt = part.format
        table = _read_parquet(lake, part.files) if fmt == "parquet" else read_jsonl(
            lake, part.files)
        result.rows_before = table.num_rows
        table = dedup_and_sort(table)
        result.rows_after = table.num_rows
        when = (now or dt_mod.datetime.now(dt_mod.UTC)).strftime("%Y%m%dT%H%M%S")
        run = f"{when}-{uuid.uuid4().hex[:8]}"
        suffix = ".parquet" if fmt == "parquet" else ".jsonl.gz"
        folder = lake.partition(part.table_name, part.dt).rstrip("/")
        written = 0
        file_rows, group_rows = layout(table, options)
        for i, start in enumerate(range(0, max(table.num_rows, 1), file_rows)):
            chunk = table.slice(start, file_rows)
            data = _parquet_bytes(chunk, options, group_rows) if fmt == "parquet" else \
                _jsonl_gz_bytes(chunk, part.table_name, part.dt)
            path = f"{folder}/{COMPACTED_PREFIX}{run}-{i:03d}{suffix}"
            lake.write_atomic(path, data)
            result.new_files.append(path)
            written += _check_written(lake, path, chunk.num_rows, fmt)
        result.files_after = len(result.new_files)
        result.bytes_after = written
    except (LakeError, OSError, ValueError) as exc:
        # Old files are untouched; new ones (if any) only duplicate them.
        result.error = str(exc)
        return result
    if on_written is not None:
        on_written(result)
    if keep_old:
        return result
    new = set(result.new_files)
    for f in part.files:
        if f.path in new:
            continue
        try:
            lake.fs.delete_file(require_inside_root(lake, f.path, "delete"))
        except FileNotFoundError:
            continue  # another compactor removed it; its rows are in our new files too
        except (OSError, LakeError) as exc:
            result.error = f"kept {f.path} (cannot delete: {exc}); the next run removes it"
    return result


# Memory a compaction holds per byte of file, relative to Parquet's. Measured: gzip JSON
# Lines decompress ~6x and are written back from Python rows, 37x a partition's bytes at
# peak against Parquet's 7.5x (docs/deploy.md, Compaction).
JSONL_MEMORY_WEIGHT: Final = 5


def memory_bytes(part: PartitionPlan) -> int:
    """The partition's bytes weighted as Parquet's for a memory bound (``max_bytes``)."""
    return sum(f.size * (JSONL_MEMORY_WEIGHT if f.format == "jsonl" else 1) for f in part.files)


@dataclass(frozen=True, slots=True)
class RunPlan:
    """One scheduled run's share of ``plan``: ``partitions`` to compact now (oldest dt
    first, at most ``max_partitions``), ``oversize`` ones above ``max_bytes``
    (``memory_bytes``; left for a machine with more memory), and how many are
    ``remaining`` for the next run."""

    partitions: tuple[PartitionPlan, ...]
    oversize: tuple[PartitionPlan, ...]
    remaining: int


def plan_run(lake: Lake, *, lookback_days: int, max_partitions: int, max_bytes: int,
             today: str | None = None) -> RunPlan:
    """The closed partitions of the last ``lookback_days`` days that need compacting, cut
    to what one scheduled run does (``RunPlan``). Raises InvalidArgument on a bound below 1,
    LakeError when the lake cannot be listed."""
    for name, value in (("lookback_days", lookback_days), ("max_partitions", max_partitions),
                        ("max_bytes", max_bytes)):
        if value < 1:
            raise InvalidArgument(name, value, "must be 1 or more")
    today = today or today_utc()
    since = (dt_mod.date.fromisoformat(today) - dt_mod.timedelta(days=lookback_days)).isoformat()
    parts = sorted(plan(lake, today=today, since=since), key=lambda p: (p.dt, p.table_name))
    fits = [p for p in parts if memory_bytes(p) <= max_bytes]
    return RunPlan(tuple(fits[:max_partitions]),
                   tuple(p for p in parts if memory_bytes(p) > max_bytes),
                   max(len(fits) - max_partitions, 0))


def compact_one(lake: Lake, table_name: str, dt: str, *, max_bytes: int | None = None,
                options: CompactOptions | None = None, today: str | None = None,
                defer_delete: bool = False) -> PartitionResult:
    """Compact one closed partition, listing its files now (the old set of the protocol).

    A partition that is already one run's output, holds no file, or has a pending
    replacement is left alone (its result has ``files_after`` None). With ``defer_delete``
    (a lake sealed by the stack's digest function) the old files are not deleted: a
    pending-replacement note names them for the next seal (``lake.replacements``).
    Raises InvalidArgument when ``dt`` is not closed, PartitionTooLarge above ``max_bytes``
    (``memory_bytes``), CompactionFailed when the compaction fails (the old files are
    kept), LakeError when the lake cannot be listed.
    """
    if dt >= check_before(None, today=today):
        raise InvalidArgument("dt", dt, "the partition is still being written (not closed)")
    files = tuple(lake.data_files(table_name, dt_from=dt, dt_to=dt))
    part = PartitionPlan(table_name, dt, files)
    if not files or is_compacted(files) or (table_name, dt) in pending_partitions(
            lake, table_name):
        return PartitionResult(table_name, dt, len(files), part.bytes)
    if max_bytes is not None and memory_bytes(part) > max_bytes:
        raise PartitionTooLarge(f"partition table_name={table_name}/dt={dt} holds {part.bytes:,}"
                                f" bytes ({memory_bytes(part):,} weighted as Parquet), over the "
                                f"{max_bytes:,} one compaction may read")
    note = None
    if defer_delete:
        def note(result: PartitionResult) -> None:
            write_replacement(lake, table_name, dt, replaced=[f.path for f in files],
                              written=result.new_files)
    result = compact_partition(lake, part, options=options, on_written=note,
                               keep_old=defer_delete)
    if result.error is not None and result.files_after is None:
        raise CompactionFailed(f"partition table_name={table_name}/dt={dt}: {result.error}")
    return result


Progress = Callable[[int, int, str], None]
"""Called with (partitions done, partitions in all, the partition about to be compacted,
as ``<table>/dt=<dt>``); once more at the end with an empty name."""


@dataclass(slots=True)
class CompactReport:
    """What ``compact`` did (or, with ``dry_run``, would do). Iterating it (and ``len``,
    indexing) goes over ``partitions``.

    ``partitions``: one result per partition compacted, Hive first, then Iceberg, each by
    table and dt. ``skipped``: Hive partitions left alone and why. ``cutoff``: the Hive
    cut-off date (partitions before it are closed). ``iceberg``: the lake has an Iceberg
    table. ``expired_snapshots`` / ``removed_files``: None unless asked for.
    """

    partitions: list[PartitionResult]
    skipped: list[Skipped]
    cutoff: str
    iceberg: bool
    expired_snapshots: int | None = None
    removed_files: list[str] | None = None

    def __iter__(self) -> Iterator[PartitionResult]:
        return iter(self.partitions)

    def __len__(self) -> int:
        return len(self.partitions)

    def __getitem__(self, i: int) -> PartitionResult:
        return self.partitions[i]

    @property
    def failed(self) -> list[PartitionResult]:
        """Partitions whose compaction failed (their old files are kept)."""
        return failed(self.partitions)


def _check_age(name: str, value: dt_mod.timedelta | None) -> None:
    if value is not None and value < dt_mod.timedelta(0):
        raise InvalidArgument(name, str(value), "must be 0 or more")


def _ago(value: dt_mod.timedelta) -> dt_mod.datetime:
    # Taken when the step runs, so files the compaction itself orphaned count as aged.
    return dt_mod.datetime.now(dt_mod.UTC) - value


def compact(lake: Lake, *, table: str | None = None, before: str | None = None,
            dry_run: bool = False, expire_snapshots: dt_mod.timedelta | None = None,
            remove_orphans: dt_mod.timedelta | None = None,
            options: CompactOptions | None = None, today: str | None = None,
            progress: Progress | None = None,
            on_replace: Callable[[PartitionPlan, PartitionResult], None] | None = None,
            ) -> CompactReport:
    """Compact every partition of the lake that needs it, in every format it holds.

    Hive Parquet and JSON Lines: closed partitions (dt before ``before``, an instant in any
    ``timefmt.parse_instant`` form, default today UTC), new files written whole before any
    old file is deleted. Iceberg: partitions before ``before`` (which may be tomorrow, to
    take today's too), one commit each; then, unless ``dry_run``, snapshots older than
    ``expire_snapshots`` are expired (never the current one) and files no snapshot needs
    older than ``remove_orphans`` are deleted. Nothing outside the lake's root is ever
    written or deleted.

    ``progress`` (optional) is told of each partition (``Progress``). ``on_replace(plan,
    result)`` runs for each Hive partition once its new files are in place and before its
    old ones are deleted (the evidence digest of the replacement); what it raises stops
    the run with the old files kept. A partition's failure is in its result, never raised.
    Raises InvalidArgument naming ``before``, ``table``,
    ``expire_snapshots`` or ``remove_orphans`` when it is wrong; TableNotInLake when
    ``table`` has no changes in the lake; LakeError (a CatalogError, LakeMoved, ...) when
    the lake cannot be read.
    """
    from ddbtrail.lake.tables import require_table

    _check_age("expire_snapshots", expire_snapshots)
    _check_age("remove_orphans", remove_orphans)
    if before is not None:
        before = iso_ms(parse_instant(before, what="before"))[:10]
    if table is not None:
        require_table(lake, table)
    ice = open_if_present(lake)
    if ice is None and (expire_snapshots is not None or remove_orphans is not None):
        raise InvalidArgument("expire_snapshots" if expire_snapshots is not None
                              else "remove_orphans", None, "needs an Iceberg lake")
    # Checked first: an Iceberg lake takes dates up to tomorrow, its Hive files never.
    ice_parts = plan_iceberg(ice, table=table, before=before, today=today) if ice else []
    hive_before = min(before, today or today_utc()) if before and ice else before
    hive_parts = plan(lake, table=table, before=hive_before, today=today)
    report = CompactReport([], skipped(lake, table=table, before=hive_before, today=today),
                           check_before(hive_before, today=today), ice is not None)
    total = len(hive_parts) + len(ice_parts)
    for part in hive_parts:
        if progress is not None:
            progress(len(report.partitions), total, f"{part.table_name}/dt={part.dt}")
        hook = None
        if on_replace is not None:
            def hook(result: PartitionResult, part: PartitionPlan = part) -> None:
                assert on_replace is not None
                on_replace(part, result)
        report.partitions.append(compact_partition(lake, part, options=options,
                                                   dry_run=dry_run, on_written=hook))
    for ipart in ice_parts:
        assert ice is not None
        if progress is not None:
            progress(len(report.partitions), total, f"{ipart.table_name}/dt={ipart.dt}")
        report.partitions.append(compact_iceberg_partition(ice, ipart, options=options,
                                                           dry_run=dry_run))
    if progress is not None:
        progress(total, total, "")
    if ice is not None and not dry_run:
        if expire_snapshots is not None:
            report.expired_snapshots = ice.expire_snapshots(_ago(expire_snapshots))
        if remove_orphans is not None:
            report.removed_files = ice.remove_orphans(_ago(remove_orphans))
    return report


def failed(results: Iterable[PartitionResult],
           ) -> list[PartitionResult]:
    """Results that carry an error."""
    return [r for r in results if r.error is not None]


# --------------------------------------------------------------------------- Iceberg


@dataclass(frozen=True, slots=True)
class IcebergPartitionPlan:
    """One partition of the Iceberg table to compact, with its files now."""

    table_name: str
    dt: str
    files: tuple[PlannedFile, ...]

    @property
    def bytes(self) -> int:
        return sum(f.file.size for f in self.files)


def plan_iceberg(ice: IcebergLake, *, table: str | None = None, before: str | None = None,
                 today: str | None = None) -> list[IcebergPartitionPlan]:
    """Partitions of the Iceberg table (dt < ``before``, which may be tomorrow) whose files
    are not all sorted by the table's sort order. Sorted by table, then dt."""
    cutoff = check_before(before, today=today, open_partitions=True)
    if not ice.exists():
        return []
    order = ice.sort_order_id()
    return [IcebergPartitionPlan(t, d, tuple(files))
            for (t, d), files in sorted(ice.partitions(table_name=table).items())
            if d < cutoff and partition_needs_compacting(files, order)]


def compact_iceberg_partition(
        ice: IcebergLake, part: IcebergPartitionPlan, *, options: CompactOptions | None = None,
        dry_run: bool = False,
        before_commit: Callable[[PartitionResult], None] | None = None,
) -> PartitionResult:
    """Compact one Iceberg partition in one commit (``IcebergLake.compact_partition``),
    with the Hive compaction's dedup, sort and sizing rules."""
    options = options or CompactOptions()
    if dry_run:
        return PartitionResult(part.table_name, part.dt, len(part.files), part.bytes)

    return ice.compact_partition(part.table_name, part.dt,
                                 layout=lambda table: layout(table, options),
                                 sort=dedup_and_sort, before_commit=before_commit)
