"""State snapshots give the same answers as the whole history, whatever the workload.

Random workloads of real stream rows (inserts, updates, deletes, TTL deletes, re-inserts,
backfill SNAPSHOT rows, duplicate deliveries, changes that arrive after a snapshot was
built) are written to a lake; snapshots are built at random instants with
``ddbtrail.query.snapshots.build``; then ``table_as_of`` and ``item_as_of`` at random
instants must return exactly the rows they return with snapshots switched off.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.iostat import CountingFS
from ddbtrail.capture.backfill import snapshot_row
from ddbtrail.core.exceptions import InvalidArgument
from ddbtrail.core.flatten import flatten_record, row_json
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups, saved, snapshots
from ddbtrail.query.duck import connect

T0 = 1_714_564_800  # 2024-05-01T12:00:00Z, in seconds
TABLE = "t"
KEYS = ("a", "b", "c", "d")
TTL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


class Workload:
    """Builds stream rows as DynamoDB would emit them, tracking each item's image."""

    def __init__(self) -> None:
        self.seq = 0
        self.images: dict[str, dict[str, Any] | None] = dict.fromkeys(KEYS)
        self.rows: list[dict[str, Any]] = []

    def op(self, key: str, kind: str, at_s: int, value: int, ingested_s: int) -> dict[str, Any]:
        self.seq += 1
        keys = {"pk": {"S": key}}
        old = self.images[key]
        new = {**keys, "v": {"N": str(value)}, "tags": {"SS": [f"t{value % 3}", "x"]}}
        if kind == "backfill":
            row = snapshot_row(new, key_names=["pk"], table_name=TABLE, snapshot_id="bf1",
                               requested_ms=at_s * 1000, ingested_ms=ingested_s * 1000,
                               region=None)
            self.images[key] = new
            self.rows.append(row)
            return row
        record: dict[str, Any] = {
            "eventID": f"e{self.seq}",
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:1:table/{TABLE}/stream/x",
            "dynamodb": {"ApproximateCreationDateTime": at_s, "Keys": keys,
                         "SequenceNumber": str(10**20 + self.seq),
                         "StreamViewType": "NEW_AND_OLD_IMAGES"}}
        if kind in ("delete", "ttl"):
            record["eventName"] = "REMOVE"
            record["dynamodb"]["OldImage"] = old or new
            if kind == "ttl":
                record["userIdentity"] = TTL
            self.images[key] = None
        else:
            record["eventName"] = "INSERT" if old is None else "MODIFY"
            record["dynamodb"]["NewImage"] = new
            if old is not None:
                record["dynamodb"]["OldImage"] = old
            self.images[key] = new
        row = flatten_record(record, ingested_at_ms=ingested_s * 1000)
        self.rows.append(row)
        return row


def write(lake_dir: Path, rows: list[dict[str, Any]], name: str) -> Lake:
    lake = Lake.open(str(lake_dir))
    for row in rows:
        folder = Path(lake.partition(row["table_name"], row["dt"]))
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{name}.jsonl").open("a") as f:
            f.write(row_json(row) + "\n")
    return lake


DAY = 86_400
ops = st.lists(
    st.tuples(st.sampled_from(KEYS),
              st.sampled_from(["put", "put", "update", "delete", "ttl", "backfill"]),
              st.integers(0, 3 * DAY),         # event time offset: three days
              st.integers(0, 99),
              st.booleans(),                    # delivered twice
              st.integers(0, 9)),               # 0: arrives after the snapshots were built
                                                # (1: its second copy, if any, too)
    min_size=1, max_size=40)
instants = st.lists(st.integers(-600, 3 * DAY + 600), min_size=1, max_size=2)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=ops, snap_at=instants, ask_at=instants, keys=st.sets(st.sampled_from(KEYS),
                                                                max_size=2))
