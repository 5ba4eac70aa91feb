"""State snapshots: a table's state at an instant, so as-of reads O(items + changes since).

A snapshot holds one row per live item of a table at an instant (``snapshot_ms``): the
change row that made the item's state (``core.row.SNAPSHOT_COLUMNS``). It lives in the
lake's second dataset, ``<lake>/snapshots/table_name=<t>/snapshot_date=<d>/``, which no
reader of ``changes`` lists. Everything here runs the saved SQL, the same files Athena
runs:

- ``snapshot_state.sql`` builds one from the previous snapshot plus the changes between
  the two (the first reads the whole history), and records what it read: per change
  partition, the distinct events at or before the instant. ``snapshot_complete.sql``
  marks it done. ``build`` also records the change files it read (footer metadata);
- ``view_snapshot_status.sql`` says which builds are finished and which are *stale*: a
  change partition that now holds more events at or before the instant than the build
  read holds a change delivered late (a buffered one, a failed delivery retried), and a
  stale snapshot is never read nor built on. Clocks play no part; a redelivered event
  (same event_id) and compaction add no event. A snapshot file that cannot be read is
  skipped with a warning, and the reader falls back to an older build or the history;
- ``snapshot_candidates.sql`` and ``snapshot_check.sql`` are the daily maintenance's
  cheaper form of that check, for picking a base on Athena: it counts only the
  partitions a change can still reach after the build was made (``LATE_ARRIVAL_HOURS``).
  Locally, the file listing already narrows the check to the partitions written since;
- ``item_as_of.sql`` / ``table_as_of.sql`` start from the latest usable snapshot at or
  before the instant and read the changes after it only. Finding that snapshot reads the
  snapshot partitions from the instant's date down and stops at the first usable build.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ddbtrail.core.exceptions import InvalidArgument, LakeError
from ddbtrail.core.row import snapshot_arrow_schema, snapshot_partition_path
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.lake.files import DataFile, Lake
from ddbtrail.query.duck import connect
from ddbtrail.query.saved import install_views_for, load, run_duckdb

if TYPE_CHECKING:
    import duckdb

NO_SNAPSHOT: Final = "1970-01-01T00:00:00.000Z"
NO_BUILD: Final = "none"
DAY_MS: Final = 86_400_000
# Firehose's longest buffering interval: rows at or before an instant may reach S3 this
# long after it. A build closer to its instant than this may go stale (it is never wrong:
# view_snapshot_status finds the rows it did not read).
S3_SETTLE_SECONDS: Final = 900
# How long after its event time a change can still reach a deployed lake: 24 h in the
# DynamoDB stream (the Lambda reads it by then), the Lambda's run, then up to 24 h in
# Firehose (Direct PUT keeps records 24 h, retrying a failed S3 delivery until then).
# The daily maintenance's check (snapshot_check.sql, INTERVAL '49' HOUR) therefore counts
# only the change partitions whose date ended less than this before the build was made;
# readers (view_snapshot_status, ``status``, ``plan``) count every partition.
LATE_ARRIVAL_HOURS: Final = 49
# Parquet footer key of a snapshot file written by ``build``: the change files it read,
# a JSON list of [dt, path relative to the lake root, size, mtime ms].
READ_FILES_KEY: Final = b"ddbtrail.read_files"
# ... and the Iceberg snapshot it read, when the lake has an Iceberg table.
ICEBERG_KEY: Final = b"ddbtrail.iceberg_snapshot_id"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Build:
    """One finished snapshot build of a table (a row of ``snapshot_status``)."""

    table_name: str
    snapshot_date: str
    snapshot_ms: int
    made_at: str
    visible_before: str
    items: int
    late_changes: int
    stale: bool
    # The snapshot files an as-of reads for it: its own file (``build`` writes one), or
    # every file of its partition (Athena's INSERTs write several).
    files: tuple[DataFile, ...] = ()

    @property
    def instant(self) -> str:
        return iso_ms(self.snapshot_ms)


@dataclass(slots=True)
class Plan:
    """What an as-of reads: the snapshot it starts from (or None), the files, the bytes."""

    table_name: str
    at_ms: int
    snapshot: Build | None = None
    ignored: list[Build] = field(default_factory=list)   # stale builds at or before at_ms
    snapshot_files: list[DataFile] = field(default_factory=list)
    change_files: list[DataFile] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "path (reason)" of skipped files

    def values(self) -> dict[str, str]:
        """The snapshot parameters of the as-of queries."""
        if self.snapshot is None:
            return {"snapshot": NO_SNAPSHOT, "snapshot_made_at": NO_BUILD}
        return {"snapshot": self.snapshot.instant, "snapshot_made_at": self.snapshot.made_at}

    def explain(self) -> list[str]:
        """Lines for ``explain``: the snapshot used, those passed over and why, the files
        and bytes read."""
        lines = []
        if self.snapshot is None:
            lines.append(f"snapshot: none at or before {iso_ms(self.at_ms)}; reading the "
                         "whole history")
        else:
            s = self.snapshot
            items = f", {s.items} items" if s.items >= 0 else ""
            lines.append(f"snapshot: {s.instant} (made {s.made_at}{items})")
        for b in self.ignored:
            if b.late_changes < 0:
                lines.append(f"ignored unreadable snapshot {b.instant} (made {b.made_at}): "
                             "a file of its partition cannot be read")
            else:
                lines.append(f"ignored stale snapshot {b.instant} (made {b.made_at}): "
                             f"{b.late_changes} change(s) at or before it were delivered "
                             "after it was built")
        lines.extend(f"ignored unreadable snapshot file {u}" for u in self.unreadable)
        for what, files in (("snapshot", self.snapshot_files), ("changes", self.change_files)):
            size = sum(f.size for f in files)
            span = (f", dt {files[0].dt}..{max(f.dt for f in files)}"
                    if files and what == "changes" else "")
            lines.append(f"{what}: {len(files)} file(s), {size:,} bytes{span}")
        return lines


# --------------------------------------------------------------------------- status


@dataclass(slots=True)
class _Found:
    """A table's finished builds as listed from its snapshot files, newest first."""

    builds: list[tuple[str, int, str, str]] = field(default_factory=list)
    # (snapshot_ms, made_at) -> the file holding the build's "complete" row
    home: dict[tuple[int, str], DataFile] = field(default_factory=dict)
    read_files: dict[tuple[int, str], list[tuple[str, str, int, int]] | None] = \
        field(default_factory=dict)
    iceberg: dict[tuple[int, str], int | None] = field(default_factory=dict)
    # items of a build written whole by ``build``, from its footer's row-group statistics
    items: dict[tuple[int, str], int] = field(default_factory=dict)
    readable: dict[str, list[DataFile]] = field(default_factory=dict)  # by snapshot_date
    unreadable: dict[str, list[str]] = field(default_factory=dict)     # by snapshot_date

    def files_of(self, key: tuple[int, str]) -> tuple[DataFile, ...] | None:
        """The files an as-of reads for a build; None when one of them cannot be read."""
        home = self.home[key]
        if self.read_files[key] is not None:  # written whole by ``build``
            return (home,)
        if self.unreadable.get(home.dt):
            return None
        return tuple(self.readable.get(home.dt, []))


