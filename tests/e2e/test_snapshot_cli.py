"""``ddbtrail snapshot`` on a demo lake: as-of answers the same before, at and after it.

The demo runs the real pipeline (moto's DynamoDB and Streams, the local runner and
delivery stream), so the lake holds inserts, updates, deletes and TTL deletes in real
stream order. A copy of the lake without the snapshot is the reference.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from ddbtrail.core.flatten import row_bytes
from ddbtrail.core.timefmt import iso_ms, parse_timestamp
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.files import Lake
from ddbtrail.local.demo import TABLE, run_demo
from ddbtrail.query import lookups
from tests.cli import run_cli
from tests.sql.test_snapshots import TABLE as T
from tests.sql.test_snapshots import Workload

pytestmark = pytest.mark.e2e


def test_snapshot_then_as_of_prints_the_same_items(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lake_dir = tmp_path / "lake"
    result = run_demo(Lake.open(str(lake_dir)), changes=300, fmt="jsonl")
    copy = tmp_path / "copy"
    shutil.copytree(lake_dir, copy)
    lake = Lake.open(str(lake_dir))
    times = sorted({f.dt for f in lake.data_files(TABLE)})
    assert times
    rows = [json.loads(line) for f in lake.data_files(TABLE)
            for line in Path(f.path).read_text().splitlines()]
    stamps = sorted(r["timestamp"] for r in rows)
    mid = stamps[len(stamps) // 2]

    key = json.loads(rows[0]["keys"])
    key_opts = [a for name, value in key.items() for a in ("--key", f"{name}={value}")]
    code, out, err = run_cli(["snapshot", "--table", TABLE, "--at", iso_ms(mid),
                              "--lake", str(lake_dir)], capsys)
    assert code == 0, err
    assert "item(s), from the whole history" in out
    assert lake.snapshot_files(TABLE)

    for at in (stamps[0] - 1, mid - 1500, mid, mid + 1, stamps[-1] + 1000):
        argv = ["as-of", "--table", TABLE, "--at", iso_ms(at), "--output", "json"]
        code, with_snap, err = run_cli([*argv, "--lake", str(lake_dir), "--explain"], capsys)
        assert code == 0, err
        code, without, _ = run_cli([*argv, "--lake", str(copy)], capsys)
        assert code == 0
        assert with_snap == without
        used = f"explain: snapshot: {iso_ms(mid)}" in err
        assert used == (at >= mid), err
        if at >= mid:
            assert "changes: " in err and "snapshot: 1 file(s)" in err
    code, history_after, _ = run_cli(["history", "--table", TABLE, *key_opts, "--lake",
                                      str(lake_dir), "--output", "json"], capsys)
    code, history_copy, _ = run_cli(["history", "--table", TABLE, *key_opts, "--lake",
                                     str(copy), "--output", "json"], capsys)
    assert history_after == history_copy and history_after
    code, out, _ = run_cli(["snapshot", "--table", TABLE, "--status", "--lake", str(lake_dir),
                            "--output", "json"], capsys)
    (status,) = [json.loads(line) for line in out.splitlines()]
    assert status["stale"] is False and status["snapshot_at"] == iso_ms(mid)
    assert result.table == TABLE


def test_snapshot_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["snapshot", "--table", "T", "--at", "yesterday-ish",
                            "--lake", str(tmp_path)], capsys)
    assert code == 2 and "--at" in err
    code, _, err = run_cli(["snapshot", "--table", "T", "--at", "2999-01-01T00:00:00Z",
                            "--lake", str(tmp_path)], capsys)
    assert code == 2 and "future" in err


def test_a_snapshot_built_while_rows_are_buffered_is_never_read_wrong(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """capture's delivery buffer (60 s in follow mode) still holds 40 changes when
    `snapshot --at now` runs; after the flush every as-of is right, and the next build
    does not build on the snapshot that missed them."""
    lake_dir = tmp_path / "lake"
    lake = Lake.open(str(lake_dir))
    work = Workload()
    keys = [f"k{i:02d}" for i in range(20)]
    work.images.update(dict.fromkeys(keys))
    start = int(time.time()) - 120
    delivery = LocalDeliveryStream(lake, name=f"ddbtrail-{T}", fmt="parquet",
                                   buffer_seconds=60)

    def send(kind: str, offset: int, value: int) -> None:
        rows = [work.op(k, kind, start + offset, value + i, start + offset + 1)
                for i, k in enumerate(keys)]
        delivery.put_record_batch(DeliveryStreamName=f"ddbtrail-{T}",
                                  Records=[{"Data": row_bytes(r)} for r in rows])

    send("put", 0, 0)
    delivery.flush()
    send("update", 30, 100)
    send("update", 60, 200)
    assert delivery.pending_rows == 40
    lake_opt = ["--table", T, "--lake", str(lake_dir)]
    code, out, err = run_cli(["snapshot", *lake_opt, "--at", "now"], capsys)
    assert code == 0, err
    assert "settle window" in err
    (at,) = re.findall(r" at (\S+): 20 item\(s\)", out)
    delivery.flush()

    want = {k: int(image["v"]["N"]) for k, image in work.images.items() if image}
    assert len(want) == 20 and set(want.values()) == set(range(200, 220))
    at_ms = parse_timestamp(at, what="at")
    for instant in (at, iso_ms(at_ms + 1), "now"):
        code, out, err = run_cli(["as-of", *lake_opt, "--at", instant, "--output", "json",
                                  "--explain"], capsys)
        assert code == 0, err
        got = {item["pk"]: int(item["v"]) for item in map(json.loads, out.splitlines())}
        assert got == want, (instant, err)
        assert "ignored stale snapshot" in err
    code, out, _ = run_cli(["snapshot", *lake_opt, "--status", "--output", "json"], capsys)
    (status,) = [json.loads(line) for line in out.splitlines()]
    assert status["stale"] is True and status["late_changes"] == 40
    code, out, err = run_cli(["snapshot", *lake_opt, "--at", "now", "--settle", "0"], capsys)
    assert code == 0, err
    assert "from the whole history + 60 change(s)" in out
    now_ms = int(time.time() * 1000)
    assert lookups.table_as_of(lake, T, now_ms) == \
        lookups.table_as_of(lake, T, now_ms, use_snapshots=False)



def test_an_unreadable_snapshot_file_is_one_warning_and_as_of_falls_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.sql.test_snapshots import T0, write

    work = Workload()
    lake = write(tmp_path, [work.op("a", "put", T0, 1, T0),
                            work.op("b", "put", T0 + 50, 2, T0 + 50)], "part")
    lake_opt = ["--table", T, "--lake", str(tmp_path)]
    code, out, err = run_cli(["snapshot", *lake_opt, "--at", iso_ms((T0 + 100) * 1000)],
                             capsys)
    assert code == 0, err
    (path,) = [f.path for f in lake.snapshot_files(T)]
    Path(path).write_bytes(b"PAR1 truncated")
    code, out, err = run_cli(["as-of", *lake_opt, "--at", iso_ms((T0 + 200) * 1000),
                              "--output", "json", "--explain"], capsys)
    assert code == 0 and "Traceback" not in err
    assert sorted(json.loads(line)["pk"] for line in out.splitlines()) == ["a", "b"]
    assert f"snapshot file {path} cannot be read" in err
    assert "explain: snapshot: none" in err
    code, out, err = run_cli(["snapshot", *lake_opt, "--at", iso_ms((T0 + 100) * 1000)],
                             capsys)
    assert code == 0 and "from the whole history" in out
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        line for line in err.splitlines() if path in line]
    assert len(err.splitlines()) == 1
