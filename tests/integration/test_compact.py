"""Compaction: sorted, deduplicated, closed partitions only, and safe for readers."""

from __future__ import annotations

import datetime as dt_mod
import gzip
import json
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from ddbtrail.cli import main
from ddbtrail.core.row import arrow_schema
from ddbtrail.lake.compact import compact, compact_partition, plan
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups
from ddbtrail.query.duck import connect

TABLE = "Orders"
TODAY = "2025-03-10"


def _row(event_id: str, pk: int, seq: int, dt: str, action: str = "MODIFY") -> dict[str, Any]:
    key = json.dumps({"pk": pk}, separators=(",", ":"))
    ms = 1_741_000_000_000 + seq
    return {
        "schema_version": 1, "event_id": event_id, "sequence_number": str(seq),
        "action": action, "item_key": key, "keys": key,
        "old_image": None if action == "INSERT" else json.dumps({"pk": pk, "v": seq - 1}),
        "new_image": None if action == "REMOVE" else json.dumps({"pk": pk, "v": seq}),
        "type_hints": None, "changed_attributes": ["v"], "timestamp": ms,
        "event_time": f"{dt}T00:00:00.000Z", "ingested_at": f"{dt}T00:00:01.000Z",
        "stream_view_type": "NEW_AND_OLD_IMAGES", "size_bytes": 40, "ttl_delete": False,
        "user_identity": None, "event_source": "aws:dynamodb", "aws_region": "us-east-1",
        "spill_uri": None, "snapshot_id": None,
    }


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(include_partitions=False)),
                   sink)
    return bytes(sink.getvalue().to_pybytes())


def _write_partition(lake: Lake, dt: str, files: list[list[dict[str, Any]]]) -> None:
    for i, rows in enumerate(files):
        lake.write_atomic(f"{lake.partition(TABLE, dt)}/firehose-{i:03d}.parquet",
                          _parquet(rows))


def _firehose_like(lake: Lake, dt: str, n_files: int, rows_per_file: int,
                   items: int = 7) -> set[str]:
    """Files in arrival order (keys interleaved), sequence numbers of several lengths."""
    files, ids = [], set()
    seq = 5
    for f in range(n_files):
        rows = []
        for r in range(rows_per_file):
            seq += 7  # crosses 1, 2 and 3 digits: text order != numeric order
            eid = f"{dt}-{f}-{r}"
            rows.append(_row(eid, (f * rows_per_file + r) % items, seq, dt))
            ids.add(eid)
        files.append(rows)
    _write_partition(lake, dt, files)
    return ids


def _read_ids(lake: Lake) -> list[str]:
    """What a reader that follows the protocol sees: list, read; if a listed file is gone
    (compaction deleted it after writing its replacement), list again."""
    while True:
        ids: list[str] = []
        try:
            for f in lake.data_files(TABLE):
                with lake.fs.open_input_file(f.path) as src:
                    ids += pq.read_table(src, columns=["event_id"]).column(
                        "event_id").to_pylist()
        except FileNotFoundError:
            continue
        return ids


