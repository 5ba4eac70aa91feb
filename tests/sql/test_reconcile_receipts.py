"""reconcile_receipts and its detail on DuckDB: received changes against the lake's rows,
per table and day, counted once per event_id. Figures are checked against a count made
here from the same inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ddbtrail.core.timefmt import parse_timestamp
from ddbtrail.evidence.receipts import LakeReceipts, ReceiptChange, write_receipts
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved
from tests.sql.conftest import write_lake

WINDOW = {"table_name": "*", "from": "2024-05-01T00:00:00Z", "to": "2024-05-03T00:00:00Z"}


def row(table: str, n: int, ingested: str, **extra: Any) -> dict[str, Any]:
    return {"table_name": table, "event_id": f"{table}-e{n}",
            "sequence_number": str(9 * 10**20 + n), "action": "INSERT",
            "item_key": f'{{"id":{n}}}', "event_time": ingested, "ingested_at": ingested,
            **extra}


def change(r: dict[str, Any]) -> ReceiptChange:
    return ReceiptChange(r["table_name"], r["event_time"][:10], r["event_id"], r["item_key"],
                         r["action"], r["sequence_number"])


Case = tuple[Lake, list[dict[str, Any]], list[tuple[str, list[Any]]]]


def build_case(root: Path) -> Case:
    """A lake of two tables with receipts: one change received but never delivered, one row
    no receipt names, a redelivered copy, a receipt written after midnight for a row of the
    day before, and a row outside the window."""
    day1 = [row("Orders", n, f"2024-05-01T1{n % 10}:00:00.000Z") for n in range(10)]
    late = row("Orders", 10, "2024-05-01T23:59:58.000Z")  # its receipt is written after midnight
    dup = dict(day1[3], _file="redelivery", ingested_at="2024-05-01T15:00:00.000Z")
    lost = row("Orders", 11, "2024-05-02T08:00:00.000Z")  # received, never delivered
    forged = row("Orders", 12, "2024-05-02T09:00:00.000Z")  # in the lake, no receipt
    other = [row("Customers", n, "2024-05-02T10:00:00.000Z") for n in range(3)]
    outside = row("Customers", 9, "2024-04-20T10:00:00.000Z")  # before the window, no receipt
    stored = [*day1, late, dup, forged, *other, outside]
    lake = write_lake(root, stored)
    receipts = [
        ("2024-05-01T12:00:00.000Z", [change(r) for r in day1]),
        ("2024-05-01T15:00:01.000Z", [change(day1[3])]),  # the redelivered copy's receipt
        ("2024-05-02T00:00:05.000Z", [change(late)]),
        ("2024-05-02T08:00:01.000Z", [change(lost)]),
        ("2024-05-02T10:00:01.000Z", [change(r) for r in other]),
    ]
    store = LakeReceipts(lake)
    for when, changes in receipts:
        write_receipts(store, changes, source="capture", received_ms=parse_timestamp(when))
    return lake, stored, receipts


@pytest.fixture
def case(tmp_path: Path) -> Case:
    return build_case(tmp_path)


def expected(stored: list[dict[str, Any]],
             receipts: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """The figures, counted here: first receipt and first ingestion per event_id."""
    received: dict[tuple[str, str], str] = {}
    for when, changes in receipts:
        for c in changes:
            key = (c.table_name, c.event_id)
            received[key] = min(received.get(key, when), when)
    ingested: dict[tuple[str, str], str] = {}
    for r in stored:
        key = (r["table_name"], r["event_id"])
        ingested[key] = min(ingested.get(key, r["ingested_at"]), r["ingested_at"])
    lo, hi = WINDOW["from"][:10], WINDOW["to"][:10]
    days: dict[tuple[str, str], dict[str, int]] = {}

    def bump(table: str, day: str, column: str) -> None:
        figures = days.setdefault((table, day), dict.fromkeys(
            ("received", "in_lake", "received_not_in_lake", "in_lake_without_receipt"), 0))
        figures[column] += 1

    for (table, event), when in received.items():
        if lo <= when[:10] < hi:
            bump(table, when[:10], "received")
            if (table, event) not in ingested:
                bump(table, when[:10], "received_not_in_lake")
    for (table, event), when in ingested.items():
        if lo <= when[:10] < hi:
            bump(table, when[:10], "in_lake")
            if (table, event) not in received:
                bump(table, when[:10], "in_lake_without_receipt")
    return [{"table_name": t, "day": d, **f} for (t, d), f in sorted(days.items())]


def test_figures_per_table_and_day_match_a_count_of_the_inputs(case: Any) -> None:
    lake, stored, receipts = case
    got = saved.rows(saved.run("reconcile_receipts", WINDOW, lake=lake))
    assert got == expected(stored, receipts)
    # The case holds one gap of each kind, on 2024-05-02, and nothing else.
    gaps = [(r["table_name"], r["day"], r["received_not_in_lake"], r["in_lake_without_receipt"])
            for r in got if r["received_not_in_lake"] or r["in_lake_without_receipt"]]
    assert gaps == [("Orders", "2024-05-02", 1, 1)]


def test_detail_names_each_missing_change_by_table_key_and_event_id(case: Any) -> None:
    lake, _, _ = case
    got = saved.rows(saved.run("reconcile_receipts_detail", WINDOW, lake=lake))
    assert [(r["table_name"], r["problem"], r["event_id"], r["item_key"]) for r in got] == [
        ("Orders", "in_lake_without_receipt", "Orders-e12", '{"id":12}'),
        ("Orders", "received_not_in_lake", "Orders-e11", '{"id":11}'),
    ]


def test_one_table_only(case: Any) -> None:
    lake, _, _ = case
    got = saved.rows(saved.run("reconcile_receipts", {**WINDOW, "table_name": "Customers"},
                               lake=lake))
    assert got == [{"table_name": "Customers", "day": "2024-05-02", "received": 3,
                    "in_lake": 3, "received_not_in_lake": 0, "in_lake_without_receipt": 0}]
