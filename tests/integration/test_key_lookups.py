"""Key lookups through cached footers (lake.footers) on key-range compacted files.

What users rely on: a lookup returns exactly the item's changes whatever the layout (raw
Firehose files, compacted key-range files, both, old files lacking a column), sees a file
that changed since the last lookup, names an unreadable file, and on a compacted lake
reads a small part of it.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from bench.iostat import CountingFS
from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.row import arrow_schema
from ddbtrail.lake import footers
from ddbtrail.lake.compact import CompactOptions, compact
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups
from tests.integration.test_compact import TABLE, TODAY, _parquet, _row

DAYS = ("2025-03-01", "2025-03-02", "2025-03-03")


def _lake(tmp_path: Path, *, items: int = 300, per_day: int = 4,
          pad: int = 0) -> tuple[Lake, list[dict[str, Any]]]:
    """Three days of Firehose-like files: keys interleaved, ``per_day`` files a day;
    ``pad`` random bytes (as hex) of filler in each new image."""
    lake = Lake.open(str(tmp_path / "lake"))
    rows: list[dict[str, Any]] = []
    seq = 0
    for d in DAYS:
        day = []
        for n in range(items * 2):
            seq += 1
            # Keys 0..items-1; every third key skips the middle day, so some key-range
            # brackets hold keys that are absent.
            pk = (n * 7919) % items
            if d == DAYS[1] and pk % 3 == 0:
                continue
            row = _row(f"e{seq}", pk, seq, d, "INSERT" if seq <= items else "MODIFY")
            if pad:
                filler = random.Random(seq).randbytes(pad).hex()  # incompressible
                row["new_image"] = json.dumps({"pk": pk, "v": seq, "pad": filler})
            day.append(row)
        rows += day
        for i in range(per_day):
            lake.write_atomic(f"{lake.partition(TABLE, d)}/firehose-{i:03d}.parquet",
                              _parquet(day[i::per_day]))
    return lake, rows


def _expected(rows: list[dict[str, Any]], pk: int) -> list[str]:
    key = json.dumps({"pk": pk}, separators=(",", ":"))
    return [r["event_id"] for r in sorted(
        (r for r in rows if r["item_key"] == key), key=lambda r: int(r["sequence_number"]))]


def _history_ids(lake: Lake, pk: int) -> list[str]:
    key = json.dumps({"pk": pk}, separators=(",", ":"))
    return [r["event_id"] for r in lookups.item_history(lake, TABLE, key)]


def test_compaction_writes_disjoint_key_ranges_each_with_its_own_row_groups(
        tmp_path: Path) -> None:
    lake, rows = _lake(tmp_path)
    compact(lake, before=TODAY, options=CompactOptions(file_rows=120, row_group_rows=16))
    for d in DAYS:
        files = sorted(f.path for f in lake.data_files(TABLE, d, d))
        assert len(files) > 1
        ranges = []
        for path in files:
            keys = pq.read_table(path, columns=["item_key"]).column(0).to_pylist()
            assert keys == sorted(keys)
            assert pq.ParquetFile(path).metadata.num_row_groups == -(-len(keys) // 16)
            ranges.append((keys[0], keys[-1]))
        # Files follow each other in key order: one key is in one file only (its rows
        # are contiguous), except where a key's changes straddle a cut.
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
    total = ds.dataset(lake.root, format="parquet").count_rows()
    assert total == len(rows)


@pytest.mark.parametrize("layout", ["raw", "compacted", "compacted plus a late raw file"])
def test_a_lookup_returns_exactly_the_items_changes_on_every_layout(
        tmp_path: Path, layout: str) -> None:
    lake, rows = _lake(tmp_path)
    if layout != "raw":
        compact(lake, before=TODAY, options=CompactOptions(file_rows=100, row_group_rows=8))
    if layout == "compacted plus a late raw file":
        late = [_row("late1", 5, 10_000, DAYS[0]), _row("late2", 3, 10_001, DAYS[1])]
        lake.write_atomic(f"{lake.partition(TABLE, DAYS[0])}/late.parquet", _parquet(late))
        rows += late
    for pk in (0, 3, 5, 150, 299, 1000):
        assert _history_ids(lake, pk) == _expected(rows, pk), pk


def test_item_as_of_through_footers_matches_the_history(tmp_path: Path) -> None:
    lake, _ = _lake(tmp_path)
    compact(lake, before=TODAY, options=CompactOptions(file_rows=100, row_group_rows=8))
    key = json.dumps({"pk": 3}, separators=(",", ":"))
    history = lookups.item_history(lake, TABLE, key)
    middle = history[len(history) // 2]
    found = lookups.item_as_of(lake, TABLE, key, middle["timestamp"], use_snapshots=False)
    assert found is not None
    assert found["last_sequence_number"] == middle["sequence_number"]


def test_a_compacted_lookup_reads_a_small_part_of_the_lake(tmp_path: Path) -> None:
    # Files of ~1 MB: a footer read fetches the file's last 64 KB at least.
    lake, rows = _lake(tmp_path, items=2_000, per_day=8, pad=100)
    compact(lake, before=TODAY, options=CompactOptions(file_rows=800, row_group_rows=50))
    whole = sum(f.size for f in lake.data_files(TABLE))
    counting = CountingFS(lake.fs)
    counted = Lake(lake.uri, counting.fs, lake.root)
    footers.clear()
    assert _history_ids(counted, 77) == _expected(rows, 77)
    first = counting.bytes_read
    assert 0 < first < whole * 0.35, (first, whole)
    # Warm: footers come from the cache, so only the key's row groups are read.
    counting.reset()
    assert _history_ids(counted, 78) == _expected(rows, 78)
    assert 0 < counting.bytes_read < first / 3, (counting.bytes_read, first)
    footers.clear()


def test_a_file_replaced_since_the_last_lookup_is_read_again(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    path = f"{lake.partition(TABLE, DAYS[0])}/firehose-000.parquet"
    lake.write_atomic(path, _parquet([_row("a1", 1, 1, DAYS[0], "INSERT")]))
    assert _history_ids(lake, 1) == ["a1"]
    # Same path, new content (a size change): the cached footer must not be used.
    lake.write_atomic(path, _parquet([_row("a1", 1, 1, DAYS[0], "INSERT"),
                                      _row("a2", 1, 2, DAYS[0])]))
    assert _history_ids(lake, 1) == ["a1", "a2"]


def test_an_old_file_without_a_newer_column_reads_it_as_null(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    schema = arrow_schema(include_partitions=False)
    old_schema = pa.schema([f for f in schema if f.name != "snapshot_id"])
    row = _row("o1", 9, 1, DAYS[0], "INSERT")
    del row["snapshot_id"]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([row], schema=old_schema), sink)
    lake.write_atomic(f"{lake.partition(TABLE, DAYS[0])}/old.parquet",
                      bytes(sink.getvalue().to_pybytes()))
    found = footers.read_item(lake.fs, [footers.ParquetFile(
        f.path, f.size, f.mtime_ms, (("table_name", TABLE), ("dt", DAYS[0])))
        for f in lake.data_files(TABLE)], row["item_key"], arrow_schema())
    assert found.num_rows == 1
    assert found.column("snapshot_id").to_pylist() == [None]
    assert found.column("dt").to_pylist() == [DAYS[0]]


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    lake, _ = _lake(tmp_path)
    bad = f"{lake.partition(TABLE, DAYS[1])}/firehose-001.parquet"
    Path(bad).write_bytes(b"PAR1 not really parquet")
    with pytest.raises(LakeError, match=r"firehose-001\.parquet"):
        lookups.item_history(lake, TABLE, json.dumps({"pk": 1}))


def test_lookups_in_threads_on_two_lakes_do_not_see_each_other(tmp_path: Path) -> None:
    a, rows_a = _lake(tmp_path / "a")
    b = Lake.open(str(tmp_path / "b"))
    b.write_atomic(f"{b.partition(TABLE, DAYS[0])}/only.parquet",
                   _parquet([_row("b1", 4, 1, DAYS[0], "INSERT")]))
    compact(a, before=TODAY, options=CompactOptions(file_rows=100, row_group_rows=8))
    errors: list[str] = []

    def run(lake: Lake, expected: list[str]) -> None:
        for _ in range(20):
            got = _history_ids(lake, 4)
            if got != expected:
                errors.append(f"{lake.uri}: {got[:3]}")

    threads = [threading.Thread(target=run, args=(a, _expected(rows_a, 4))),
               threading.Thread(target=run, args=(b, ["b1"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _as_of_lake(tmp_path: Path) -> tuple[Lake, list[dict[str, Any]]]:
    """A key-sorted lake where key 0 is hot, with what an as-of must rank right: ties (two
    changes in one millisecond, in different row groups), duplicate deliveries, REMOVEs,
    a late raw file after compaction and a file written without statistics."""
    lake = Lake.open(str(tmp_path / "lake"))
    rows: list[dict[str, Any]] = []
    seq = 0
    last: dict[int, int] = {}
    for d in DAYS:
        day = []
        for n in range(240):
            seq += 1
            pk = 0 if n % 2 else n % 13
            action = "REMOVE" if n % 29 == 5 else "MODIFY"
            row = _row(f"e{seq}", pk, seq, d, action)
            if n % 3 == 1 and pk in last:
                row["timestamp"] = last[pk]  # the item's change before, same millisecond
            last[pk] = row["timestamp"]
            day.append(row)
        day += [dict(r) for r in day[::31]]  # delivered twice
        rows += day
        for i in range(3):
            lake.write_atomic(f"{lake.partition(TABLE, d)}/firehose-{i:03d}.parquet",
                              _parquet(day[i::3]))
    compact(lake, before=TODAY, options=CompactOptions(file_rows=60, row_group_rows=8))
    late = [_row("late1", 0, seq + 1, DAYS[0]), _row("late2", 4, seq + 2, DAYS[1], "REMOVE")]
    late[0]["timestamp"] = rows[100]["timestamp"]
    lake.write_atomic(f"{lake.partition(TABLE, DAYS[0])}/late.parquet", _parquet(late))
    sink = pa.BufferOutputStream()
    blind = [_row("blind1", 0, seq + 3, DAYS[2]), _row("blind2", 7, seq + 4, DAYS[2])]
    pq.write_table(pa.Table.from_pylist(blind, schema=arrow_schema(include_partitions=False)),
                   sink, write_statistics=False)
    lake.write_atomic(f"{lake.partition(TABLE, DAYS[2])}/blind.parquet",
                      bytes(sink.getvalue().to_pybytes()))
    return lake, rows + late + blind


def test_item_as_of_reading_only_the_latest_row_groups_answers_as_the_whole_table(
        tmp_path: Path) -> None:
    lake, rows = _as_of_lake(tmp_path)
    keys = [json.dumps({"pk": pk}, separators=(",", ":")) for pk in (0, 3, 4, 7, 12, 99)]

    def latest(key: str, at: int) -> str | None:
        # Timestamp first, then the sequence number as a number; a REMOVE leaves nothing.
        mine = [r for r in rows if r["item_key"] == key and r["timestamp"] <= at]
        top = max(mine, key=lambda r: (r["timestamp"], int(r["sequence_number"])),
                  default=None)
        return None if top is None or top["action"] == "REMOVE" else top["sequence_number"]

    # Every millisecond the hot key changed twice in, with ties across row groups.
    ties = sorted({r["timestamp"] for r in rows if r["item_key"] == keys[0]
                   and sum(o["timestamp"] == r["timestamp"] and o["item_key"] == keys[0]
                           for o in rows) > 1})
    assert len(ties) > 50
    for at in ties:
        found = lookups.item_as_of(lake, TABLE, keys[0], at, use_snapshots=False)
        assert (found and found["last_sequence_number"]) == latest(keys[0], at), at
    # The whole table's as-of reads every file (no key given): whole rows must agree.
    stamps = sorted({r["timestamp"] for r in rows})
    for at in (stamps[0] - 1, *stamps[::83], *(s - 1 for s in stamps[5::97]), stamps[-1] + 1):
        whole = {r["item_key"]: r for r in lookups.table_as_of(lake, TABLE, at,
                                                                use_snapshots=False)}
        for key in keys:
            found = lookups.item_as_of(lake, TABLE, key, at, use_snapshots=False)
            assert found == whole.get(key), (key, at)
            assert (found and found["last_sequence_number"]) == latest(key, at), (key, at)


def test_a_hot_keys_as_of_reads_a_small_part_of_its_history(tmp_path: Path) -> None:
    lake, rows = _as_of_lake(tmp_path)
    key = json.dumps({"pk": 0}, separators=(",", ":"))
    counting = CountingFS(lake.fs)
    counted = Lake(lake.uri, counting.fs, lake.root)
    lookups.item_history(counted, TABLE, key)  # footers cached: only row groups count next
    counting.reset()
    assert len(lookups.item_history(counted, TABLE, key)) > 300
    history = counting.bytes_read
    counting.reset()
    # (What it answers is the test above's.)
    lookups.item_as_of(counted, TABLE, key, sorted(r["timestamp"] for r in rows)[len(rows) // 2],
                       use_snapshots=False)
    assert 0 < counting.bytes_read < history / 5, (counting.bytes_read, history)
    footers.clear()