def test_compaction_sorts_dedups_and_keeps_every_change(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    ids = _firehose_like(lake, "2025-03-01", n_files=6, rows_per_file=20)
    # At-least-once delivery: one file delivered twice.
    first = lake.data_files(TABLE)[0]
    lake.write_atomic(first.path.replace("firehose-000", "firehose-dup"),
                      lake.read_bytes(first.path) or b"")
    before = {k: lookups.item_history(lake, TABLE, json.dumps({"pk": k}).replace(" ", ""))
              for k in range(7)}

    results = compact(lake, today=TODAY)

    assert [(r.dt, r.files_before, r.rows_before, r.rows_after, r.files_after, r.error)
            for r in results] == [("2025-03-01", 7, 140, 120, 1, None)]
    files = lake.data_files(TABLE)
    assert len(files) == 1
    table = pq.read_table(files[0].path)
    assert sorted(table.column("event_id").to_pylist()) == sorted(ids)
    order = [(k, int(s)) for k, s in zip(table.column("item_key").to_pylist(),
                                          table.column("sequence_number").to_pylist(),
                                          strict=True)]
    assert order == sorted(order)
    meta = pq.ParquetFile(files[0].path).metadata
    key_col = meta.schema.names.index("item_key")
    assert meta.row_group(0).column(key_col).statistics.has_min_max
    # The saved lookup answers the same before and after.
    after = {k: lookups.item_history(lake, TABLE, json.dumps({"pk": k}).replace(" ", ""))
             for k in range(7)}
    assert after == before
    assert all(before.values())


def test_only_closed_partitions_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    for dt in ("2025-03-08", "2025-03-09", TODAY):
        _firehose_like(lake, dt, n_files=3, rows_per_file=4)
    listing = [f.path for f in lake.data_files()]

    assert [(p.dt, len(p.files)) for p in plan(lake, today=TODAY)] == [
        ("2025-03-08", 3), ("2025-03-09", 3)]
    assert [p.dt for p in plan(lake, before="2025-03-09", today=TODAY)] == ["2025-03-08"]
    dry = compact(lake, dry_run=True, today=TODAY)
    assert [(r.dt, r.files_before, r.files_after) for r in dry] == [
        ("2025-03-08", 3, None), ("2025-03-09", 3, None)]
    assert [f.path for f in lake.data_files()] == listing

    compact(lake, today=TODAY)
    counts = {dt: len(lake.data_files(TABLE, dt, dt)) for dt in ("2025-03-08", "2025-03-09",
                                                                   TODAY)}
    assert counts == {"2025-03-08": 1, "2025-03-09": 1, TODAY: 3}
    # Already compacted: nothing left to do.
    assert plan(lake, today=TODAY) == []


def test_late_file_after_compaction_is_folded_in_next_run(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    ids = _firehose_like(lake, "2025-03-01", n_files=3, rows_per_file=5)
    compact(lake, today=TODAY)
    late = _row("late-1", 3, 999_999, "2025-03-01")
    _write_partition(lake, "2025-03-01", [[late]])
    assert [len(p.files) for p in plan(lake, today=TODAY)] == [2]
    compact(lake, today=TODAY)
    assert sorted(_read_ids(lake)) == sorted([*ids, "late-1"])
    assert len(lake.data_files(TABLE)) == 1


def test_concurrent_reader_sees_every_event_exactly_once(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    expected: set[str] = set()
    for day in range(1, 21):
        expected |= _firehose_like(lake, f"2025-02-{day:02d}", 6, 10)
    done = threading.Event()
    snapshots: list[tuple[int, int]] = []
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                ids = _read_ids(lake)
                snapshots.append((len(ids), len(set(ids))))
                assert set(ids) == expected  # never a gap, never a stranger
        except BaseException as exc:  # surfaced below, in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        results = compact(lake, today=TODAY)
    finally:
        done.set()
        thread.join()
    assert not failures, failures[0]
    assert [r.error for r in results] == [None] * 20
    assert snapshots, "the reader never finished a pass"
    # While old and new files coexist a reader sees duplicates, which dedup by event_id
    # removes; afterwards each event is stored once.
    assert all(unique == len(expected) for _, unique in snapshots)
    final = _read_ids(lake)
    assert len(final) == len(set(final)) == len(expected)


def test_reader_between_write_and_delete_and_after_a_vanished_file(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    ids = _firehose_like(lake, "2025-03-01", n_files=5, rows_per_file=8)
    [part] = plan(lake, today=TODAY)
    stale_listing = lake.data_files(TABLE)  # a reader listed before compaction began
    middle: list[list[str]] = []

    compact_partition(lake, part, on_written=lambda _r: middle.append(_read_ids(lake)))

    # Between the steps: old and new files both visible, each event twice, none missing.
    [seen] = middle
    assert len(seen) == 2 * len(ids) and set(seen) == ids
    # The stale listing's files are gone; the reader's re-list finds the new file.
    with pytest.raises(FileNotFoundError):
        lake.fs.open_input_file(stale_listing[0].path)
    assert sorted(_read_ids(lake)) == sorted(ids)


class _NoDelete(pafs.FileSystemHandler):  # type: ignore[misc]
    """Local files, but deleting fails: a compactor that dies after writing."""

    def __init__(self) -> None:
        self.fs = pafs.LocalFileSystem()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NoDelete)

    def __ne__(self, other: object) -> bool:
        return not isinstance(other, _NoDelete)

    __hash__ = None  # type: ignore[assignment]

    def get_type_name(self) -> str:
        return "nodelete"

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> Any:
        return self.fs.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> Any:
        return self.fs.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.fs.create_dir(path, recursive=recursive)

    def delete_file(self, path: str) -> None:
        raise OSError("simulated crash")

    def open_input_file(self, path: str) -> Any:
        return self.fs.open_input_file(path)

    def open_input_stream(self, path: str) -> Any:
        return self.fs.open_input_stream(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return self.fs.open_output_stream(path)

    def delete_dir(self, path: str) -> None: ...
    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None: ...
    def delete_root_dir_contents(self) -> None: ...
    def move(self, src: str, dest: str) -> None: ...
    def copy_file(self, src: str, dest: str) -> None: ...
    def open_append_stream(self, path: str, metadata: Any) -> Any: ...


def test_crash_before_deleting_leaves_duplicates_never_gaps(tmp_path: Path) -> None:
    good = Lake.open(str(tmp_path / "lake"))
    ids = _firehose_like(good, "2025-03-01", n_files=4, rows_per_file=5)
    crashing = Lake(good.uri, pafs.PyFileSystem(_NoDelete()), good.root)

    [result] = compact(crashing, today=TODAY)

    assert result.error is not None and "next run" in result.error
    seen = _read_ids(good)
    assert len(seen) == 2 * len(ids) and set(seen) == ids  # old + new, dedup restores it
    compact(good, today=TODAY)  # the next run folds the copies together
    final = _read_ids(good)
    assert sorted(final) == sorted(ids)


def test_jsonl_partition_compacts_to_gzip_jsonl(tmp_path: Path) -> None:
    from ddbtrail.core.flatten import row_bytes

    lake = Lake.open(str(tmp_path / "lake"))
    rows = [_row(f"e{i}", i % 3, 100 - i, "2025-03-01") | {"table_name": TABLE,
                                                         "dt": "2025-03-01"}
            for i in range(9)]
    for i in range(3):
        lake.write_atomic(f"{lake.partition(TABLE, '2025-03-01')}/f{i}.jsonl",
                          b"".join(row_bytes(r) for r in rows[i * 3:(i + 1) * 3]))
    [result] = compact(lake, today=TODAY)
    assert result.error is None
    [f] = lake.data_files(TABLE)
    assert f.path.endswith(".jsonl.gz")
    back = [json.loads(line) for line in gzip.decompress(Path(f.path).read_bytes())
            .splitlines()]
    assert sorted(r["event_id"] for r in back) == sorted(r["event_id"] for r in rows)
    assert [(r["item_key"], int(r["sequence_number"])) for r in back] == sorted(
        (r["item_key"], int(r["sequence_number"])) for r in rows)
    # Each line is a whole row, as Firehose delivers it: its partition columns included.
    assert {(r["table_name"], r["dt"]) for r in back} == {(TABLE, "2025-03-01")}
    # A late file beside the compacted one: the next run reads both back and folds them.
    late = _row("late", 7, 1, "2025-03-01") | {"table_name": TABLE, "dt": "2025-03-01"}
    lake.write_atomic(f"{lake.partition(TABLE, '2025-03-01')}/late.jsonl", row_bytes(late))
    [again] = compact(lake, today=TODAY)
    assert again.error is None
    assert sorted(i for (i,) in connect(lake).execute("SELECT event_id FROM changes")
                  .fetchall()) == sorted([r["event_id"] for r in rows] + ["late"])


@pytest.mark.integration
def test_s3_lake_on_moto(moto_server: Any) -> None:
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket="compact-lake")
    lake = Lake.open("s3://compact-lake/lake", endpoint_url=moto_server.endpoint_url,
                     region="us-east-1")
    ids = _firehose_like(lake, "2025-03-01", n_files=4, rows_per_file=6)
    [result] = compact(lake, today=TODAY)
    assert result.error is None and result.files_after == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="compact-lake")["Contents"]
            if not o["Key"].endswith("/")]  # pyarrow's directory markers
    assert len(keys) == 1 and "/compacted-" in keys[0]
    assert sorted(_read_ids(lake)) == sorted(ids)


def test_cli_compact_and_bad_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake_dir = tmp_path / "lake"
    _firehose_like(Lake.open(str(lake_dir)), "2025-03-01", n_files=2, rows_per_file=3)
    with pytest.raises(SystemExit) as exit_info:
        main(["compact", "--lake", str(lake_dir), "--dry-run"])
    assert exit_info.value.code in (0, None)
    assert "2025-03-01" in capsys.readouterr().out
    assert len(Lake.open(str(lake_dir)).data_files()) == 2

    with pytest.raises(SystemExit) as exit_info:
        main(["compact", "--lake", str(lake_dir)])
    assert exit_info.value.code in (0, None)
    assert len(Lake.open(str(lake_dir)).data_files()) == 1

    with pytest.raises(SystemExit) as exit_info:
        main(["compact", "--lake", str(lake_dir), "--before", "03/01/2025"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --before")


def test_cli_compact_says_why_partitions_are_skipped_and_takes_instants(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt_mod

    from tests.cli import run_cli

    today = dt_mod.datetime.now(dt_mod.UTC).strftime("%Y-%m-%d")
    lake_dir = tmp_path / "lake"
    lake = Lake.open(str(lake_dir))
    _firehose_like(lake, "2025-03-01", n_files=2, rows_per_file=3)
    _firehose_like(lake, "2025-03-02", n_files=2, rows_per_file=3)
    _firehose_like(lake, today, n_files=2, rows_per_file=3)  # as a demo lake: still open
    # An ISO instant: its own partition (03-02) is not closed before it.
    code, out, err = run_cli(["compact", "--lake", str(lake_dir), "--before",
                              "2025-03-02T12:00:00Z", "--dry-run"], capsys)
    assert (code, err) == (0, "")
    flat = " ".join(out.split())
    assert "Would compact 1 partition(s)" in flat
    assert ("skipped 2 partition(s) still being written (dt on or after 2025-03-02, UTC): "
            f"Orders/dt=2025-03-02, Orders/dt={today}; they are compacted once closed") in flat
    assert run_cli(["compact", "--lake", str(lake_dir), "--before", "now"], capsys)[0] == 0
    code, out, _ = run_cli(["compact", "--lake", str(lake_dir), "--dry-run"], capsys)
    flat = " ".join(out.split())
    assert "Would compact 0 partition(s)" in flat
    assert "skipped 1 partition(s) still being written" in flat
    assert "skipped 2 partition(s) already compacted" in flat


def test_one_compact_call_takes_parquet_jsonl_and_iceberg_and_reports_progress(
        tmp_path: Path) -> None:
    from ddbtrail.core.flatten import row_bytes
    from ddbtrail.lake.iceberg import IcebergLake
    from tests.integration.test_iceberg import _iceberg_lake, _workload

    lake = _iceberg_lake(tmp_path, _workload(days=("2025-03-01",), flushes=3))
    ice_ids = sorted(i for (i,) in connect(lake).execute(
        "SELECT event_id FROM changes").fetchall())
    hive_ids = _firehose_like(lake, "2025-03-02", n_files=3, rows_per_file=5)
    jsonl = [_row(f"j{i}", i % 3, 100 - i, "2025-03-03") | {"table_name": TABLE,
                                                          "dt": "2025-03-03"}
             for i in range(6)]
    for i in range(2):
        lake.write_atomic(f"{lake.partition(TABLE, '2025-03-03')}/f{i}.jsonl",
                          b"".join(row_bytes(r) for r in jsonl[i * 3:(i + 1) * 3]))
    seen: list[tuple[int, int, str]] = []

    report = compact(lake, today=TODAY, progress=lambda *a: seen.append(a),
                     expire_snapshots=dt_mod.timedelta(0), remove_orphans=dt_mod.timedelta(0))

    assert [(r.dt, r.error) for r in report] == [
        ("2025-03-02", None), ("2025-03-03", None), ("2025-03-01", None)]
    assert report.iceberg and report.failed == []
    assert seen == [(0, 3, f"{TABLE}/dt=2025-03-02"), (1, 3, f"{TABLE}/dt=2025-03-03"),
                    (2, 3, f"{TABLE}/dt=2025-03-01"), (3, 3, "")]
    assert report.expired_snapshots == 3 and report.removed_files
    ice = IcebergLake(lake)
    assert len(ice.snapshots()) == 1
    metadata = Path(lake.root, "ddbtrail", "changes", "metadata")
    assert {str(p) for p in metadata.iterdir()} == ice.referenced_metadata()
    assert sorted(i for (i,) in connect(lake).execute(
        "SELECT event_id FROM changes").fetchall()) == sorted(
        ice_ids + sorted(hive_ids) + [r["event_id"] for r in jsonl])
    assert {f.format for f in lake.data_files(TABLE)} == {"parquet", "jsonl"}
    assert compact(lake, today=TODAY).partitions == []


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"before": "2099-01-01"}, "before"),
    ({"before": "03/01/2025"}, "before"),
    ({"remove_orphans": dt_mod.timedelta(hours=1)}, "remove_orphans"),
])
def test_library_errors_name_the_parameter_never_an_option(
        tmp_path: Path, kwargs: dict[str, Any], param: str) -> None:
    from ddbtrail.core.exceptions import InvalidArgument

    lake = Lake.open(str(tmp_path / "lake"))
    _firehose_like(lake, "2025-03-01", n_files=2, rows_per_file=3)
    with pytest.raises(InvalidArgument) as caught:
        compact(lake, today=TODAY, **kwargs)
    assert caught.value.param == param
    assert str(caught.value).startswith(param) and "--" not in str(caught.value)
