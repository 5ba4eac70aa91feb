"""Restore end to end: workload -> capture into the lake -> restore --at -> compare tables."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.core.codec import decode_item, encode_item, item_key
from ddbtrail.core.timefmt import iso_ms
from tests.cli import exit_code
from tests.e2e.jobs_workload import assert_same_items, create_table, scan, workload

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "iceberg"])
def test_restore_at_now_and_mid_workload(moto_server: Any, tmp_path: Path, fmt: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    ddb, url = moto_server.client("dynamodb"), moto_server.endpoint_url
    lake = str(tmp_path / "lake")
    source = create_table(ddb)
    rng = random.Random(f"restore-{fmt}")
    workload(ddb, source, rng, 50)
    time.sleep(0.01)
    at_mid = int(time.time() * 1000)
    state_mid = scan(ddb, source)
    time.sleep(0.01)
    workload(ddb, source, rng, 50)
    state_end = scan(ddb, source)
    assert state_mid != state_end
    assert exit_code(["capture", "--table", source, "--lake", lake, "--endpoint-url", url,
                    "--once", "--format", fmt]) == 0

    now_table = create_table(ddb, stream=None)
    assert exit_code(["restore", "--table", source, "--at", "now", "--to-table", now_table,
                    "--lake", lake, "--endpoint-url", url]) == 0
    assert_same_items(scan(ddb, now_table), state_end)

    mid_table = create_table(ddb, stream=None)
    assert exit_code(["restore", "--table", source, "--at", iso_ms(at_mid),
                    "--to-table", mid_table, "--lake", lake, "--endpoint-url", url]) == 0
    assert_same_items(scan(ddb, mid_table), state_mid)
    assert "restored" in capsys.readouterr().out


def test_restore_one_key_and_dry_run(moto_server: Any, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ddb, url = moto_server.client("dynamodb"), moto_server.endpoint_url
    lake = str(tmp_path / "lake")
    source = create_table(ddb)
    workload(ddb, source, random.Random(3), 40)
    ddb.put_item(TableName=source, Item={"pk": {"S": "only"}, "sk": {"N": "7"},
                                         "b": {"B": b"\x00\xff"}, "n": {"N": "1.50"}})
    state = scan(ddb, source)
    assert exit_code(["capture", "--table", source, "--lake", lake, "--endpoint-url", url,
                    "--once"]) == 0
    capsys.readouterr()
    target = create_table(ddb, stream=None)
    key = ["--key", "pk=only", "--key", "sk=7"]
    assert exit_code(["restore", "--table", source, "--at", "now", "--to-table", target,
                    "--lake", lake, "--endpoint-url", url, "--dry-run", *key]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    printed = json.loads(lines[0])
    assert printed["b"] == {"B": "AP8="}  # base64 of the exact bytes, once
    assert scan(ddb, target) == {}  # dry run wrote nothing

    assert exit_code(["restore", "--table", source, "--at", "now", "--to-table", target,
                    "--lake", lake, "--endpoint-url", url, *key]) == 0
    restored = scan(ddb, target)
    only = item_key({"pk": {"S": "only"}, "sk": {"N": "7"}})
    assert_same_items(restored, {only: state[only]})
    assert restored[only]["b"] == {"B": b"\x00\xff"}
    text, hints = encode_item(restored[only])
    assert decode_item(text, hints, binary_as_bytes=True) == restored[only]


def test_restore_names_a_bad_instant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = exit_code(["restore", "--table", "t", "--at", "yesterday-ish", "--to-table", "x",
                    "--lake", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--at" in err and err.startswith("error:")