def test_as_of_is_the_same_with_and_without_snapshots(
        tmp_path: Path, ops: list[tuple[str, str, int, int, bool, int]],
        snap_at: list[int], ask_at: list[int], keys: set[str]) -> None:
    root = tmp_path / "lake"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    work = Workload()
    built_at = T0 + 4 * DAY  # snapshots are built after every on-time row arrived
    on_time, late = [], []
    # Event times in stream order (sorted), so the sequence numbers follow time as on a shard.
    for key, kind, offset, value, dup, lateness in sorted(ops, key=lambda o: o[2]):
        at_s = T0 + offset
        # A late row's ingested_at may be before the build (it sat in a buffer) or after:
        # only its delivery after the build counts.
        ingested = at_s + 5 if lateness else built_at - 5 if value % 2 else built_at + 60
        row = work.op(key, kind, at_s, value, ingested)
        (late if lateness == 0 else on_time).append(row)
        if dup:  # delivered twice; an on-time row's second copy may come after the build
            (late if lateness in (0, 1) else on_time).append(
                {**row, "ingested_at": iso_ms((built_at + 90) * 1000)})
    lake = write(root, on_time, "on-time")
    for s in sorted(snap_at):
        snapshots.build(lake, TABLE, (T0 + s) * 1000, now_ms=built_at * 1000)
    write(root, late, "late")
    assert lake.snapshot_files(TABLE)

    for s in ask_at + snap_at:
        at_ms = (T0 + s) * 1000
        explain: list[str] = []
        with_snap = lookups.table_as_of(lake, TABLE, at_ms, explain=explain)
        without = lookups.table_as_of(lake, TABLE, at_ms, use_snapshots=False)
        assert with_snap == without, explain
        for key in sorted(keys):
            item_key = json.dumps({"pk": key}, separators=(",", ":"))
            assert lookups.item_as_of(lake, TABLE, item_key, at_ms) == \
                lookups.item_as_of(lake, TABLE, item_key, at_ms, use_snapshots=False)
    # A late change at or before a snapshot's instant makes it stale, and only then: a
    # redelivered copy of an event the build read does not.
    read = {r["event_id"] for r in on_time}
    for b in snapshots.status(lake, TABLE):
        assert b.stale == any(r["timestamp"] <= b.snapshot_ms and r["event_id"] not in read
                              for r in late), b


def _rows(lake: Lake, *, name: str = "table_as_of", **values: str) -> list[dict[str, Any]]:
    return saved.rows(saved.run_local(saved.load(name), values, lake))


def test_snapshot_holds_the_state_and_as_of_reads_only_later_partitions(tmp_path: Path) -> None:
    work = Workload()
    rows = [work.op("a", "put", T0, 1, T0), work.op("b", "put", T0 + 10, 2, T0 + 10),
            work.op("a", "update", T0 + DAY, 3, T0 + DAY),
            work.op("b", "ttl", T0 + DAY + 5, 0, T0 + DAY + 5),
            work.op("c", "put", T0 + 2 * DAY, 4, T0 + 2 * DAY)]
    lake = write(tmp_path, rows, "part")
    mid = (T0 + DAY + 60) * 1000
    result = snapshots.build(lake, TABLE, mid, now_ms=(T0 + 3 * DAY) * 1000)
    assert result.items == 1 and result.base is None and result.changes_read == 4
    # The snapshot holds the one live item, with the change that made it.
    (state,) = [r for r in _read_snapshot(lake) if r["row_kind"] == "item"]
    assert state["item_key"] == '{"pk":"a"}' and state["event_id"] == rows[2]["event_id"]
    assert json.loads(state["new_image"])["v"] == 3

    explain: list[str] = []
    at = (T0 + 2 * DAY + 60) * 1000
    got = lookups.table_as_of(lake, TABLE, at, explain=explain)
    assert [r["item_key"] for r in got] == ['{"pk":"a"}', '{"pk":"c"}']
    assert explain[0].startswith(f"snapshot: {iso_ms(mid)}")
    plan = snapshots.plan(lake, TABLE, at)
    assert {f.dt for f in plan.change_files} == {"2024-05-02", "2024-05-03"}

    # The next snapshot builds on this one and reads only the change after it.
    nxt = snapshots.build(lake, TABLE, at, now_ms=(T0 + 3 * DAY) * 1000)
    assert nxt.base is not None and nxt.base.snapshot_ms == mid and nxt.changes_read == 1
    assert nxt.items == 2


