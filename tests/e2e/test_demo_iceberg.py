"""``ddbtrail demo --format iceberg``: the table any Iceberg reader opens holds what as-of shows."""

from __future__ import annotations

import datetime as dt_mod
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from tests.cli import run_cli

pytestmark = pytest.mark.e2e

TABLE = "demo_orders"


def _state(rows: list[dict[str, Any]], at_ms: int) -> list[str]:
    """The live items at ``at_ms`` rebuilt from raw rows: each key's latest change."""
    latest: dict[str, dict[str, Any]] = {}
    for r in {r["event_id"]: r for r in rows}.values():
        if r["timestamp"] > at_ms:
            continue
        rank = (r["timestamp"], len(r["sequence_number"]), r["sequence_number"])
        held = latest.get(r["item_key"])
        if held is None or rank > (held["timestamp"], len(held["sequence_number"]),
                                   held["sequence_number"]):
            latest[r["item_key"]] = r
    return sorted(r["new_image"] for r in latest.values() if r["action"] != "REMOVE")


def test_demo_iceberg_table_rebuilds_the_as_of_state(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = tmp_path / "L"
    code, out, err = run_cli(["demo", "--format", "iceberg", "--lake", str(lake),
                              "--changes", "300", "--report", ""], capsys)
    assert code == 0, err
    assert "Snapshots of the Iceberg table ddbtrail.changes" in out

    catalog = SqlCatalog("ddbtrail", uri=f"sqlite:///{lake}/_ddbtrail/iceberg/catalog.db",
                         warehouse=f"file://{lake}")
    table = catalog.load_table("ddbtrail.changes")
    assert [f.name for f in table.spec().fields] == ["table_name", "dt"]
    rows = table.scan().to_arrow().to_pylist()
    assert len({r["event_id"] for r in rows}) == 300
    assert {r["table_name"] for r in rows} == {TABLE}

    at = dt_mod.datetime.now(dt_mod.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    at_ms = int(dt_mod.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)
    code, out, err = run_cli(["as-of", "--lake", str(lake), "--table", TABLE, "--at", at,
                              "--output", "json"], capsys)
    assert code == 0, err
    printed = sorted(line for line in out.splitlines() if line)
    assert printed and printed == _state(rows, at_ms)

    # A second demo run replaces the table's rows in one commit, keeping the history.
    code, _, err = run_cli(["demo", "--format", "iceberg", "--lake", str(lake),
                            "--changes", "50", "--report", ""], capsys)
    assert code == 0, err
    table = catalog.load_table("ddbtrail.changes")
    assert len(table.scan().to_arrow()) == 50
    assert [s.summary.operation.value for s in table.snapshots()][-2:] == ["delete", "append"]
