"""`ddbtrail flatten` prints one row per line and names bad records on stderr."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.cli import run_cli as run

EVENTS = Path(__file__).parents[1] / "events"


def test_prints_a_row_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["flatten", str(EVENTS / "every-kind.json")], capsys)
    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["event_id"] for r in rows] == ["ins-1", "mod-1", "rem-user", "rem-ttl",
                                             "keys-only", "new-only", "old-only"]
    assert [r["ttl_delete"] for r in rows] == [False] * 3 + [True] + [False] * 3
    assert '"total":110111111111111110000000000000000000000' in rows[0]["new_image"]


def test_reads_standard_input(capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO((EVENTS / "every-kind.json").read_text()))
    code, out, _ = run(["flatten", "-"], capsys)
    assert code == 0 and len(out.splitlines()) == 7


def test_bad_records_are_named_and_the_rest_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["flatten", str(EVENTS / "powertools-dynamo-stream-event.json")], capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "error: record 1: cannot tell the table: eventSourceARN 'eventsource_arn' names none "
        "(set TABLE_NAME, or --table)",
        "error: record 2: cannot tell the table: eventSourceARN 'source_arn' names none "
        "(set TABLE_NAME, or --table)",
    ]
    code, out, err = run(["flatten", "--table", "Example",
                          str(EVENTS / "powertools-dynamo-stream-event.json")], capsys)
    assert (code, err, len(out.splitlines())) == (0, "", 2)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"foo": 1}', "not a DynamoDB Streams event"),
])
def test_bad_files_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 content: str, message: str) -> None:
    path = tmp_path / "e.json"
    path.write_text(content)
    code, out, err = run(["flatten", str(path)], capsys)
    assert code != 0 and out == ""
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["flatten", "/nonexistent/e.json"], capsys)
    assert code == 2 and err.startswith("error: cannot read /nonexistent/e.json")


def test_on_failure_record_points_to_redrive(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["flatten", str(EVENTS / "powertools-on-failure-invocation-record.json")],
                       capsys)
    assert code == 1 and "ddbtrail redrive" in err
