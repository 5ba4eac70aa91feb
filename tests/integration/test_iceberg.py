"""The Iceberg lake: one commit per flush, readers through scan planning, atomic compaction."""

from __future__ import annotations

import datetime as dt_mod
import json
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from ddbtrail.core.exceptions import DeliveryFailed
from ddbtrail.core.row import (
    COLUMNS,
    arrow_schema,
    duckdb_columns,
    glue_columns,
    iceberg_schema,
)
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.compact import compact_iceberg_partition, plan_iceberg
from ddbtrail.lake.files import Lake
from ddbtrail.lake.iceberg import IcebergLake, catalog_path
from ddbtrail.query import lookups
from ddbtrail.query.duck import connect
from tests.cli import run_cli

TABLE = "Orders"
STREAM = "ddbtrail-local"


def _row(event_id: str, pk: int, seq: int, dt: str, action: str = "MODIFY") -> dict[str, Any]:
    key = json.dumps({"pk": pk}, separators=(",", ":"))
    ms = int(dt_mod.datetime.fromisoformat(dt + "T00:00:00+00:00").timestamp() * 1000) + seq
    return {
        "schema_version": 1, "event_id": event_id, "sequence_number": str(seq),
        "action": action, "item_key": key, "keys": key,
        "old_image": None if action == "INSERT" else json.dumps({"pk": pk, "v": seq - 1}),
        "new_image": None if action == "REMOVE" else json.dumps({"pk": pk, "v": seq}),
        "type_hints": None, "changed_attributes": ["v"], "timestamp": ms,
        "event_time": dt_mod.datetime.fromtimestamp(ms / 1000, dt_mod.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "ingested_at": f"{dt}T00:00:01.000Z",
        "stream_view_type": "NEW_AND_OLD_IMAGES", "size_bytes": 40, "ttl_delete": False,
        "user_identity": None, "event_source": "aws:dynamodb", "aws_region": "us-east-1",
        "spill_uri": None, "snapshot_id": None, "table_name": TABLE, "dt": dt,
    }


def _deliver(stream: LocalDeliveryStream, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 400):
        records = [{"Data": json.dumps(r).encode()} for r in rows[start:start + 400]]
        assert stream.put_record_batch(DeliveryStreamName=STREAM,
                                       Records=records)["FailedPutCount"] == 0


def _workload(days: tuple[str, ...] = ("2025-03-01", "2025-03-02"), flushes: int = 4,
              per_flush: int = 30, items: int = 9) -> list[list[dict[str, Any]]]:
    """Batches in arrival order: keys interleaved, sequence numbers of 1 to 4 digits."""
    batches, seq = [], 5
    for f in range(flushes):
        batch = []
        for i in range(per_flush):
            seq += 7
            batch.append(_row(f"e-{f}-{i}", (f * per_flush + i) % items, seq,
                              days[i % len(days)]))
        batches.append(batch)
    return batches


def _iceberg_lake(tmp_path: Path, batches: list[list[dict[str, Any]]]) -> Lake:
    lake = Lake.open(str(tmp_path / "lake"))
    stream = LocalDeliveryStream(lake, fmt="iceberg")
    for batch in batches:
        _deliver(stream, batch)
        stream.flush()
    stream.close()
    return lake


def _independent(lake: Lake) -> Any:
    catalog = SqlCatalog("ddbtrail", uri=f"sqlite:///{lake.root}/_ddbtrail/iceberg/catalog.db",
                         warehouse=f"file://{lake.root}")
    return catalog.load_table("ddbtrail.changes")


def _key(pk: int) -> str:
    return json.dumps({"pk": pk}, separators=(",", ":"))


def test_iceberg_schema_agrees_with_the_row_schema() -> None:
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    schema = iceberg_schema()
    assert [f.name for f in schema.fields] == [c.name for c in COLUMNS]
    assert [f.required for f in schema.fields] == [not c.nullable for c in COLUMNS]
    assert list(duckdb_columns()) == [f.name for f in schema.fields]
    glue = [c["Name"] for c in glue_columns()] + [c["Name"] for c in
                                                   glue_columns(partitions=True)]
    assert glue == [f.name for f in schema.fields]
    as_arrow = schema_to_pyarrow(schema, include_field_ids=False)
    for ours, theirs in zip(arrow_schema(), as_arrow, strict=True):
        assert (ours.name, ours.nullable) == (theirs.name, theirs.nullable)
        assert _small(ours.type) == _small(theirs.type), ours.name


def _small(t: pa.DataType) -> str:
    """A type's name with large/small string and list variants (and list item names)
    made alike: the readers cast between them."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_small(t.value_type)}>"
    return "string" if pa.types.is_large_string(t) else str(t)


def test_delivery_commits_one_snapshot_per_flush_and_an_independent_catalog_reads_it(
        tmp_path: Path) -> None:
    batches = _workload()
    lake = _iceberg_lake(tmp_path, batches)

    assert Path(catalog_path(lake)).is_file()
    table = _independent(lake)
    assert [f.name for f in table.spec().fields] == ["table_name", "dt"]
    assert [lake_field.transform.__class__.__name__ for lake_field in table.spec().fields] == [
        "IdentityTransform", "IdentityTransform"]
    assert table.format_version == 2
    assert [table.schema().find_column_name(f.source_id)
            for f in table.sort_order().fields] == ["item_key", "sequence_number"]
    # One append per flush, each with both days' rows.
    snapshots = table.snapshots()
    assert len(snapshots) == len(batches)
    assert all(s.summary.operation.value == "append" for s in snapshots)
    rows = table.scan().to_arrow()
    assert sorted(rows.column("event_id").to_pylist()) == sorted(
        r["event_id"] for b in batches for r in b)
    assert set(rows.column("dt").to_pylist()) == {"2025-03-01", "2025-03-02"}
    # No Hive-layout files were written beside the table.
    assert lake.data_files() == []


def test_lookups_on_iceberg_answer_as_on_parquet(tmp_path: Path) -> None:
    batches = _workload()
    lake = _iceberg_lake(tmp_path / "ice", batches)
    hive = Lake.open(str(tmp_path / "hive"))
    with LocalDeliveryStream(hive, fmt="parquet") as stream:
        for batch in batches:
            _deliver(stream, batch)
            stream.flush()
    at_ms = int(dt_mod.datetime(2025, 3, 2, 0, 0, 0, 500_000, dt_mod.UTC).timestamp() * 1000)

    for pk in range(9):
        hist = lookups.item_history(lake, TABLE, _key(pk))
        assert hist and hist == lookups.item_history(hive, TABLE, _key(pk))
        assert lookups.item_as_of(lake, TABLE, _key(pk), at_ms) == lookups.item_as_of(
            hive, TABLE, _key(pk), at_ms)
    table = lookups.table_as_of(lake, TABLE, at_ms)
    assert table and table == lookups.table_as_of(hive, TABLE, at_ms)
    assert lookups.key_types_from_lake(lake, TABLE) == {"pk": "N"}


def test_failed_commit_keeps_rows_buffered_and_leaves_only_orphans(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table import Table

    batches = _workload(flushes=2)
    lake = _iceberg_lake(tmp_path, batches[:1])
    stream = LocalDeliveryStream(lake, fmt="iceberg")
    _deliver(stream, batches[1])

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise CommitFailedException("simulated crash before the catalog update")

    with monkeypatch.context() as patch:
        patch.setattr(Table, "_do_commit", refuse)
        with pytest.raises(DeliveryFailed, match="stay buffered"):
            stream.flush()
    assert stream.pending_rows == len(batches[1])
    ice = IcebergLake(lake)
    assert len(ice.snapshots()) == 1
    visible = {p.file.path for p in ice.plan()}
    on_disk = {str(p) for p in Path(lake.root, "ddbtrail").rglob("*.parquet")}
    orphans = on_disk - visible
    assert orphans, "the failed commit's data files should be on disk, unreferenced"
    assert connect(lake).execute("SELECT count(*) FROM changes").fetchone() == (
        len(batches[0]),)

    # The retry commits the same rows once; orphan removal deletes exactly the orphaned
    # data files, and metadata the table no longer needs (never what it does need).
    stream.close()
    assert len(ice.snapshots()) == 2
    needed = ice.referenced_metadata()
    removed = ice.remove_orphans(dt_mod.datetime.now(dt_mod.UTC) + dt_mod.timedelta(seconds=1))
    assert sorted(p for p in removed if p.endswith(".parquet")) == sorted(orphans)
    assert not needed & set(removed)
    assert all(Path(p).exists() for p in needed)
    ids = connect(lake).execute("SELECT event_id FROM changes").fetchall()
    assert sorted(i for (i,) in ids) == sorted(r["event_id"] for b in batches for r in b)


def _sorted_by_key(path: str) -> bool:
    table = pq.read_table(path, columns=["item_key", "sequence_number"])
    order = [(k, len(s), s) for k, s in zip(table.column("item_key").to_pylist(),
                                            table.column("sequence_number").to_pylist(),
                                            strict=True)]
    return order == sorted(order)


def test_compaction_is_one_commit_per_partition_sorted_dedup_and_prunes_by_key(
        tmp_path: Path) -> None:
    batches = _workload(flushes=6)
    batches.append(batches[0][:10])  # at-least-once: ten rows delivered twice
    lake = _iceberg_lake(tmp_path, batches)
    ice = IcebergLake(lake)
    events = {r["event_id"] for b in batches for r in b}
    before_history = {pk: lookups.item_history(lake, TABLE, _key(pk)) for pk in range(9)}
    files_before = len(ice.plan())
    snapshots_before = len(ice.snapshots())

    parts = plan_iceberg(ice, before="2025-03-03", today="2025-03-02")
    assert [(p.dt, len(p.files)) for p in parts] == [("2025-03-01", 7), ("2025-03-02", 7)]
    from ddbtrail.lake.compact import CompactOptions

    results = [compact_iceberg_partition(ice, p, options=CompactOptions(file_rows=40))
               for p in parts]

    assert [r.error for r in results] == [None, None]
    assert sum(r.duplicates or 0 for r in results) == 10
    assert len(ice.snapshots()) == snapshots_before + 2
    assert [s["operation"] for s in ice.snapshots()[-2:]] == ["overwrite", "overwrite"]
    planned = ice.plan()
    assert len(planned) <= files_before
    assert all(_sorted_by_key(p.file.path) for p in planned)
    stored = connect(lake).execute("SELECT event_id FROM changes").fetchall()
    assert sorted(i for (i,) in stored) == sorted(events)  # each event once
    assert {pk: lookups.item_history(lake, TABLE, _key(pk)) for pk in range(9)} == \
        before_history
    # Sorted files let the plan for one key skip the files of other key ranges.
    for_key = ice.plan(table_name=TABLE, item_key=_key(0))
    assert 0 < len(for_key) < len(planned)
    # Compacted partitions need nothing more.
    assert plan_iceberg(ice, before="2025-03-03", today="2025-03-02") == []
    # Old snapshots still read the old files (time travel).
    old = ice.plan(snapshot_id=ice.snapshots()[0]["snapshot_id"])
    assert len(old) == 2


def test_concurrent_reader_sees_the_old_snapshot_or_the_new_never_both(
        tmp_path: Path) -> None:
    days = tuple(f"2025-02-{d:02d}" for d in range(1, 9))
    batches = _workload(days=days, flushes=5, per_flush=40)
    batches.append(batches[1])  # a whole flush delivered twice
    lake = _iceberg_lake(tmp_path, batches)
    ice = IcebergLake(lake)
    expected = {r["event_id"] for b in batches for r in b}
    per_day_old = {d: sum(1 for b in batches for r in b if r["dt"] == d) for d in days}
    per_day_new = {d: len({r["event_id"] for b in batches for r in b if r["dt"] == d})
                   for d in days}
    assert per_day_old != per_day_new
    done = threading.Event()
    seen: list[dict[str, int]] = []
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                con = connect(lake, table_name=TABLE)
                rows = con.execute("SELECT dt, event_id FROM changes").fetchall()
                con.close()
                assert {e for _, e in rows} == expected  # never a gap
                counts: dict[str, int] = {}
                for d, _ in rows:
                    counts[d] = counts.get(d, 0) + 1
                seen.append(counts)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        results = [compact_iceberg_partition(ice, p)
                   for p in plan_iceberg(ice, before="2025-03-01", today="2025-02-28")]
    finally:
        done.set()
        thread.join()
    assert not failures, failures[0]
    assert [r.error for r in results] == [None] * len(days)
    assert seen, "the reader never finished a pass"
    for counts in seen:  # each partition whole: all old files or the compacted ones
        assert all(counts[d] in (per_day_old[d], per_day_new[d]) for d in days), counts
    assert seen[-1] == per_day_new or connect(lake).execute(
        "SELECT count(*) FROM changes").fetchone() == (len(expected),)


def test_a_concurrent_append_makes_the_compaction_retry_and_both_survive(
        tmp_path: Path) -> None:
    batches = _workload(days=("2025-03-01",), flushes=3)
    lake = _iceberg_lake(tmp_path, batches)
    ice = IcebergLake(lake)
    [part] = plan_iceberg(ice, before="2025-03-02", today="2025-03-01")
    late = [_row("late-1", 4, 99_999, "2025-03-01"), _row("late-2", 5, 100_000, "2025-03-01")]

    def race(_result: Any) -> None:
        # Another writer (its own catalog connection) commits between plan and commit.
        other = _independent(lake)
        other.append(pa.Table.from_pylist(late, schema=arrow_schema()))

    result = compact_iceberg_partition(ice, part, before_commit=race)

    assert result.error is None
    ops = [s["operation"] for s in ice.snapshots()]
    assert ops == ["append"] * 4 + ["overwrite"]
    stored = connect(lake).execute("SELECT event_id FROM changes").fetchall()
    assert sorted(i for (i,) in stored) == sorted(
        [r["event_id"] for b in batches for r in b] + ["late-1", "late-2"])
    # The late file was not compacted; the next run folds it in.
    assert [len(p.files) for p in plan_iceberg(ice, before="2025-03-02",
                                               today="2025-03-01")] == [2]


def test_cli_compact_accepts_tomorrow_on_iceberg_and_expires_and_removes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ddbtrail.lake.compact import today_utc

    today = today_utc()
    tomorrow = (dt_mod.date.fromisoformat(today) + dt_mod.timedelta(days=1)).isoformat()
    lake = _iceberg_lake(tmp_path, _workload(days=(today,), flushes=3))
    ice = IcebergLake(lake)
    events = sorted(i for (i,) in connect(lake).execute("SELECT event_id FROM changes")
                    .fetchall())
    files_before = len(ice.plan())

    code, out, err = run_cli(["compact", "--lake", lake.uri, "--before", tomorrow], capsys)
    assert (code, err) == (0, "")
    assert "Compacted 1 partition" in out
    assert len(ice.snapshots()) == 4 and len(ice.plan()) <= files_before
    assert all(_sorted_by_key(p.file.path) for p in ice.plan())
    assert sorted(i for (i,) in connect(lake).execute("SELECT event_id FROM changes")
                  .fetchall()) == events

    code, out, err = run_cli(["compact", "--lake", lake.uri, "--before", tomorrow,
                              "--expire-snapshots", "0", "--remove-orphans", "0"], capsys)
    assert code == 0, err
    assert "Compacted 0 partition" in out
    assert len(ice.snapshots()) == 1
    assert {str(p) for p in Path(lake.root, "ddbtrail").rglob("data/**/*.parquet")} == {
        p.file.path for p in ice.plan()}
    # A one-snapshot table keeps only the metadata it needs: no litter of old versions,
    # manifests or the table creation's own file.
    assert {str(p) for p in Path(lake.root, "ddbtrail", "changes", "metadata").iterdir()} == (
        ice.referenced_metadata())
    assert "unneeded metadata file(s)" in out

    day_after = (dt_mod.date.fromisoformat(tomorrow) + dt_mod.timedelta(days=1)).isoformat()
    code, _, err = run_cli(["compact", "--lake", lake.uri, "--before", day_after], capsys)
    assert code == 2 and "after tomorrow" in err


def test_report_schema_views_and_saved_queries_read_an_iceberg_lake_as_parquet(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import duckdb

    batches = _workload()
    lake = _iceberg_lake(tmp_path / "ice", batches)
    hive = Lake.open(str(tmp_path / "hive"))
    with LocalDeliveryStream(hive, fmt="parquet") as stream:
        for batch in batches:
            _deliver(stream, batch)
    events = len({r["event_id"] for b in batches for r in b})

    def both(argv: list[str]) -> tuple[str, str]:
        outs = []
        for where in (lake, hive):
            code, out, err = run_cli([*argv, "--lake", where.uri], capsys)
            assert code == 0, err
            outs.append(out)
        return outs[0], outs[1]

    ice_out, hive_out = both(["schema", "--table", TABLE, "--output", "json"])
    assert json.loads(ice_out) == json.loads(hive_out)
    assert "pk" in ice_out
    window = ["--param", f"table_name={TABLE}", "--param", "from=2025-03-01T00:00:00Z",
              "--param", "to=2025-03-03T00:00:00Z", "--output", "json"]
    ice_out, hive_out = both(["query", "hot_items", *window])
    assert ice_out == hive_out and ice_out.strip()

    code, _, err = run_cli(["report", "--lake", lake.uri, "--table", TABLE,
                            "--out", str(tmp_path / "r.html")], capsys)
    assert code == 0, err
    assert TABLE in (tmp_path / "r.html").read_text(encoding="utf-8")

    catalog_file = tmp_path / "bi.duckdb"
    code, _, err = run_cli(["views", "--table", TABLE, "--lake", lake.uri, "--out",
                            str(tmp_path / "views"), "--apply", "duckdb", "--duckdb",
                            str(catalog_file)], capsys)
    assert code == 0, err
    con = duckdb.connect(str(catalog_file), read_only=True)
    try:
        assert con.execute("SELECT count(DISTINCT event_id) FROM changes").fetchone() == (
            events,)
        current = con.execute(f'SELECT count(*) FROM "{TABLE.lower()}_current"').fetchone()
    finally:
        con.close()
    assert current is not None and current[0] == len(lookups.table_as_of(
        lake, TABLE, int(dt_mod.datetime(2030, 1, 1, tzinfo=dt_mod.UTC).timestamp() * 1000)))


def test_a_commit_retried_after_a_concurrent_update_logs_through_ddbtrail_not_stderr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    import logging

    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table import Table

    batches = _workload(flushes=2)
    lake = _iceberg_lake(tmp_path, batches[:1])
    stream = LocalDeliveryStream(lake, fmt="iceberg")
    _deliver(stream, batches[1])
    real = Table._do_commit
    conflicts = iter([True])

    def conflict_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        if next(conflicts, False):
            raise CommitFailedException("another writer committed first")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Table, "_do_commit", conflict_once)
    with caplog.at_level(logging.INFO, logger="ddbtrail"):
        stream.close()
    assert len(IcebergLake(lake).snapshots()) == 2
    assert any(r.name == "ddbtrail.lake.iceberg" and "concurrent update" in r.getMessage()
               for r in caplog.records)
    assert "Commit failed" not in capfd.readouterr().err