def _open_parquet(lake: Lake, f: DataFile) -> pq.ParquetFile:
    return pq.ParquetFile(lake.fs.open_input_file(f.path))


def _scan(lake: Lake, table_name: str, snapshot_date: str | None = None) -> _Found:
    """List the builds of a table (of one snapshot date), reading each snapshot file's
    footer and its "complete" row groups only. A file that cannot be read is skipped with
    a warning naming it."""
    found = _Found()
    rows = []
    for f in lake.snapshot_files(table_name, snapshot_date):
        try:
            pf = _open_parquet(lake, f)
            meta = pf.metadata
            kind_at = pf.schema_arrow.get_field_index("row_kind")
            if kind_at < 0:
                raise ValueError("no row_kind column: not a ddbtrail snapshot file")
            stats = [meta.row_group(i).column(kind_at).statistics
                     for i in range(meta.num_row_groups)]
            groups = [i for i, st in enumerate(stats) if _may_hold(st, "complete")]
            table = pf.read_row_groups(groups, columns=["snapshot_ms", "made_at",
                                                        "visible_before", "row_kind"]) \
                if groups else None
            footer = pf.schema_arrow.metadata or {}
            listed = _read_files_of(footer)
            ice = int(footer[ICEBERG_KEY]) if ICEBERG_KEY in footer else None
        except (OSError, ValueError, KeyError, TypeError, IndexError, pa.ArrowException) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning("snapshot file %s cannot be read (%s); skipped: as-of and new "
                           "builds use an older snapshot or the history", f.path, reason)
            found.unreadable.setdefault(f.dt, []).append(f"{f.path} ({reason})")
            continue
        found.readable.setdefault(f.dt, []).append(f)
        for r in (table.to_pylist() if table is not None else []):
            if r["row_kind"] != "complete":
                continue
            key = (int(r["snapshot_ms"]), str(r["made_at"]))
            rows.append((f.dt, key[0], key[1], str(r["visible_before"])))
            found.home[key] = f
            found.read_files[key] = listed
            found.iceberg[key] = ice
            if listed is not None and all(_only(st) is not None for st in stats):
                found.items[key] = sum(meta.row_group(i).num_rows
                                       for i, st in enumerate(stats) if _only(st) == "item")
    found.builds = sorted(set(rows), key=lambda b: (b[1], b[2]), reverse=True)
    return found


