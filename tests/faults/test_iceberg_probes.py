"""A hostile user's Iceberg probes (issue 29): every failure is one stderr line naming the
file, exit 1, no traceback; a read never writes a catalog; a lake never touches files
outside its root."""

from __future__ import annotations

import datetime as dt_mod
import hashlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ddbtrail.core.exceptions import NotADdbtrailCatalog, OutsideLakeRoot
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake import iceberg
from ddbtrail.lake.files import Lake
from ddbtrail.lake.iceberg import IcebergLake, catalog_path
from tests.cli import run_cli
from tests.integration.test_iceberg import _deliver, _iceberg_lake, _workload

COMMANDS = (
    ["history", "-t", "Orders", "-k", "pk=1"],
    ["as-of", "-t", "Orders", "--at", "now"],
    ["compact"],
)


def _lake(tmp_path: Path) -> Lake:
    return _iceberg_lake(tmp_path, _workload(flushes=3))


def _metadata_dir(lake: Lake) -> Path:
    return Path(lake.root, "ddbtrail", "changes", "metadata")


def _assert_one_line(capsys: pytest.CaptureFixture[str], lake: Lake, *needles: str) -> None:
    """Every probed command exits 1 with one stderr line holding every needle."""
    for argv in COMMANDS:
        code, _, err = run_cli([*argv, "--lake", lake.uri], capsys)
        assert code == 1, (argv, err)
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1, (argv, err)
        for needle in needles:
            assert needle in lines[0], (argv, needle, lines[0])


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(20_000))


def _truncated(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3)


@pytest.mark.parametrize(("damage", "says"), [
    (_random_bytes, "not an SQLite database"),
    (_truncated, "restore it from a backup"),
])
def test_a_corrupt_catalog_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        damage: Callable[[Path], None], says: str) -> None:
    lake = _lake(tmp_path)
    damage(Path(catalog_path(lake)))
    _assert_one_line(capsys, lake, catalog_path(lake), says)


def test_an_empty_catalog_is_not_a_ddbtrail_catalog_and_is_never_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    path = Path(catalog_path(lake))
    path.write_bytes(b"")
    _assert_one_line(capsys, lake, str(path), "not a ddbtrail catalog", "0 bytes")
    assert path.stat().st_size == 0
    # Nor does a writer start a new table over the existing table's files.
    with pytest.raises(NotADdbtrailCatalog, match="holds table files"):
        IcebergLake(lake, create=True)
    assert path.stat().st_size == 0


