"""A key lookup reads only its own table's partitions.

Every file outside the looked-up table is corrupt: reading any of them fails the query,
so a lookup that succeeds has not opened them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.core.exceptions import LakeError
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups
from ddbtrail.query import saved as queries
from ddbtrail.query.duck import connect

DAYS = [f"2024-03-{d:02d}" for d in range(1, 11)]
OTHER_TABLES = ["Carts", "Users"]


def _lake(tmp_path: Path, write_lake: Callable[..., Lake]) -> Lake:
    rows = []
    for i, day in enumerate(DAYS):
        rows.append({"table_name": "Orders", "event_id": f"o{i}",
                     "sequence_number": str(1000 + i), "action": "INSERT" if i == 0 else "MODIFY",
                     "item_key": '{"id":1}', "event_time": f"{day}T12:00:00.000Z",
                     "new_image": f'{{"id":1,"v":{i}}}',
                     "_format": ["parquet", "jsonl", "jsonl.gz"][i % 3]})
    lake = write_lake(tmp_path, rows)
    for table in OTHER_TABLES:
        for day in DAYS:
            folder = tmp_path / f"table_name={table}" / f"dt={day}"
            folder.mkdir(parents=True)
            (folder / "bad.parquet").write_bytes(b"not parquet at all")
            (folder / "bad.jsonl").write_bytes(b"{not json\n")
    return lake


def test_the_corrupt_partitions_would_fail_a_full_scan(tmp_path: Path, lake_writer: Any) -> None:
    lake = _lake(tmp_path, lake_writer)
    con = connect(lake)
    try:
        with pytest.raises(LakeError):
            queries.run_duckdb(queries.load("view_changes_dedup"), {}, con)
    finally:
        con.close()


def test_filter_pushdown_prunes_other_tables_on_a_whole_lake_view(
        tmp_path: Path, lake_writer: Any) -> None:
    lake = _lake(tmp_path, lake_writer)
    con = connect(lake)  # every file of the lake is behind the view
    try:
        history = queries.run_duckdb(queries.load("item_history"),
                                     {"table_name": "Orders", "item_key": '{"id":1}'}, con)
    finally:
        con.close()
    assert history.column("event_id").to_pylist() == [f"o{i}" for i in range(len(DAYS))]


def test_as_of_prunes_later_days_of_the_same_table(tmp_path: Path, lake_writer: Any) -> None:
    lake = _lake(tmp_path, lake_writer)
    # Corrupt the Orders days after the instant: the dt predicate must skip them.
    for day in DAYS[5:]:
        (tmp_path / "table_name=Orders" / f"dt={day}" / "late.parquet").write_bytes(b"junk")
    con = connect(lake)
    try:
        found = queries.run_duckdb(
            queries.load("item_as_of"),
            {"table_name": "Orders", "item_key": '{"id":1}', "at": f"{DAYS[4]}T23:59:59Z"},
            con).to_pylist()
    finally:
        con.close()
    assert [r["item"] for r in found] == ['{"id":1,"v":4}']


def test_lookups_list_only_the_table_they_read(tmp_path: Path, lake_writer: Any) -> None:
    lake = _lake(tmp_path, lake_writer)
    assert [r["event_id"] for r in lookups.item_history(lake, "Orders", '{"id":1}')][-1] == "o9"
    assert lake.data_files("Orders")
    assert all(
        f.table_name == "Orders" for f in lake.data_files("Orders"))