def _may_hold(stats: Any, value: str) -> bool:
    if stats is None or not stats.has_min_max:
        return True
    return bool(stats.min <= value <= stats.max)


def _only(stats: Any) -> str | None:
    """The one row_kind of a row group, when its statistics say it holds only one."""
    if stats is None or not stats.has_min_max or stats.min != stats.max:
        return None
    return str(stats.min)


def _read_files_of(metadata: dict[bytes, bytes]) -> list[tuple[str, str, int, int]] | None:
    raw = metadata.get(READ_FILES_KEY)
    if raw is None:
        return None
    return [(str(d), str(p), int(s), int(m)) for d, p, s, m in json.loads(raw)]


def builds(lake: Lake, table_name: str) -> list[tuple[str, int, str, str]]:
    """(snapshot_date, snapshot_ms, made_at, visible_before) of each finished build of a
    table, newest first. Reads the "complete" rows only (their own row groups); skips,
    with a warning, a snapshot file that cannot be read."""
    return _scan(lake, table_name).builds


def iceberg_snapshot_id(lake: Lake) -> int | None:
    """The current snapshot id of the lake's Iceberg table; None without one (or empty)."""
    from ddbtrail.lake.iceberg import open_if_present

    ice = open_if_present(lake)
    current = ice.table().current_snapshot() if ice is not None else None
    return int(current.snapshot_id) if current is not None else None


def _relative(lake: Lake, path: str) -> str:
    return path[len(lake.root) + 1:] if path.startswith(lake.root + "/") else path


def _record(lake: Lake, files: list[DataFile]) -> list[tuple[str, str, int, int]]:
    return [(f.dt, _relative(lake, f.path), f.size, f.mtime_ms) for f in files]


def _changed(lake: Lake, listing: list[DataFile],
             recorded: list[tuple[str, str, int, int]] | None) -> list[DataFile]:
    """The listed change files of the partitions whose files differ from what a build
    recorded (all of them when it recorded none): only those can hold a late change."""
    if recorded is None:
        return listing
    now: dict[str, set[tuple[str, str, int, int]]] = {}
    for entry in _record(lake, listing):
        now.setdefault(entry[0], set()).add(entry)
    then: dict[str, set[tuple[str, str, int, int]]] = {}
    for entry in recorded:
        then.setdefault(entry[0], set()).add(entry)
    changed = {dt for dt in now.keys() | then.keys() if now.get(dt) != then.get(dt)}
    return [f for f in listing if f.dt in changed]


