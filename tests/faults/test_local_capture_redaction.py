"""The local capture (``ddbtrail capture`` / ``build_capture``) applies the redaction policy,
as the Lambda does: a locally captured lake never holds what a policy says must not leave
the handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.capture.runner import RunnerSettings
from ddbtrail.capture.runner.pipeline import build_capture
from ddbtrail.lake.files import Lake
from tests.cli import exit_code
from tests.faults.ledger import make_table

pytestmark = pytest.mark.integration
SECRET = "alice@example.com"


def test_local_capture_applies_the_redaction_policy_from_the_environment(
        moto_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ddb, table, _ = make_table(moto_server, "redact")
    monkeypatch.setenv("REDACTION_POLICY", '{"*": {"email": "hmac"}}')
    monkeypatch.setenv("REDACTION_KEY", "local test key")
    ddb.put_item(TableName=table, Item={"pk": {"S": "u1"}, "email": {"S": SECRET}})
    lake = Lake.open(str(tmp_path / "lake"))
    run = build_capture(table, lake, ddb=ddb, streams=moto_server.client("dynamodbstreams"),
                        fmt="jsonl", settings=RunnerSettings(poll_interval=0))
    run.run(once=True)
    files = lake.data_files(table)
    assert files
    assert all(SECRET.encode() not in Path(f.path).read_bytes() for f in files)


def test_capture_cli_takes_a_policy_file(moto_server: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ddb, table, _ = make_table(moto_server, "redact-cli")
    monkeypatch.delenv("REDACTION_POLICY", raising=False)
    monkeypatch.setenv("REDACTION_KEY", "local test key")
    ddb.put_item(TableName=table, Item={"pk": {"S": "u1"}, "email": {"S": SECRET}})
    policy = tmp_path / "policy.json"
    policy.write_text('{"*": {"email": "drop"}}')
    lake = tmp_path / "lake"
    args = ["capture", "--table", table, "--lake", str(lake), "--once", "--format", "jsonl",
            "--endpoint-url", moto_server.endpoint_url, "--region", moto_server.region]
    assert exit_code([*args, "--redaction-policy", str(policy)]) == 0
    files = Lake.open(str(lake)).data_files(table)
    assert files
    assert all(SECRET.encode() not in Path(f.path).read_bytes() for f in files)
    assert exit_code([*args, "--redaction-policy", str(tmp_path / "missing.json")]) == 2


def test_backfill_applies_the_policy_as_capture_does(moto_server: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """SNAPSHOT rows leave out or HMAC what the policy names, keys included, in the form
    the capture path gives the same item, so as-of and restore see one item, not two."""
    ddb, table, _ = make_table(moto_server, "redact-backfill")
    monkeypatch.delenv("REDACTION_POLICY", raising=False)
    monkeypatch.setenv("REDACTION_KEY", "local test key")
    ddb.put_item(TableName=table, Item={"pk": {"S": SECRET}, "email": {"S": SECRET},
                                        "note": {"S": "kept"}})
    policy = tmp_path / "policy.json"
    policy.write_text('{"*": {"pk": "hmac", "email": "drop"}}')
    lake = tmp_path / "lake"
    common = ["--table", table, "--lake", str(lake), "--format", "jsonl",
              "--endpoint-url", moto_server.endpoint_url, "--region", moto_server.region,
              "--redaction-policy", str(policy)]
    assert exit_code(["backfill", *common]) == 0
    assert exit_code(["capture", *common, "--once"]) == 0
    files = Lake.open(str(lake)).data_files(table)
    assert files
    rows = [json.loads(line) for f in files for line in Path(f.path).read_text().splitlines()]
    assert {r["action"] for r in rows} == {"SNAPSHOT", "INSERT"}
    for row in rows:
        assert SECRET not in json.dumps(row)
        assert json.loads(row["new_image"])["note"] == "kept"
        assert "email" not in json.loads(row["new_image"])
    assert len({r["item_key"] for r in rows}) == 1  # the same HMAC'd key from both paths
    assert exit_code(["backfill", *common[:-1], str(tmp_path / "missing.json"), "--new"]) == 2
