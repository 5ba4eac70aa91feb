"""``history --cloudtrail`` and ``who`` on a lake and CloudTrail files of the same writes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.cli._app import console
from ddbtrail.lake.cloudtrail import TrailLogs
from tests import trail
from tests.cli import run_cli


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    lake = trail.write_lake(tmp_path / "lake")
    logs = trail.write_trail(tmp_path / "bucket")
    # What else lives in a trail bucket: digests, and a file that is not gzip at all.
    digest = logs / "AWSLogs" / trail.ACCOUNT / "CloudTrail-Digest" / trail.REGION / "2024"
    digest.mkdir(parents=True)
    (digest / "x.json.gz").write_bytes(b"not a log")
    day = logs / "AWSLogs" / trail.ACCOUNT / "CloudTrail" / trail.REGION / "2024" / "05" / "01"
    (day / "broken.json.gz").write_bytes(b"\x1f\x8bnot gzip")
    return lake, logs


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _history(capsys: pytest.CaptureFixture[str], lake: Path, logs: Path, key: str,
             *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    code, out, err = run_cli(["history", "--lake", str(lake), "--table", "Orders", "--key",
                              key, "--cloudtrail", str(logs), "-o", "json", *extra], capsys)
    return code, _lines(out), err


def test_history_names_the_principal_of_every_change_with_one_event_in_its_second(
        paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    lake, logs = paths
    rows = []
    for key in ("Id=101", "Id=102"):
        code, got, err = _history(capsys, lake, logs, key)
        assert code == 0
        rows += got
    assert "warning: broken.json.gz: cannot be read" in err
    got_by_id = {r["event_id"]: (r["actor"], r["actor_match"], r["actor_candidates"])
                 for r in rows}
    assert got_by_id == trail.EXPECTED
    # Never a principal for a change someone else made.
    for r in rows:
        if r["actor"] is not None:
            assert r["actor"] == trail.TRUTH[r["event_id"]]
    by_id = {r["event_id"]: r for r in rows}
    assert by_id["ch-2"]["cloudtrail_event"] == "UpdateItem"
    assert by_id["ch-2"]["cloudtrail_event_id"] == "ct-0002"
    assert by_id["ch-2"]["source_ip"] == "198.51.100.7"
    assert by_id["ch-2"]["user_agent"] == "agent-2"
    assert by_id["ch-2"]["what_changed"] == 'status: "before" -> "PAID"'
    assert by_id["ch-6"]["cloudtrail_event"] == "ExecuteStatement"


def test_a_table_arn_in_the_log_matches_like_the_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = trail.write_lake(tmp_path / "lake")
    logs = trail.write_trail(tmp_path / "bucket", trail.trail_with_table_arns())
    rows = []
    for key in ("Id=101", "Id=102"):
        code, got, _ = _history(capsys, lake, logs, key)
        assert code == 0
        rows += got
    got_by_id = {r["event_id"]: (r["actor"], r["actor_match"], r["actor_candidates"])
                 for r in rows}
    assert got_by_id == trail.EXPECTED
    assert {r["cloudtrail_event_id"] for r in rows} >= set(trail.ARN_LOGGED)


def test_a_request_logged_the_second_before_is_never_outvoted_by_a_no_op(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Support's request was logged in second S-1 and changed the item in S; admin's write
    # in S changed nothing (no stream record). Admin must not be named.
    at = trail.T0 + 50
    lake = trail.write_lake(tmp_path / "lake", [trail.stream_record(1, "MODIFY", 103, at)])
    logs = trail.write_trail(tmp_path / "bucket", [
        trail.event(1, "UpdateItem", trail.SUPPORT, at - 1, [("Update", "Orders", {"Id": 103})]),
        trail.event(2, "PutItem", trail.ADMIN, at, [("Put", "Orders", {"Id": 103})])])
    code, out, err = run_cli(["who", "--lake", str(lake), "--table", "Orders", "--key",
                              "Id=103", "--cloudtrail", str(logs), "-o", "json"], capsys)
    assert code == 0, err
    (row,) = _lines(out)
    assert (row["actor"], row["actor_match"], row["actor_candidates"]) == (
        None, "ambiguous", sorted([trail.SUPPORT_ARN, trail.ADMIN_ARN]))
    # Without admin's no-op, support's request of the second before is the exact match.
    logs = trail.write_trail(tmp_path / "alone", [
        trail.event(1, "UpdateItem", trail.SUPPORT, at - 1, [("Update", "Orders", {"Id": 103})])])
    code, out, _ = run_cli(["who", "--lake", str(lake), "--table", "Orders", "--key",
                            "Id=103", "--cloudtrail", str(logs), "-o", "json"], capsys)
    (row,) = _lines(out)
    assert (row["actor"], row["actor_match"], row["cloudtrail_event_id"]) == (
        trail.SUPPORT_ARN, "exact", "ct-0001")


def test_history_table_has_a_by_column(paths: tuple[Path, Path],
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lake, logs = paths
    monkeypatch.setattr(console, "width", 200)
    code, out, _ = run_cli(["history", "--lake", str(lake), "--table", "Orders", "--key",
                            "Id=102", "--cloudtrail", str(logs)], capsys)
    assert code == 0
    assert " by " in out and "user/admin" in out and "orders-service" in out


def test_who_lists_who_and_how_since_an_instant(paths: tuple[Path, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    lake, logs = paths
    code, out, _ = run_cli(["who", "--lake", str(lake), "--table", "Orders", "--key", "Id=101",
                            "--cloudtrail", str(logs), "--since", "2024-05-01T10:00:05Z",
                            "-o", "json"], capsys)
    assert code == 0
    rows = _lines(out)
    assert [r["event_id"] for r in rows] == [f"ch-{n}" for n in (2, 3, 4, 5, 6, 7, 10)]
    assert rows[0]["actor"] == trail.SUPPORT_ARN and rows[0]["actor_match"] == "exact"
    code, out, _ = run_cli(["who", "--lake", str(lake), "--table", "Orders", "--key", "Id=101",
                            "--cloudtrail", str(logs)], capsys)
    assert code == 0
    assert "ambiguous" in out and "UpdateItem" in out


def test_who_needs_a_trail_and_a_good_instant(paths: tuple[Path, Path],
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lake, logs = paths
    monkeypatch.delenv("DDBTRAIL_CLOUDTRAIL", raising=False)
    code, _, err = run_cli(["who", "--lake", str(lake), "--table", "Orders", "--key",
                            "Id=101"], capsys)
    assert code == 2 and "--cloudtrail" in err
    code, _, err = run_cli(["who", "--lake", str(lake), "--table", "Orders", "--key", "Id=101",
                            "--cloudtrail", str(logs), "--since", "yesterday"], capsys)
    assert code == 2 and "--since" in err
    code, _, err = run_cli(["who", "--lake", str(lake), "--table", "Orders", "--key", "Id=101",
                            "--cloudtrail", str(logs / "nope")], capsys)
    assert code == 1 and "no such folder" in err and "Traceback" not in err


def test_only_the_days_asked_for_are_opened(paths: tuple[Path, Path]) -> None:
    _, logs = paths
    reader = TrailLogs.open(str(logs))
    every = reader.log_files()
    first_day = reader.log_files(["2024-05-01"])
    assert len(every) > len(first_day) > 0
    assert all("/2024/05/01/" in p for p in first_day)
    # A root inside the layout works too.
    inner = TrailLogs.open(str(logs / "AWSLogs" / trail.ACCOUNT / "CloudTrail" / trail.REGION))
    assert inner.log_files() == every
    read = reader.read(["2024-05-01"])
    assert read.files == len(first_day) - 1  # the broken one
    assert len(read.problems) == 1


def test_gzip_of_the_documented_example_reads_like_the_file(tmp_path: Path,
                                                            load_event: Any) -> None:
    day = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "us-west-2" / "2019" / "01" / "19"
    day.mkdir(parents=True)
    doc = load_event("cloudtrail-dynamodb-log-entries.json")
    (day / "f.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
    read = TrailLogs.open(str(tmp_path)).read()
    assert [e.event_name for e in read.events][:2] == ["PutItem", "UpdateItem"]
    assert read.problems == []


def test_query_command_runs_the_saved_query_over_the_trail(
        paths: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    lake, logs = paths
    code, out, _ = run_cli(["query", "item_history_with_actor", "--lake", str(lake),
                            "--cloudtrail", str(logs), "-p", "table_name=Orders",
                            "-p", 'item_key={"Id":101}', "-p", "from=2024-05-01",
                            "-p", "to=2024-05-03", "-o", "json"], capsys)
    assert code == 0
    got = {r["event_id"]: (r["actor"], r["actor_match"], r["actor_candidates"])
           for r in _lines(out)}
    assert got == {k: v for k, v in trail.EXPECTED.items() if k != "ch-8" and k != "ch-9"}