def test_a_foreign_sqlite_file_is_named_and_left_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    path = Path(catalog_path(lake))
    path.unlink()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    _assert_one_line(capsys, lake, str(path), "not a ddbtrail catalog")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_locked_catalog_is_waited_for_then_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    lake = _lake(tmp_path)
    monkeypatch.setattr(iceberg, "LOCK_WAIT_SECONDS", 0.3)
    holder = sqlite3.connect(catalog_path(lake), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        _assert_one_line(capsys, lake, catalog_path(lake), "locked by another process")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_lock_released_within_the_wait_is_retried_to_success(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    lake = _lake(tmp_path)
    monkeypatch.setattr(iceberg, "LOCK_WAIT_SECONDS", 60.0)
    holder = sqlite3.connect(catalog_path(lake), isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")

    def release() -> None:
        time.sleep(1.5)  # longer than one SQLite busy wait, so the backoff retries
        holder.execute("ROLLBACK")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    try:
        code, out, err = run_cli(["history", "-t", "Orders", "-k", "pk=1",
                                  "--lake", lake.uri], capsys)
    finally:
        thread.join()
    assert (code, err) == (0, "")
    assert '{"pk":1}' in out


def test_a_missing_current_metadata_file_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    current = IcebergLake(lake).metadata_file()
    assert current is not None
    Path(current).unlink()
    _assert_one_line(capsys, lake, current, "missing")


def test_a_corrupt_current_metadata_file_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    current = IcebergLake(lake).metadata_file()
    assert current is not None
    Path(current).write_text('{"format-version": 2, "table-uuid": ')
    _assert_one_line(capsys, lake, current, "unreadable")


def test_a_missing_manifest_list_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    table = IcebergLake(lake).table()
    manifest_list = iceberg.file_path(lake, table.current_snapshot().manifest_list)
    Path(manifest_list).unlink()
    _assert_one_line(capsys, lake, manifest_list, "missing")


def test_a_missing_data_file_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    gone = IcebergLake(lake).plan()[0].file.path
    Path(gone).unlink()
    _assert_one_line(capsys, lake, gone, "missing")


def _old_orphan(lake: Lake) -> Path:
    """An unreferenced data file two days old: what --remove-orphans 1 deletes."""
    data = Path(lake.root, "ddbtrail", "changes", "data", "table_name=Orders",
                "dt=2025-03-01")
    orphan = data / "00000-9-orphan.parquet"
    shutil.copyfile(next(data.glob("*.parquet")), orphan)
    two_days_ago = time.time() - 2 * 86_400
    os.utime(orphan, (two_days_ago, two_days_ago))
    return orphan


def test_compacting_a_copied_lake_never_touches_the_original(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    orphan = _old_orphan(lake)
    copy = tmp_path / "copy"
    shutil.copytree(lake.root, copy, symlinks=True)  # cp -a
    original_files = sorted(p for p in Path(lake.root).rglob("*") if p.is_file())

    code, _, err = run_cli(["compact", "--lake", str(copy), "--remove-orphans", "1"], capsys)
    assert code == 1 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert f"registered at {lake.root}/ddbtrail/changes" in line
    assert f"ddbtrail compact --lake {copy} --register-here" in line
    assert orphan.exists()
    assert sorted(p for p in Path(lake.root).rglob("*") if p.is_file()) == original_files
    _assert_one_line(capsys, Lake.open(str(copy)), "registered at", "copied or moved")

    # Registered again where it is, the copy reads its own files and compacts its own
    # orphans; the original is left exactly as it was.
    code, out, err = run_cli(["compact", "--lake", str(copy), "--register-here",
                              "--remove-orphans", "1"], capsys)
    assert code == 0, err
    assert "registered the Iceberg table again" in out
    assert not (copy / orphan.relative_to(lake.root)).exists()
    assert orphan.exists()
    assert sorted(p for p in Path(lake.root).rglob("*") if p.is_file()) == original_files
    history = ["history", "-t", "Orders", "-k", "pk=1", "-o", "json"]
    code, copied, err = run_cli([*history, "--lake", str(copy)], capsys)
    assert code == 0, err
    assert all(str(copy) in p.file.path for p in IcebergLake(Lake.open(str(copy))).plan())
    assert run_cli([*history, "--lake", lake.uri], capsys)[1] == copied

    # The original itself still reads and compacts; its own orphan goes.
    code, _, err = run_cli(["compact", "--lake", lake.uri, "--remove-orphans", "1"], capsys)
    assert code == 0, err
    assert not orphan.exists()


def test_a_moved_lake_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    moved = tmp_path / "moved"
    before = run_cli(["history", "-t", "Orders", "-k", "pk=2", "-o", "json",
                      "--lake", lake.uri], capsys)[1]
    os.rename(lake.root, moved)
    _assert_one_line(capsys, Lake.open(str(moved)), f"registered at {lake.root}",
                     "move it back", "--register-here")
    code, _, err = run_cli(["compact", "--lake", str(moved), "--register-here"], capsys)
    assert code == 0, err
    assert run_cli(["history", "-t", "Orders", "-k", "pk=2", "-o", "json",
                    "--lake", str(moved)], capsys) == (0, before, "")


def test_orphan_removal_refuses_a_data_folder_outside_the_root(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    data = Path(lake.root, "ddbtrail", "changes", "data")
    elsewhere = tmp_path / "elsewhere"
    shutil.move(data, elsewhere)
    data.symlink_to(elsewhere, target_is_directory=True)
    orphan = _old_orphan(lake)
    with pytest.raises(OutsideLakeRoot, match="outside the lake's root"):
        IcebergLake(lake).remove_orphans(dt_mod.datetime.now(dt_mod.UTC))
    assert orphan.exists()


def test_a_hundred_flushes_leave_no_orphan_metadata(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    stream = LocalDeliveryStream(lake, fmt="iceberg")
    for batch in _workload(days=("2025-03-01",), flushes=100, per_flush=2):
        _deliver(stream, batch)
        stream.flush()
    stream.close()
    ice = IcebergLake(lake)
    table = ice.table()
    # Snapshots past the cap expired, with the manifest lists and manifests only they used.
    assert len(ice.snapshots()) <= iceberg.MAX_SNAPSHOTS
    previous = {iceberg.file_path(lake, e.metadata_file) for e in table.metadata.metadata_log}
    on_disk = {str(p) for p in _metadata_dir(lake).iterdir()}
    assert on_disk == ice.referenced_metadata() | previous
    # Only the newest metadata.json files stay (write.metadata.previous-versions-max).
    kept = int(iceberg.TABLE_PROPERTIES["write.metadata.previous-versions-max"]) + 1
    assert len([p for p in on_disk if p.endswith(".metadata.json")]) == kept


def test_a_writer_never_starts_a_new_table_over_existing_table_files(tmp_path: Path) -> None:
    from ddbtrail.core.exceptions import DeliveryFailed

    batches = _workload(flushes=2)
    lake = _iceberg_lake(tmp_path, batches[:1])
    files = sorted(p for p in Path(lake.root, "ddbtrail").rglob("*") if p.is_file())
    Path(catalog_path(lake)).unlink()
    stream = LocalDeliveryStream(lake, fmt="iceberg")
    _deliver(stream, batches[1])
    with pytest.raises(DeliveryFailed, match=r"catalog\.db is missing, though"):
        stream.flush()
    assert stream.pending_rows == len(batches[1])
    assert not Path(catalog_path(lake)).exists()
    assert sorted(p for p in Path(lake.root, "ddbtrail").rglob("*") if p.is_file()) == files
