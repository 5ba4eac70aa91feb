"""Replicate end to end: moto stream -> local runner -> replicate_batch -> target table."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.cli import exit_code
from tests.e2e.jobs_workload import assert_same_items, create_table, scan, workload

pytestmark = pytest.mark.e2e


def test_replicate_then_target_scan_equals_source_scan(moto_server: Any, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    source = create_table(ddb)
    target = create_table(ddb, stream=None)
    rng = random.Random(6)
    workload(ddb, source, rng, 60)
    args = ["replicate", "--from-table", source, "--to-table", target, "--once",
            "--endpoint-url", moto_server.endpoint_url, "--lake", str(tmp_path / "lake")]
    assert exit_code(args) == 0
    assert "replicated" in capsys.readouterr().out
    assert_same_items(scan(ddb, target, drop=("_ddbtrail_seq",)), scan(ddb, source))

    # More changes, and a replay of the whole stream from the start (lost checkpoints):
    # stale records are skipped and the target still equals the source.
    workload(ddb, source, rng, 30)
    assert exit_code(args) == 0
    replay = ["replicate", "--from-table", source, "--to-table", target, "--once",
              "--endpoint-url", moto_server.endpoint_url, "--lake", str(tmp_path / "other")]
    assert exit_code(replay) == 0
    assert_same_items(scan(ddb, target, drop=("_ddbtrail_seq",)), scan(ddb, source))


def test_replicate_names_a_table_without_stream(moto_server: Any, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    source = create_table(ddb, stream=None)
    code = exit_code(["replicate", "--from-table", source, "--to-table", "x", "--once",
                    "--endpoint-url", moto_server.endpoint_url, "--lake", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and source in err and err.startswith("error:")