def _check(lake: Lake, table_name: str, build: tuple[str, int, str, str],
           found: _Found | None = None, listing: list[DataFile] | None = None) -> Build:
    """One build's row of ``view_snapshot_status.sql``.

    The SQL compares, per change partition up to the build's date, the distinct events at
    or before its instant with what the build read. It is given only the partitions whose
    files differ from the list the build recorded (a partition whose files are the same
    holds what it read), so the check costs the partitions written since the build.
    ``listing`` is the table's change files if the caller already listed them.
    """
    date, ms, made_at, visible_before = build
    found = found if found is not None else _scan(lake, table_name, date)
    key = (ms, made_at)
    items = found.items.get(key, -1)
    files = found.files_of(key)
    if files is None:  # its partition has a file that cannot be read
        return Build(table_name, date, ms, made_at, visible_before, -1, -1, True)
    listing = [f for f in (listing if listing is not None
                           else lake.data_files(table_name, None, date)) if f.dt <= date]
    ice_now = iceberg_snapshot_id(lake)
    if ice_now is not None and ice_now != found.iceberg.get(key):
        # The Iceberg table moved on since the build: its files are read whole, and the
        # Hive files of their partitions must be counted with them.
        changed = listing
    else:
        changed = _changed(lake, listing, found.read_files.get(key))
        if not changed:  # the lake holds exactly what the build read
            return Build(table_name, date, ms, made_at, visible_before, items, 0, False,
                         files)
    con = connect(lake, table_name=table_name, dt_to=date, files=changed,
                  snapshot_files=list(files))
    try:
        got = _query(con, "SELECT late_changes, stale FROM snapshot_status "
                     "WHERE table_name = ? AND snapshot_ms = ? AND made_at = ?",
                     [table_name, ms, made_at], f"snapshot {iso_ms(ms)} of {table_name}")
    finally:
        con.close()
    late, stale = (int(got[0][0]), bool(got[0][1])) if got else (0, True)
    return Build(table_name, date, ms, made_at, visible_before, items, late, stale, files)


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
           what: str) -> list[tuple[Any, ...]]:
    try:
        install_views_for(sql, con)
        return con.execute(sql, params).fetchall()
    except Exception as exc:  # duckdb and pyarrow read errors alike
        raise LakeError(f"cannot read {what}: {str(exc).splitlines()[0]}") from exc


def status(lake: Lake, table_name: str) -> list[Build]:
    """Every finished snapshot build of a table, oldest instant first, stale ones marked
    (``view_snapshot_status.sql``, one build at a time). A build whose snapshot partition
    holds a file that cannot be read is stale, with ``late_changes`` -1."""
    found = _scan(lake, table_name)
    return [_check(lake, table_name, b, found) for b in reversed(found.builds)]


def usable(lake: Lake, table_name: str, at_ms: int, *,
           listing: list[DataFile] | None = None) -> tuple[Build | None, list[Build]]:
    """The latest build at or before ``at_ms`` that is neither stale nor unreadable, and
    the ones passed over; checks builds newest first and stops at the first usable one."""
    build_, ignored, _ = _usable(lake, table_name, at_ms, listing)
    return build_, ignored


def _usable(lake: Lake, table_name: str, at_ms: int, listing: list[DataFile] | None
            ) -> tuple[Build | None, list[Build], list[str]]:
    """``usable``, and the snapshot files found unreadable on the way. Reads the
    snapshot partitions newest first from the instant's date down (a build lives in the
    partition of its instant's date) and stops at the first usable build, so an as-of
    reads the footers of two days, not of every day with a snapshot."""
    at_date = iso_ms(at_ms)[:10]
    unreadable: list[str] = []
    ignored: list[Build] = []
    for date in reversed(lake.snapshot_dates(table_name)):
        if date > at_date:
            continue
        found = _scan(lake, table_name, date)
        unreadable.extend(u for us in found.unreadable.values() for u in us)
        for b in found.builds:
            if b[1] > at_ms:
                continue
            checked = _check(lake, table_name, b, found, listing)
            if not checked.stale:
                return checked, ignored, unreadable
            ignored.append(checked)
    return None, ignored, unreadable


