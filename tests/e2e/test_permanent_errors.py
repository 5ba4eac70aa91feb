"""AWS errors that retrying cannot fix stop a job at once, in one line naming the
resource and the fix (issue 15, point 4), on moto's server."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.cli import run_cli
from tests.e2e.jobs_workload import create_table, workload

pytestmark = pytest.mark.e2e


def _one_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_replicate_into_a_missing_table_stops_at_once(
        moto_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    source = create_table(ddb)
    workload(ddb, source, random.Random(3), 20)
    # Two retries would already show as warnings (and take seconds); none may happen.
    code, out, err = run_cli(
        ["replicate", "--from-table", source, "--to-table", "no-such-table", "--once",
         "--max-retries", "2", "--endpoint-url", moto_server.endpoint_url,
         "--region", moto_server.region, "--lake", str(tmp_path / "lake")], capsys)
    assert code == 1
    assert out == ""
    line = _one_line(err)
    assert "retry" not in err
    assert line.startswith("error: replicate into table no-such-table: "
                           "ResourceNotFoundException: ")
    assert line.endswith("table no-such-table does not exist: create it, or check the name, "
                         "--region and --endpoint-url")
    # Nothing went to the on-failure file: the records are read again after the fix.
    assert not list((tmp_path / "lake").rglob("failures/*"))


def test_copy_to_a_missing_queue_stops_at_once(
        moto_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    source = create_table(ddb, stream=None)
    ddb.put_item(TableName=source, Item={"pk": {"S": "a"}, "sk": {"N": "1"}})
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"pk": "a", "sk": 1}) + "\n")
    queue = f"{moto_server.endpoint_url}/123456789012/no-such-queue"
    code, _, err = run_cli(["copy", "--from-table", source, "--keys-file", str(keys),
                            "--queue-url", queue, "--endpoint-url", moto_server.endpoint_url,
                            "--region", moto_server.region], capsys)
    assert code == 1
    line = _one_line(err)
    assert f"queue {queue} does not exist: create it" in line


def test_backfill_of_a_missing_table_names_it(
        moto_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["backfill", "--table", "no-such-table", "--lake",
                            str(tmp_path / "lake"), "--endpoint-url", moto_server.endpoint_url,
                            "--region", moto_server.region], capsys)
    assert code == 1
    assert "no-such-table" in _one_line(err)