def _daily_lake(tmp_path: Path, days: int) -> tuple[Lake, Workload, list[str]]:
    """A change on each of ``days`` days and a snapshot at the end of each; the paths."""
    work = Workload()
    lake = write(tmp_path, [work.op(KEYS[d % 4], "put" if d % 3 else "update", T0 + d * DAY,
                                    d, T0 + d * DAY) for d in range(days)], "part")
    paths = []
    for d in range(days):
        end_of_day = ((T0 // DAY + d + 1) * DAY) * 1000 - 1
        paths.append(snapshots.build(lake, TABLE, end_of_day,
                                     now_ms=(T0 + days * DAY) * 1000).path)
    return lake, work, paths


def test_as_of_opens_the_snapshots_of_two_days_at_most_however_many_there_are(
        tmp_path: Path) -> None:
    lake, _, paths = _daily_lake(tmp_path, 5)
    opens = CountingFS(lake.fs)
    watched = Lake(lake.uri, opens.fs, lake.root)
    at = (T0 + DAY) * 1000  # day 2 noon: the snapshot at the end of day 1 is the base
    explain: list[str] = []
    got = lookups.table_as_of(watched, TABLE, at, explain=explain)
    assert got == lookups.table_as_of(lake, TABLE, at, use_snapshots=False)
    assert got and explain[0].startswith(f"snapshot: {iso_ms((T0 // DAY + 1) * DAY * 1000 - 1)}")
    assert explain[0].endswith("1 items)")  # the count comes from the file's footer
    # Its own day's (made after the instant: footer only) and the base's; no other.
    assert {p for p in opens.opened if "/snapshots/" in p} <= {paths[0], paths[1]}
    assert not set(opens.opened) & set(paths[2:])


def test_a_stale_day_sends_as_of_down_to_the_latest_fresh_day_before_it(
        tmp_path: Path) -> None:
    lake, work, _ = _daily_lake(tmp_path, 4)
    # A change of day 2 delivered after every build: days 2, 3 and 4 go stale.
    write(tmp_path, [work.op("d", "put", T0 + DAY + 30, 77, T0 + 9 * DAY)], "late")
    at = (T0 + 4 * DAY) * 1000
    explain: list[str] = []
    got = lookups.table_as_of(lake, TABLE, at, explain=explain)
    assert got == lookups.table_as_of(lake, TABLE, at, use_snapshots=False)
    assert any(r["item_key"] == '{"pk":"d"}' for r in got)
    assert explain[0].startswith(f"snapshot: {iso_ms((T0 // DAY + 1) * DAY * 1000 - 1)}")
    assert sum("ignored stale snapshot" in line for line in explain) == 3


def test_a_late_change_makes_the_snapshot_stale_and_it_is_ignored(tmp_path: Path) -> None:
    work = Workload()
    lake = write(tmp_path, [work.op("a", "put", T0, 1, T0)], "part")
    snap = (T0 + 100) * 1000
    snapshots.build(lake, TABLE, snap, now_ms=(T0 + 200) * 1000)
    # A delete at T0+50 arrives (is ingested) after the build.
    write(tmp_path, [work.op("a", "delete", T0 + 50, 0, T0 + 300)], "late")
    (build,) = snapshots.status(lake, TABLE)
    assert build.stale and build.late_changes == 1
    explain: list[str] = []
    assert lookups.table_as_of(lake, TABLE, snap + 1000, explain=explain) == []
    assert explain[0].startswith("snapshot: none") and "ignored stale snapshot" in explain[1]
    # A new build does not start from the stale one.
    again = snapshots.build(lake, TABLE, snap, now_ms=(T0 + 400) * 1000)
    assert again.base is None and again.items == 0


def _daily_check(lake: Lake, at_ms: int, made_at: str) -> tuple[int, bool]:
    """(late_changes, stale) of snapshot_check.sql, the daily maintenance's check."""
    (row,) = _rows(lake, name="snapshot_check", table_name=TABLE, candidate=iso_ms(at_ms),
                   candidate_made_at=made_at)
    return int(row["late_changes"]), bool(row["stale"])


@pytest.mark.parametrize(("made_ms_after_boundary", "counted"), [(0, False), (-1, True)])
def test_the_daily_check_counts_the_partitions_a_late_change_can_still_reach(
        tmp_path: Path, made_ms_after_boundary: int, counted: bool) -> None:
    """A change reaches the lake at most LATE_ARRIVAL_HOURS after its event time, so a
    build made that long after the end of a partition's date holds all of it: the daily
    check does not count it (just outside the horizon); made a millisecond earlier, the
    partition could still gain a change and is counted (just inside). Readers count
    every partition whatever the bound: a change later than it is never read wrong."""
    assert f"INTERVAL '{snapshots.LATE_ARRIVAL_HOURS}' HOUR" in saved.load("snapshot_check").sql
    work = Workload()
    day1 = T0 - 12 * 3600 + DAY  # 2024-05-02T00:00:00Z, the end of May 1
    lake = write(tmp_path, [work.op("a", "put", day1 - 3600, 1, day1 - 3595),
                            work.op("b", "put", day1 + 3600, 2, day1 + 3605)], "part")
    at_ms = (day1 + DAY + 600) * 1000
    boundary_ms = (day1 + snapshots.LATE_ARRIVAL_HOURS * 3600) * 1000
    made_ms = boundary_ms + made_ms_after_boundary
    built = snapshots.build(lake, TABLE, at_ms, now_ms=made_ms)
    assert _daily_check(lake, at_ms, built.made_at) == (0, False)
    # A change of May 1 (its last second) and one of May 2 arrive after the build.
    write(tmp_path, [work.op("c", "put", day1 - 1, 3, made_ms // 1000 + 60)], "late-may1")
    assert _daily_check(lake, at_ms, built.made_at) == ((1, True) if counted else (0, False))
    write(tmp_path, [work.op("d", "put", day1 + 7200, 4, made_ms // 1000 + 60)], "late-may2")
    assert _daily_check(lake, at_ms, built.made_at) == ((2, True) if counted else (1, True))
    (build,) = snapshots.status(lake, TABLE)
    assert build.stale and build.late_changes == 2
    (view,) = _rows(lake, name="view_snapshot_status")  # what Athena's readers use
    assert view["stale"] and view["late_changes"] == 2
    assert lookups.table_as_of(lake, TABLE, at_ms) == \
        lookups.table_as_of(lake, TABLE, at_ms, use_snapshots=False)


def test_a_row_the_build_read_is_never_late_whatever_its_ingested_at(tmp_path: Path) -> None:
    work = Workload()
    # Ingested 60 s before the build, inside the settle window: the build read it.
    lake = write(tmp_path, [work.op("a", "put", T0, 1, T0 + 940)], "part")
    result = snapshots.build(lake, TABLE, (T0 + 100) * 1000, now_ms=(T0 + 1000) * 1000,
                             settle_seconds=900)
    assert not result.settling
    (build,) = snapshots.status(lake, TABLE)
    assert not build.stale and build.late_changes == 0
    recent = snapshots.build(lake, TABLE, (T0 + 950) * 1000, now_ms=(T0 + 1000) * 1000,
                             settle_seconds=900)
    assert recent.settling and recent.base is not None


def _truth(lake: Lake, at_ms: int) -> list[dict[str, Any]]:
    return lookups.table_as_of(lake, TABLE, at_ms, use_snapshots=False)


def test_late_files_after_a_build_make_it_stale_whatever_their_ingested_at(
        tmp_path: Path) -> None:
    work = Workload()
    work.images.update(dict.fromkeys(("e", "f")))
    lake = write(tmp_path, [work.op(k, "put", T0 + i, i, T0 + i)
                            for i, k in enumerate(("a", "b", "c", "d"))], "on-time")
    snap, built = (T0 + 100) * 1000, (T0 + 200) * 1000
    snapshots.build(lake, TABLE, snap, now_ms=built)
    # Four rows ingested 5 s before the build, in a file written after it (a buffer
    # flushed late, a retried delivery): two updates, a delete, a new item.
    late = [work.op("a", "update", T0 + 50, 10, T0 + 195),
            work.op("b", "update", T0 + 51, 11, T0 + 195),
            work.op("c", "delete", T0 + 52, 0, T0 + 195),
            work.op("e", "put", T0 + 53, 13, T0 + 195)]
    write(tmp_path, late, "late")
    (build,) = snapshots.status(lake, TABLE)
    assert build.stale and build.late_changes == 4
    for at in (snap, snap + 1, snap + 60_000):
        explain: list[str] = []
        assert lookups.table_as_of(lake, TABLE, at, explain=explain) == _truth(lake, at)
        assert explain[0].startswith("snapshot: none") and "ignored stale" in explain[1]
    assert {r["item_key"] for r in _truth(lake, snap)} == {
        '{"pk":"a"}', '{"pk":"b"}', '{"pk":"d"}', '{"pk":"e"}'}
    # The next build does not inherit the error: it reads the history, and is right.
    write(tmp_path, [work.op("f", "put", T0 + 300, 14, T0 + 300)], "next")
    nxt = snapshots.build(lake, TABLE, (T0 + 400) * 1000, now_ms=(T0 + 500) * 1000)
    assert nxt.base is None and nxt.items == 5
    at = (T0 + 400) * 1000
    explain = []
    assert lookups.table_as_of(lake, TABLE, at, explain=explain) == _truth(lake, at)
    assert explain[0].startswith(f"snapshot: {iso_ms(at)}")


def test_a_redelivered_duplicate_leaves_the_snapshot_usable(tmp_path: Path) -> None:
    work = Workload()
    first = work.op("a", "put", T0, 1, T0)
    second = work.op("a", "update", T0 + 10, 2, T0 + 10)
    lake = write(tmp_path, [first, second, work.op("b", "put", T0 + 20, 3, T0 + 20)],
                 "on-time")
    snap = (T0 + 100) * 1000
    snapshots.build(lake, TABLE, snap, now_ms=(T0 + 200) * 1000)
    # At-least-once: the same events delivered again, in a new file, ingested again
    # later: one the snapshot holds, one it superseded.
    write(tmp_path, [{**second, "ingested_at": iso_ms((T0 + 900) * 1000)},
                     {**first, "ingested_at": iso_ms((T0 + 900) * 1000)}], "again")
    (build,) = snapshots.status(lake, TABLE)
    assert not build.stale and build.late_changes == 0
    explain: list[str] = []
    assert lookups.table_as_of(lake, TABLE, snap + 5, explain=explain) == _truth(lake, snap + 5)
    assert explain[0].startswith(f"snapshot: {iso_ms(snap)}")
    nxt = snapshots.build(lake, TABLE, snap + 5, now_ms=(T0 + 1000) * 1000)
    assert nxt.base is not None and nxt.base.snapshot_ms == snap


def test_an_unreadable_snapshot_file_is_skipped_with_a_warning_naming_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    work = Workload()
    lake = write(tmp_path, [work.op("a", "put", T0, 1, T0),
                            work.op("b", "put", T0 + 50, 2, T0 + 50)], "part")
    older = snapshots.build(lake, TABLE, (T0 + 10) * 1000, now_ms=(T0 + 200) * 1000)
    newer = snapshots.build(lake, TABLE, (T0 + 100) * 1000, now_ms=(T0 + 200) * 1000)
    assert newer.base is not None
    Path(newer.path).write_bytes(b"PAR1 not a parquet file at all")
    at = (T0 + 150) * 1000
    explain: list[str] = []
    with caplog.at_level("WARNING", logger="ddbtrail"):
        got = lookups.table_as_of(lake, TABLE, at, explain=explain)
    assert got == _truth(lake, at)
    assert explain[0].startswith(f"snapshot: {iso_ms(older.snapshot_ms)}")
    assert any(f"unreadable snapshot file {newer.path}" in line for line in explain)
    assert any(newer.path in r.getMessage() for r in caplog.records)
    # Builds go on: from the readable one.
    again = snapshots.build(lake, TABLE, at, now_ms=(T0 + 300) * 1000)
    assert again.base is not None and again.base.snapshot_ms == older.snapshot_ms
    assert again.unreadable and newer.path in again.unreadable[0]
    assert [b.stale for b in snapshots.status(lake, TABLE)] == [False, False]


def test_a_snapshot_file_that_is_gone_midway_or_truncated_does_not_block_status(
        tmp_path: Path) -> None:
    work = Workload()
    lake = write(tmp_path, [work.op("a", "put", T0, 1, T0)], "part")
    result = snapshots.build(lake, TABLE, (T0 + 10) * 1000, now_ms=(T0 + 200) * 1000)
    data = Path(result.path).read_bytes()
    Path(result.path).write_bytes(data[: len(data) // 2])
    assert snapshots.status(lake, TABLE) == []
    assert snapshots.plan(lake, TABLE, (T0 + 20) * 1000).snapshot is None


def test_a_snapshot_of_the_future_is_refused(tmp_path: Path) -> None:
    work = Workload()
    lake = write(tmp_path, [work.op("a", "put", T0, 1, T0)], "part")
    with pytest.raises(InvalidArgument, match="future"):
        snapshots.build(lake, TABLE, (T0 + 100) * 1000, now_ms=T0 * 1000)


def test_readers_of_changes_never_see_snapshot_rows(tmp_path: Path) -> None:
    work = Workload()
    rows = [work.op("a", "put", T0, 1, T0), work.op("a", "update", T0 + 9, 2, T0 + 9)]
    lake = write(tmp_path, rows, "part")
    history = lookups.item_history(lake, TABLE, '{"pk":"a"}')
    snapshots.build(lake, TABLE, (T0 + 100) * 1000, now_ms=(T0 + 200) * 1000)
    assert lookups.item_history(lake, TABLE, '{"pk":"a"}') == history
    assert len(lake.data_files(TABLE)) == 1
    con = connect(lake)
    try:
        found = con.execute("SELECT count(*) FROM changes").fetchone()
    finally:
        con.close()
    assert found == (2,)


def test_current_state_view_starts_from_the_snapshot_and_matches(tmp_path: Path) -> None:
    work = Workload()
    rows = [work.op("a", "put", T0, 1, T0), work.op("b", "put", T0 + 1, 2, T0 + 1),
            work.op("a", "delete", T0 + DAY, 0, T0 + DAY),
            work.op("c", "put", T0 + 2 * DAY, 3, T0 + 2 * DAY)]
    lake = write(tmp_path, rows, "part")
    before = _rows(lake, name="view_current_state")
    snapshots.build(lake, TABLE, (T0 + DAY + 9) * 1000, now_ms=(T0 + 3 * DAY) * 1000)
    after = _rows(lake, name="view_current_state")
    assert after == before or sorted(after, key=str) == sorted(before, key=str)
    assert {r["item_key"] for r in after} == {'{"pk":"b"}', '{"pk":"c"}'}


def _read_snapshot(lake: Lake) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return [r for f in lake.snapshot_files(TABLE) for r in pq.read_table(f.path).to_pylist()]


def test_compaction_keeps_a_snapshot_usable_and_a_late_change_still_shows(
        tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ddbtrail.core.row import arrow_schema
    from ddbtrail.lake.compact import compact

    def write_parquet(rows: list[dict[str, Any]], name: str) -> Lake:
        # Parquet as Firehose writes it (JSON Lines compaction is not what this is about).
        lake = Lake.open(str(tmp_path))
        folder = Path(lake.partition(TABLE, rows[0]["dt"]))
        folder.mkdir(parents=True, exist_ok=True)
        schema = arrow_schema(include_partitions=False)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / f"{name}.parquet")
        return lake

    work = Workload()
    rows = [work.op("a", "put", T0, 1, T0), work.op("b", "put", T0 + 10, 2, T0 + 10),
            work.op("a", "update", T0 + 20, 3, T0 + 20)]
    lake = write_parquet(rows[:2], "first")
    write_parquet([rows[2], rows[2]], "second")  # one event delivered twice
    snap = (T0 + DAY - 1) * 1000
    snapshots.build(lake, TABLE, snap, now_ms=(T0 + 2 * DAY) * 1000)
    # Compaction replaces both files with one (duplicates dropped): no event is new.
    assert not [r for r in compact(lake, table=TABLE, before="2024-05-02") if r.error]
    assert len(lake.data_files(TABLE)) == 1
    (build,) = snapshots.status(lake, TABLE)
    assert not build.stale
    # A change at or before the snapshot's instant delivered after the compaction is late.
    write_parquet([work.op("b", "delete", T0 + 30, 0, T0 + 30)], "late")
    (build,) = snapshots.status(lake, TABLE)
    assert build.stale and build.late_changes == 1
    assert lookups.table_as_of(lake, TABLE, snap) == _truth(lake, snap)
    assert [r["item_key"] for r in _truth(lake, snap)] == ['{"pk":"a"}']


def test_on_an_iceberg_lake_a_late_commit_makes_the_snapshot_stale_a_duplicate_does_not(
        tmp_path: Path) -> None:
    from ddbtrail.core.flatten import row_bytes
    from ddbtrail.delivery.local import LocalDeliveryStream

    lake = Lake.open(str(tmp_path))
    delivery = LocalDeliveryStream(lake, name="ice", fmt="iceberg")

    def deliver(rows: list[dict[str, Any]]) -> None:
        delivery.put_record_batch(DeliveryStreamName="ice",
                                  Records=[{"Data": row_bytes(r)} for r in rows])  # type: ignore[arg-type]
        delivery.flush()

    work = Workload()
    first = work.op("a", "put", T0, 1, T0)
    deliver([first, work.op("b", "put", T0 + 10, 2, T0 + 10)])
    snap = (T0 + 100) * 1000
    snapshots.build(lake, TABLE, snap, now_ms=(T0 + 200) * 1000)
    assert [b.stale for b in snapshots.status(lake, TABLE)] == [False]
    deliver([first])  # redelivered: a new commit, no new event
    assert [b.stale for b in snapshots.status(lake, TABLE)] == [False]
    deliver([work.op("a", "update", T0 + 50, 7, T0 + 60)])  # committed after the build
    (build,) = snapshots.status(lake, TABLE)
    assert build.stale and build.late_changes == 1
    explain: list[str] = []
    assert lookups.table_as_of(lake, TABLE, snap, explain=explain) == _truth(lake, snap)
    assert explain[0].startswith("snapshot: none")


def test_a_snapshot_damaged_past_its_footer_falls_back_to_the_history(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import pyarrow.parquet as pq

    work = Workload()
    lake = write(tmp_path, [work.op(k, "put", T0 + i, i, T0 + i)
                            for i, k in enumerate(KEYS)], "part")
    result = snapshots.build(lake, TABLE, (T0 + 100) * 1000, now_ms=(T0 + 200) * 1000)
    # The footer still reads (the build is listed); the items' first page does not.
    data = bytearray(Path(result.path).read_bytes())
    start = pq.ParquetFile(result.path).metadata.row_group(0).column(0).data_page_offset
    data[start:start + 64] = bytes(b ^ 0xFF for b in data[start:start + 64])
    Path(result.path).write_bytes(bytes(data))
    at = (T0 + 150) * 1000
    with caplog.at_level("WARNING", logger="ddbtrail"):
        assert lookups.table_as_of(lake, TABLE, at) == _truth(lake, at)
        assert len(_truth(lake, at)) == 4
        again = snapshots.build(lake, TABLE, at, now_ms=(T0 + 300) * 1000)
    assert again.base is None and again.items == 4
    assert again.unreadable == (result.path,)
    assert sum("cannot be read" in r.getMessage() for r in caplog.records) == 2


def test_a_build_on_a_base_gone_stale_after_its_check_counts_only_what_it_holds(
        tmp_path: Path) -> None:
    """The daily machine checks its base (snapshot_check), then builds on it
    (snapshot_state). A change of the base's own day, before its instant, that lands in
    between is in neither the base nor the new state; the new build must not count it,
    or readers would take it for fresh and answer without that change."""
    work = Workload()
    lake = write(tmp_path, [work.op("a", "put", T0, 1, T0)], "part")
    base_ms = (T0 + 100) * 1000
    base = snapshots.build(lake, TABLE, base_ms, now_ms=(T0 + 200) * 1000)
    write(tmp_path, [work.op("b", "put", T0 + 200, 2, T0 + 250)], "after")
    late = work.op("c", "put", T0 + 50, 3, T0 + 300)  # checked fresh just before it landed
    write(tmp_path, [late], "late")
    rows = _rows(lake, name="snapshot_state", table_name=TABLE, base=iso_ms(base_ms),
                 base_made_at=base.made_at, at=iso_ms((T0 + 400) * 1000),
                 made_at=iso_ms((T0 + 500) * 1000), visible_before=iso_ms((T0 + 450) * 1000))
    held = {r["item_key"] for r in rows if r["row_kind"] == "item"}
    counted = {r["source_dt"]: r["source_events"] for r in rows if r["row_kind"] == "partition"}
    assert late["item_key"] not in held and len(held) == 2
    assert counted == {late["dt"]: 2}  # a (the base's) and b: what the state holds