def items_in(lake: Lake, build: Build) -> int:
    """How many items a build holds (reads its files' small columns)."""
    files = list(build.files) or lake.snapshot_files(build.table_name, build.snapshot_date)
    con = connect(lake, table_name=build.table_name, files=[], snapshot_files=files)
    try:
        found = _query(con, "SELECT count(*) FROM snapshots WHERE table_name = ? AND "
                       "snapshot_ms = ? AND made_at = ? AND row_kind = 'item'",
                       [build.table_name, build.snapshot_ms, build.made_at],
                       f"snapshot {build.instant} of {build.table_name}")
    finally:
        con.close()
    return int(found[0][0]) if found else 0


def plan(lake: Lake, table_name: str, at_ms: int, *, use_snapshots: bool = True,
         listing: list[DataFile] | None = None) -> Plan:
    """What an as-of at ``at_ms`` reads: the snapshot to start from and the files.

    A stale build (the lake holds changes at or before its instant that it did not read)
    or one with an unreadable file is passed over, and named in ``Plan.explain``; with
    none usable the as-of reads the whole history. ``listing``: the table's data files
    when the caller has listed them (``Lake.data_files(table_name)``); else listed here."""
    result = Plan(table_name, at_ms)
    if use_snapshots:
        result.snapshot, result.ignored, result.unreadable = _usable(
            lake, table_name, at_ms, listing)
        if result.snapshot is not None and result.snapshot.items < 0:
            # An Athena build (rows mixed in several files): count its items; a file
            # written by ``build`` has the count in its footer.
            try:
                result.snapshot = replace(result.snapshot,
                                          items=items_in(lake, result.snapshot))
            except LakeError as exc:  # damaged past its footer
                _drop_snapshot(result, exc)
    at_date = iso_ms(at_ms)[:10]
    if result.snapshot is not None:
        result.snapshot_files = list(result.snapshot.files)
        # Changes after the snapshot's instant have an event date from that of the next
        # millisecond on (a snapshot at the end of a day needs none of that day's files).
        after: str | None = iso_ms(result.snapshot.snapshot_ms + 1)[:10]
    else:
        after = None
    result.change_files = lake.data_files(table_name, after, at_date) if listing is None \
        else [f for f in listing if (after is None or f.dt >= after) and f.dt <= at_date]
    return result


def _drop_snapshot(p: Plan, exc: Exception) -> None:
    """Warn that the plan's snapshot cannot be read and plan on the history instead."""
    assert p.snapshot is not None
    logger.warning("snapshot %s of %s cannot be read (%s); reading the history instead",
                   p.snapshot.instant, p.table_name, exc)
    p.unreadable.extend(f.path for f in p.snapshot.files)
    p.snapshot, p.snapshot_files = None, []


def plan_connection(lake: Lake, p: Plan, *,
                    item_key: str | None = None) -> duckdb.DuckDBPyConnection:
    """A connection whose ``changes`` and ``snapshots`` list only what ``p`` reads (only
    ``item_key``'s rows that can be its latest at the instant, when given)."""
    dt_from = iso_ms(p.snapshot.snapshot_ms + 1)[:10] if p.snapshot is not None else None
    # The plan's change files, as listed for it: one listing per as-of.
    return connect(lake, table_name=p.table_name, dt_from=dt_from, dt_to=iso_ms(p.at_ms)[:10],
                   files=p.change_files, snapshot_files=p.snapshot_files, item_key=item_key,
                   as_of_ms=p.at_ms, shared=True)


