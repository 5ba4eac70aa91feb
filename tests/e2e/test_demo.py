"""``ddbtrail demo``: a small run makes every kind of change, captures all of it, and tours it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from ddbtrail.cli._tour import pretty_plain, run_tour
from ddbtrail.core import codec
from ddbtrail.lake.files import Lake
from ddbtrail.local.demo import STAR_KEY, TABLE, run_demo

pytestmark = pytest.mark.e2e


def lake_rows(lake: Lake) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in lake.data_files(TABLE):
        rows += pq.read_table(f.path).to_pylist()
    return rows


def types_in(plain: Any, hints: dict[str, str], pointer: str, found: set[str]) -> None:
    hint = hints.get(pointer)
    if hint:
        found.add(hint)
    if isinstance(plain, dict):
        found.add("M")
        for k, v in plain.items():
            types_in(v, hints, f"{pointer}/{codec.pointer_token(k)}", found)
    elif isinstance(plain, list):
        if not hint:
            found.add("L")
            for i, v in enumerate(plain):
                types_in(v, hints, f"{pointer}/{i}", found)
    elif isinstance(plain, codec.JsonNumber):
        found.add("N")
    elif isinstance(plain, bool):
        found.add("BOOL")
    elif plain is None:
        found.add("NULL")
    elif not hint:
        found.add("S")


def test_demo_captures_every_change_and_prints_the_tour(tmp_path: Path) -> None:
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    before = DynamoDBStreamsHandler.get_records
    lake = Lake.open(str(tmp_path / "lake"))
    console = Console(record=True, width=200)
    result = run_tour(lake, changes=400, console=console, report=str(tmp_path / "r.html"))
    out = console.export_text()
    assert DynamoDBStreamsHandler.get_records is before  # moto is left as it was

    work = result.workload
    assert work.changes == 400
    assert min(work.inserts, work.updates, work.deletes, work.ttl_deletes, work.reinserts) > 0
    rows = lake_rows(lake)
    assert len(rows) == 400 == len({r["event_id"] for r in rows})
    by_action = {a: sum(1 for r in rows if r["action"] == a) for a in ("INSERT", "MODIFY",
                                                                      "REMOVE")}
    assert by_action == {"INSERT": work.inserts, "MODIFY": work.updates,
                         "REMOVE": work.deletes + work.ttl_deletes}
    ttl = [r for r in rows if r["ttl_delete"]]
    assert len(ttl) == work.ttl_deletes
    assert {r["user_identity"] for r in ttl} == {"dynamodb.amazonaws.com"}
    assert all(json.loads(r["old_image"])["status"] == "CART" for r in ttl)
    assert result.counts == {"INSERT": work.inserts, "MODIFY": work.updates,
                             "REMOVE (user)": work.deletes, "REMOVE (TTL)": work.ttl_deletes}

    # Every DynamoDB type reaches the lake, and 38-digit numbers keep every digit.
    found: set[str] = set()
    for r in rows:
        if r["new_image"]:
            types_in(codec.parse_plain(r["new_image"]), json.loads(r["type_hints"] or "{}"),
                     "/new_image", found)
    assert found >= {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"}
    assert any('"ledger_offset":110111111111111110000000000000000000000' in r["new_image"]
               for r in rows if r["new_image"])

    # The star item: insert, 3 updates, delete, re-insert, update -- and its past state.
    star = codec.item_key(STAR_KEY)
    history = sorted((r for r in rows if r["item_key"] == star),
                     key=lambda r: int(r["sequence_number"]))
    assert [r["action"] for r in history] == ["INSERT", "MODIFY", "MODIFY", "MODIFY", "REMOVE",
                                              "INSERT", "MODIFY"]
    assert result.as_of_ms == history[2]["timestamp"]
    assert "History of customer_id=C0001, order_id=1 (7 changes" in out
    assert '"status": "PACKED"' in out  # the state after the third change
    assert pretty_plain(history[2]["new_image"]) in out
    for kind in ("INSERT", "MODIFY", "REMOVE (user)", "REMOVE (TTL)"):
        assert kind in out
    assert "ddbtrail history --lake" in out
    assert "ddbtrail as-of --lake" in out
    assert Path(result.report or "").is_file()

    # Who changed this order: the demo's CloudTrail files name each step's principal.
    assert "Who changed this order" in out
    assert [(r["actor_match"], r["actor"].rsplit(":", 1)[-1]) for r in result.history] == [
        ("exact", p) for p in (
            "assumed-role/orders-service/i-0a1b2c3d4e", "assumed-role/orders-service/i-0a1b2c3d4e",
            "assumed-role/support-engineer/dana@example.com",
            "assumed-role/orders-service/i-0a1b2c3d4e", "user/admin",
            "assumed-role/orders-service/i-0a1b2c3d4e",
            "assumed-role/support-engineer/dana@example.com")]
    page = Path(result.report or "").read_text(encoding="utf-8")
    assert 'id="changes-by-principal"' in page and "user/admin" in page
    assert "Principals from CloudTrail data events" in page


def test_demo_cloudtrail_files_have_the_documented_shape(tmp_path: Path,
                                                         load_event: Any) -> None:
    import gzip

    from ddbtrail.local.demo import trail_root

    lake = Lake.open(str(tmp_path / "lake"))
    run_demo(lake, changes=60, fmt="jsonl")
    files = sorted(Path(trail_root(lake)).glob("AWSLogs/123456789012/CloudTrail/*/*/*/*/"
                                               "123456789012_CloudTrail_*.json.gz"))
    assert files
    documented = load_event("cloudtrail-dynamodb-log-entries.json")["Records"][1]
    records = [r for f in files for r in json.loads(gzip.decompress(f.read_bytes()))["Records"]]
    assert records and all(set(r) == set(documented) for r in records)
    assert {r["eventName"] for r in records} == {"BatchWriteItem"}
    assert len({r["userIdentity"]["arn"] for r in records}) == 3


def test_demo_replaces_its_previous_run(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    run_demo(lake, changes=60, fmt="jsonl")
    run_demo(lake, changes=50, fmt="jsonl", seed=3)
    files = lake.data_files(TABLE)
    assert files
    assert all(f.format == "jsonl" for f in files)
    lines = [x for f in files for x in Path(f.path).read_text().splitlines()]
    assert len(lines) == 50


def test_pretty_plain_keeps_numbers_exact() -> None:
    text = '{"a":1.5E-129,"b":[110111111111111110000000000000000000000,{"c":"x"}],"d":{}}'
    pretty = pretty_plain(text)
    assert "1.5E-129" in pretty
    assert "110111111111111110000000000000000000000" in pretty
    assert codec.parse_plain(pretty) == codec.parse_plain(text)


def test_demo_shows_progress_while_it_writes_and_captures(tmp_path: Path) -> None:
    import io

    from ddbtrail.capture.runner.esm import RunStats
    from ddbtrail.cli._tour import ConsoleSteps

    made: list[tuple[int, int]] = []
    captured: list[int] = []

    class Recording(ConsoleSteps):
        def writing(self, done: int, total: int) -> None:
            made.append((done, total))
            super().writing(done, total)

        def capturing(self, stats: RunStats) -> None:
            captured.append(stats.records)
            super().capturing(stats)

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    run_demo(Lake.open(str(tmp_path / "lake")), changes=300, fmt="jsonl",
             steps=Recording(console))
    assert len(made) > 5 and made[-1] == (300, 300)
    assert [d for d, _ in made] == sorted(d for d, _ in made)
    assert captured and captured[-1] >= 300 and captured == sorted(captured)
    shown = screen.getvalue()
    assert "making changes: " in shown and "of 300" in shown
    assert "capturing the stream: " in shown
