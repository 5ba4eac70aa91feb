"""State snapshots: a table's state at an instant, so as-of reads O(items + changes since).

A snapshot holds one row per live item of a table at an instant (``snapshot_ms``): the
change row that made the item's state (``core.row.SNAPSHOT_COLUMNS``). It lives in the
lake's second dataset, ``<lake>/snapshots/table_name=<t>/snapshot_date=<d>/``, which no
reader of ``changes`` lists. Everything here runs the saved SQL, the same files Athena
runs:

- ``snapshot_state.sql`` builds one from the previous snapshot plus the changes between
  the two (the first reads the whole history), ``snapshot_complete.sql`` marks it done;
- ``view_snapshot_status.sql`` says which builds are finished and which are *stale*: a
  change at or before the instant that was ingested after the build could see the lake
  (``visible_before``) makes it stale, and a stale snapshot is never read;
- ``item_as_of.sql`` / ``table_as_of.sql`` start from the latest usable snapshot at or
  before the instant and read the changes after it only.
"""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import pyarrow.parquet as pq

from ddbtrail.core.exceptions import InvalidArgument, LakeError
from ddbtrail.core.row import snapshot_arrow_schema, snapshot_partition_path
from ddbtrail.core.timefmt import iso_ms, parse_timestamp
from ddbtrail.lake.files import DataFile, Lake
from ddbtrail.query.duck import connect
from ddbtrail.query.saved import install_views_for, load, run_duckdb

if TYPE_CHECKING:
    import duckdb

NO_SNAPSHOT: Final = "1970-01-01T00:00:00.000Z"
NO_BUILD: Final = "none"
DAY_MS: Final = 86_400_000
# Firehose's longest buffering interval: a row may reach S3 this long after its
# ingested_at, so a build trusts only rows ingested this long before it ran.
S3_SETTLE_SECONDS: Final = 900
# Writers' clocks (ingested_at) and the storage's (file times) may differ a little.
_CLOCK_SLACK_MS: Final = 60_000


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

    def values(self) -> dict[str, str]:
        """The snapshot parameters of the as-of queries."""
        if self.snapshot is None:
            return {"snapshot": NO_SNAPSHOT, "snapshot_made_at": NO_BUILD}
        return {"snapshot": self.snapshot.instant, "snapshot_made_at": self.snapshot.made_at}

    def explain(self) -> list[str]:
        """Lines for ``explain``: the snapshot used, the files and bytes read."""
        lines = []
        if self.snapshot is None:
            lines.append(f"snapshot: none at or before {iso_ms(self.at_ms)}; reading the "
                         "whole history")
        else:
            s = self.snapshot
            items = f", {s.items} items" if s.items >= 0 else ""
            lines.append(f"snapshot: {s.instant} (made {s.made_at}{items})")
        for b in self.ignored:
            lines.append(f"ignored stale snapshot {b.instant} (made {b.made_at}): "
                         f"{b.late_changes} change(s) at or before it arrived later")
        for what, files in (("snapshot", self.snapshot_files), ("changes", self.change_files)):
            size = sum(f.size for f in files)
            span = (f", dt {files[0].dt}..{max(f.dt for f in files)}"
                    if files and what == "changes" else "")
            lines.append(f"{what}: {len(files)} file(s), {size:,} bytes{span}")
        return lines


# --------------------------------------------------------------------------- status