def run_as_of(lake: Lake, name: str, values: dict[str, str], p: Plan) -> list[dict[str, Any]]:
    """Run ``item_as_of`` or ``table_as_of`` with the plan's snapshot. When the query
    cannot read the snapshot (a file damaged past its footer), warns naming its files and
    runs again on the whole history, recording that in ``p``."""
    try:
        con = plan_connection(lake, p, item_key=values.get("item_key"))
        try:
            return list(run_duckdb(load(name), {**values, **p.values()}, con).to_pylist())
        finally:
            con.close()
    except LakeError as exc:
        # DuckDB names the Arrow stream that failed (duck.py registers "_snapshots_0"); a
        # key lookup's read names the file.
        if p.snapshot is None or not ("_snapshots_" in str(exc)
                                      or any(f.path in str(exc) for f in p.snapshot_files)):
            raise
        _drop_snapshot(p, exc)
        p.change_files = lake.data_files(p.table_name, None, iso_ms(p.at_ms)[:10])
    return run_as_of(lake, name, values, p)


# --------------------------------------------------------------------------- build


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What ``build`` wrote."""

    table_name: str
    snapshot_ms: int
    made_at: str
    items: int
    base: Build | None
    ignored: tuple[Build, ...]
    changes_read: int
    path: str
    # The instant is within the settle window: rows at or before it may still have been
    # buffered; if they arrive, this snapshot goes stale (and is then never read).
    settling: bool = False
    unreadable: tuple[str, ...] = ()  # snapshot files skipped: "path (reason)"


def default_instant(now_ms: int) -> int:
    """The end of the last closed UTC day (its last millisecond)."""
    return (now_ms // DAY_MS) * DAY_MS - 1


def default_settle(lake: Lake) -> int:
    """Seconds a row may take to appear in the lake after ingest: Firehose's longest
    buffer on S3; the local delivery stream's default buffer interval for a local lake
    (capture writes a partition's rows when they are that old)."""
    from ddbtrail.delivery.local import DEFAULT_BUFFER_SECONDS

    return int(DEFAULT_BUFFER_SECONDS) if lake.is_local else S3_SETTLE_SECONDS


def check_instant(at_ms: int, now_ms: int) -> None:
    """InvalidArgument naming ``at`` for a snapshot instant in the future."""
    if at_ms > now_ms:
        raise InvalidArgument("at", iso_ms(at_ms), "in the future; a snapshot holds changes "
                              "that have happened")


def build(lake: Lake, table_name: str, at_ms: int, *, settle_seconds: int | None = None,
          now_ms: int | None = None) -> BuildResult:
    """Write the state of every item of ``table_name`` at ``at_ms`` as a new snapshot.

    Starts from the latest usable snapshot at or before ``at_ms`` (never a stale one, nor
    one that cannot be read) and reads the changes after it (all changes if there is
    none). The file records what the build read: per change partition the distinct events
    at or before ``at_ms`` (rows any engine reads) and the change files with their sizes
    and mtimes (its footer), so a change delivered later makes it stale, whatever its
    ingested_at. The rows, that record and the "complete" row go into one Parquet file,
    written atomically, so a failed build leaves nothing readable. ``settle_seconds``
    (default ``default_settle``) only sets ``BuildResult.settling``: an instant that
    recent may still have rows in a delivery buffer. Raises InvalidArgument for an instant
    in the future, LakeError when the lake cannot be read.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    check_instant(at_ms, now)
    settle = default_settle(lake) if settle_seconds is None else settle_seconds
    if settle < 0:
        raise InvalidArgument("settle_seconds", settle, "must be 0 or more seconds")
    if not lake.exists():
        raise LakeError(f"lake {lake.uri}: no such folder or bucket prefix "
                        "(set `lake` or DDBTRAIL_LAKE)")
    at_date = iso_ms(at_ms)[:10]
    # One listing for the base's check, the read and the record, so that a file arriving
    # meanwhile is either in all three or in none (and then found late).
    listing = lake.data_files(table_name, None, at_date)
    # Taken before the read plans the Iceberg files: a commit in between is then read
    # but not recorded, and the check counts again (never the reverse).
    ice_id = iceberg_snapshot_id(lake)
    base, ignored, unreadable = _usable(lake, table_name, at_ms, listing)
    made_at, visible_before = iso_ms(now), iso_ms(now - settle * 1000)
    try:
        changes_read, state, marker = _read_state(lake, table_name, at_ms, base, listing,
                                                  made_at, visible_before)
    except LakeError as exc:
        # A base damaged past its footer: warn naming it and build from the history.
        if base is None or "_snapshots_" not in str(exc):
            raise
        logger.warning("snapshot %s of %s cannot be read (%s); building from the history",
                       base.instant, table_name, exc)
        unreadable = [*unreadable, *(f.path for f in base.files)]
        ignored, base = [*ignored, replace(base, late_changes=-1, stale=True)], None
        changes_read, state, marker = _read_state(lake, table_name, at_ms, base, listing,
                                                  made_at, visible_before)
    schema = snapshot_arrow_schema(include_partitions=False)
    record = json.dumps(_record(lake, listing), separators=(",", ":")).encode()
    footer = {**(schema.metadata or {}), READ_FILES_KEY: record}
    if ice_id is not None:
        footer[ICEBERG_KEY] = str(ice_id).encode()
    schema = schema.with_metadata(footer)
    kinds = state.column("row_kind")
    # Items sorted by key (a one-item as-of skips the other row groups by their
    # statistics); the partition rows and the "complete" row in row groups of their own,
    # so that listing and checking the builds reads no item.
    items = state.filter(pc.equal(kinds, "item")).select(schema.names).cast(schema) \
        .sort_by("item_key")
    partitions = state.filter(pc.equal(kinds, "partition")).select(schema.names) \
        .cast(schema).sort_by("source_dt")
    out = io.BytesIO()
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        writer.write_table(items, row_group_size=50_000)
        writer.write_table(partitions)
        writer.write_table(marker.select(schema.names).cast(schema))
    stamp = made_at.replace("-", "").replace(":", "").replace(".", "")
    path = lake.path(snapshot_partition_path(table_name, at_date),
                     f"snapshot-{stamp}-{uuid.uuid4().hex[:12]}.parquet")
    lake.write_atomic(path, out.getvalue())
    return BuildResult(table_name, at_ms, made_at, items.num_rows, base, tuple(ignored),
                       changes_read, path, settling=at_ms > now - settle * 1000,
                       unreadable=tuple(unreadable))


def _read_state(lake: Lake, table_name: str, at_ms: int, base: Build | None,
                listing: list[DataFile], made_at: str, visible_before: str
                ) -> tuple[int, pa.Table, pa.Table]:
    """Run snapshot_state and snapshot_complete for a build: changes read, rows, marker."""
    values = {"table_name": table_name, "at": iso_ms(at_ms), "made_at": made_at,
              "visible_before": visible_before,
              "base": base.instant if base else NO_SNAPSHOT,
              "base_made_at": base.made_at if base else NO_BUILD}
    # The state reads the changes after the base; the partition counts start at its date.
    base_date = base.snapshot_date if base is not None else None
    read = [f for f in listing if base_date is None or f.dt >= base_date]
    con = connect(lake, table_name=table_name, dt_from=base_date,
                  dt_to=iso_ms(at_ms)[:10], files=read,
                  snapshot_files=list(base.files) if base is not None else [])
    try:
        changes_read = _count_after(con, table_name, base, at_ms)
        state = run_duckdb(load("snapshot_state"), values, con)
        marker = run_duckdb(load("snapshot_complete"), {
            k: values[k] for k in ("table_name", "at", "made_at", "visible_before")}, con)
    finally:
        con.close()
    return changes_read, state, marker


def _count_after(con: duckdb.DuckDBPyConnection, table_name: str, base: Build | None,
                 at_ms: int) -> int:
    after = base.snapshot_ms if base is not None else -1
    found = con.execute('SELECT count(*) FROM changes WHERE table_name = ? AND "timestamp" > ? '
                        'AND "timestamp" <= ?', [table_name, after, at_ms]).fetchone()
    return int(found[0]) if found else 0