def builds(lake: Lake, table_name: str) -> list[tuple[str, int, str, str]]:
    """(snapshot_date, snapshot_ms, made_at, visible_before) of each finished build of a
    table, newest first. Reads the "complete" rows only (their own row groups)."""
    snaps = lake.snapshot_files(table_name)
    if not snaps:
        return []
    con = connect(lake, table_name=table_name, files=[], snapshot_files=snaps)
    try:
        found = _query(con, "SELECT DISTINCT snapshot_date, snapshot_ms, made_at, "
                       "visible_before FROM snapshots WHERE table_name = ? AND "
                       "row_kind = 'complete' ORDER BY snapshot_ms DESC, made_at DESC",
                       [table_name], f"the snapshots of {table_name} in {lake.uri}")
    finally:
        con.close()
    return [(str(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in found]


def _check(lake: Lake, table_name: str, build: tuple[str, int, str, str]) -> Build:
    """One build's row of ``view_snapshot_status.sql``.

    Reads the build's partition and only the change files that could hold a late change:
    a file last written before the build's ``visible_before`` (less a margin for clock
    skew) holds only rows ingested before it, and a late change sits in the partition of
    its event date, at or before the snapshot's. So the check costs the files written
    since the build, not the whole history.
    """
    date, ms, made_at, visible_before = build
    since = parse_timestamp(visible_before, what="visible_before") - _CLOCK_SLACK_MS
    files = [f for f in lake.data_files(table_name, None, date)
             if f.mtime_ms == 0 or f.mtime_ms >= since]
    con = connect(lake, table_name=table_name, dt_to=date, files=files,
                  snapshot_files=lake.snapshot_files(table_name, date))
    try:
        found = _query(con, "SELECT late_changes, stale FROM snapshot_status "
                       "WHERE table_name = ? AND snapshot_ms = ? AND made_at = ?",
                       [table_name, ms, made_at], f"snapshot {iso_ms(ms)} of {table_name}")
    finally:
        con.close()
    late, stale = (int(found[0][0]), bool(found[0][1])) if found else (0, True)
    return Build(table_name, date, ms, made_at, visible_before, -1, late, stale)


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
           what: str) -> list[tuple[Any, ...]]:
    try:
        install_views_for(sql, con)
        return con.execute(sql, params).fetchall()
    except Exception as exc:  # duckdb and pyarrow read errors alike
        raise LakeError(f"cannot read {what}: {str(exc).splitlines()[0]}") from exc


def status(lake: Lake, table_name: str) -> list[Build]:
    """Every finished snapshot build of a table, oldest instant first, stale ones marked
    (``view_snapshot_status.sql``, one build at a time)."""
    return [_check(lake, table_name, b) for b in reversed(builds(lake, table_name))]


def usable(lake: Lake, table_name: str, at_ms: int) -> tuple[Build | None, list[Build]]:
    """The latest build at or before ``at_ms`` that is not stale, and the stale ones
    passed over; checks builds newest first and stops at the first usable one."""
    ignored: list[Build] = []
    for b in builds(lake, table_name):
        if b[1] > at_ms:
            continue
        checked = _check(lake, table_name, b)
        if not checked.stale:
            return checked, ignored
        ignored.append(checked)
    return None, ignored


def items_in(lake: Lake, build: Build) -> int:
    """How many items a build holds (reads its partition's small columns)."""
    con = connect(lake, table_name=build.table_name, files=[],
                  snapshot_files=lake.snapshot_files(build.table_name, build.snapshot_date))
    try:
        found = _query(con, "SELECT count(*) FROM snapshots WHERE table_name = ? AND "
                       "snapshot_ms = ? AND made_at = ? AND row_kind = 'item'",
                       [build.table_name, build.snapshot_ms, build.made_at],
                       f"snapshot {build.instant} of {build.table_name}")
    finally:
        con.close()
    return int(found[0][0]) if found else 0


def plan(lake: Lake, table_name: str, at_ms: int, *, use_snapshots: bool = True) -> Plan:
    """What an as-of at ``at_ms`` reads: the snapshot to start from and the files."""
    result = Plan(table_name, at_ms)
    if use_snapshots:
        result.snapshot, result.ignored = usable(lake, table_name, at_ms)
        if result.snapshot is not None:
            result.snapshot = replace(result.snapshot,
                                      items=items_in(lake, result.snapshot))
    at_date = iso_ms(at_ms)[:10]
    if result.snapshot is not None:
        result.snapshot_files = lake.snapshot_files(table_name, result.snapshot.snapshot_date)
        # Changes after the snapshot's instant have an event date from that of the next
        # millisecond on (a snapshot at the end of a day needs none of that day's files).
        after = iso_ms(result.snapshot.snapshot_ms + 1)[:10]
        result.change_files = lake.data_files(table_name, after, at_date)
    else:
        result.change_files = lake.data_files(table_name, None, at_date)
    return result


def plan_connection(lake: Lake, p: Plan) -> duckdb.DuckDBPyConnection:
    """A connection whose ``changes`` and ``snapshots`` list only what ``p`` reads."""
    dt_from = iso_ms(p.snapshot.snapshot_ms + 1)[:10] if p.snapshot is not None else None
    return connect(lake, table_name=p.table_name, dt_from=dt_from, dt_to=iso_ms(p.at_ms)[:10],
                   snapshot_files=p.snapshot_files)


def run_as_of(lake: Lake, name: str, values: dict[str, str], p: Plan) -> list[dict[str, Any]]:
    """Run ``item_as_of`` or ``table_as_of`` with the plan's snapshot."""
    con = plan_connection(lake, p)
    try:
        return list(run_duckdb(load(name), {**values, **p.values()}, con).to_pylist())
    finally:
        con.close()


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


def default_instant(now_ms: int) -> int:
    """The end of the last closed UTC day (its last millisecond)."""
    return (now_ms // DAY_MS) * DAY_MS - 1


def default_settle(lake: Lake) -> int:
    """Seconds a row may take to appear in the lake after ingest: Firehose's buffer on S3;
    0 for a local lake, whose delivery stream has flushed when its run ends."""
    return 0 if lake.is_local else S3_SETTLE_SECONDS


def check_instant(at_ms: int, now_ms: int) -> None:
    """InvalidArgument naming ``at`` for a snapshot instant in the future."""
    if at_ms > now_ms:
        raise InvalidArgument("at", iso_ms(at_ms), "in the future; a snapshot holds changes "
                              "that have happened")


def build(lake: Lake, table_name: str, at_ms: int, *, settle_seconds: int | None = None,
          now_ms: int | None = None) -> BuildResult:
    """Write the state of every item of ``table_name`` at ``at_ms`` as a new snapshot.

    Starts from the latest usable snapshot at or before ``at_ms`` and reads the changes
    after it (all changes if there is none). The rows and their "complete" row go into one
    Parquet file, written atomically, so a failed build leaves nothing readable. Raises
    InvalidArgument for an instant in the future, LakeError when the lake cannot be read.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    check_instant(at_ms, now)
    settle = default_settle(lake) if settle_seconds is None else settle_seconds
    if settle < 0:
        raise InvalidArgument("settle_seconds", settle, "must be 0 or more seconds")
    if not lake.exists():
        raise LakeError(f"lake {lake.uri}: no such folder or bucket prefix "
                        "(set `lake` or DDBTRAIL_LAKE)")
    base, ignored = usable(lake, table_name, at_ms)
    p = Plan(table_name, at_ms, base, ignored)
    if base is not None:
        p.snapshot_files = lake.snapshot_files(table_name, base.snapshot_date)
    made_at, visible_before = iso_ms(now), iso_ms(now - settle * 1000)
    values = {"table_name": table_name, "at": iso_ms(at_ms), "made_at": made_at,
              "visible_before": visible_before,
              "base": base.instant if base else NO_SNAPSHOT,
              "base_made_at": base.made_at if base else NO_BUILD}
    con = plan_connection(lake, p)
    try:
        changes_read = _count_after(con, table_name, base, at_ms)
        state = run_duckdb(load("snapshot_state"), values, con)
        marker = run_duckdb(load("snapshot_complete"), {
            k: values[k] for k in ("table_name", "at", "made_at", "visible_before")}, con)
    finally:
        con.close()
    schema = snapshot_arrow_schema(include_partitions=False)
    # Items sorted by key (a one-item as-of skips the other row groups by their
    # statistics); the "complete" row in a row group of its own, so that listing the
    # builds reads no item.
    items = state.select(schema.names).cast(schema).sort_by("item_key")
    out = io.BytesIO()
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        writer.write_table(items, row_group_size=50_000)
        writer.write_table(marker.select(schema.names).cast(schema))
    stamp = made_at.replace("-", "").replace(":", "").replace(".", "")
    path = lake.path(snapshot_partition_path(table_name, iso_ms(at_ms)[:10]),
                     f"snapshot-{stamp}-{uuid.uuid4().hex[:12]}.parquet")
    lake.write_atomic(path, out.getvalue())
    return BuildResult(table_name, at_ms, made_at, state.num_rows, base, tuple(ignored),
                       changes_read, path)


def _count_after(con: duckdb.DuckDBPyConnection, table_name: str, base: Build | None,
                 at_ms: int) -> int:
    after = base.snapshot_ms if base is not None else -1
    found = con.execute('SELECT count(*) FROM changes WHERE table_name = ? AND "timestamp" > ? '
                        'AND "timestamp" <= ?', [table_name, after, at_ms]).fetchone()
    return int(found[0]) if found else 0
