"""One consistent CLI (issue 15): exit codes, instants, unknown tables, AWS options, output.

Rows come from real-format stream records through ``flatten`` into a JSON Lines lake.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ddbtrail.cli import _app, _output
from ddbtrail.cli._app import app
from ddbtrail.core.exceptions import InvalidArgument
from ddbtrail.core.flatten import flatten_record, row_bytes
from ddbtrail.core.row import partition_path
from ddbtrail.core.timefmt import parse_instant
from tests.cli import run_cli

T0 = 1714557600  # 2024-05-01T10:00:00Z
ROOT = Path(__file__).resolve().parents[2]


def _record(seq: int, action: str, new: dict[str, Any] | None, old: dict[str, Any] | None,
            at: int) -> dict[str, Any]:
    ddb: dict[str, Any] = {"Keys": {"Id": {"N": "101"}}, "SequenceNumber": str(seq),
                           "ApproximateCreationDateTime": at, "SizeBytes": 100,
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    return {"eventID": f"ev-{seq}", "eventName": action, "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": ddb,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/x"}


def _address(city: str) -> dict[str, Any]:
    return {"M": {"street": {"S": "1 rue de la Montagne, appartement 1204, bâtiment B"},
                  "city": {"S": city}, "zip": {"S": "G1R 4P5"}}}


V1 = {"Id": {"N": "101"}, "status": {"S": "NEW"}, "big": {"N": "123456789012345678901234567890"},
      "shipping": {"M": {"address": _address("Québec"), "carrier": {"S": "UPS"}}}}
V2 = {**V1, "status": {"S": "PAID"},
      "shipping": {"M": {"address": _address("Lyon"), "carrier": {"S": "UPS"}}}}


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    for i, rec in enumerate([_record(900000000000000000001, "INSERT", V1, None, T0),
                             _record(900000000000000000002, "MODIFY", V2, V1, T0 + 5)]):
        row = flatten_record(rec, ingested_at_ms=(T0 + 60) * 1000)
        folder = root / partition_path(row["table_name"], row["dt"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"delivery-{i}.jsonl").write_bytes(row_bytes(row))
    return root


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------- 5: unknown table

@pytest.mark.parametrize("argv", [
    ["history", "--table", "Nope", "--key", "Id=1"],
    ["as-of", "--table", "Nope", "--at", "now"],
    ["schema", "--table", "Nope"],
    ["views", "--table", "Nope", "--out", "{tmp}/views"],
    ["report", "--table", "Nope", "--out", "{tmp}/r.html"],
    ["restore", "--table", "Nope", "--at", "now", "--to-table", "T", "--dry-run",
     "--region", "us-east-1"],
    ["compact", "--table", "Nope"],
])
def test_an_unknown_table_is_one_error_naming_the_tables_there(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run_cli([*argv, "--lake", str(lake)], capsys)
    assert code == 1
    assert out == ""
    assert _one_error_line(err) == (f"error: table Nope: no changes in lake {lake} (it holds "
                                    "Orders; check --table and --lake)")
    assert not (tmp_path / "r.html").exists()
    assert not (tmp_path / "views").exists()


# --------------------------------------------------------------------- 6: exit codes

@pytest.mark.parametrize(("argv", "line"), [
    (["history", "--table", "Orders", "--key", "Id=1", "-o", "yaml"],
     "error: --output: yaml is not one of table, json, csv (see 'ddbtrail history --help')"),
    (["history", "--table", "Orders"],
     "error: missing option --key (see 'ddbtrail history --help')"),
    (["history", "--tabel", "Orders"],
     "error: no such option --tabel; did you mean --table? (see 'ddbtrail history --help')"),
    (["cost", "--changes-per-day", "many", "--avg-item-kb", "1"],
     "error: --changes-per-day: must be a valid integer (see 'ddbtrail cost --help')"),
    (["query", "nope"], None),
    (["query", "hot_items", "-p", "table_name=Orders", "-p", "from=soon"], None),
    (["history", "--table", "Orders", "--key", "Id=abc"],
     "error: --key Id: 'abc' is not a number"),
    (["as-of", "--table", "Orders", "--at", "yesterday"], None),
    (["nosuch"], "error: No such command 'nosuch' (see 'ddbtrail --help')"),
])
def test_usage_errors_exit_2_with_one_clean_line(
        lake: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        line: str | None) -> None:
    lakeless = argv[0] in ("cost", "nosuch")
    code, out, err = run_cli(argv if lakeless else [*argv, "--lake", str(lake)], capsys)
    assert code == 2
    assert out == ""
    got = _one_error_line(err)
    assert "Value error" not in got
    assert got.count("--key") <= 2
    if line is not None:
        assert got == line


def test_runtime_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["history", "--table", "Orders", "--key", "Id=1",
                            "--lake", str(tmp_path / "nowhere")], capsys)
    assert code == 1
    assert _one_error_line(err).startswith(f"error: lake {tmp_path / 'nowhere'}: no such")


# --------------------------------------------------------------------- 7: one instant parser

def test_one_instant_parser_takes_iso_dates_and_now() -> None:
    assert parse_instant("2024-05-01T10:00:00Z", what="--at") == T0 * 1000
    assert parse_instant("2024-05-01T12:00:00+02:00", what="--at") == T0 * 1000
    assert parse_instant("2024-05-01T10:00:00", what="--at") == T0 * 1000
    assert parse_instant("2024-05-01", what="--at") == (T0 - 10 * 3600) * 1000
    assert parse_instant(" NOW ", what="--at", now_ms=lambda: 42) == 42
    with pytest.raises(InvalidArgument,
                       match=r"^--since 'yesterday': expected an ISO-8601 instant"):
        parse_instant("yesterday", what="--since")


@pytest.mark.parametrize("when", ["now", "2024-05-02", "2024-05-01T10:00:07Z"])
@pytest.mark.parametrize(("argv", "shows"), [
    (["as-of", "--table", "Orders", "--at", "{when}", "-o", "json"], "PAID"),
    (["restore", "--table", "Orders", "--at", "{when}", "--to-table", "T", "--dry-run",
      "--region", "us-east-1"], "PAID"),
    (["query", "changes_in_window", "-p", "table_name=Orders", "-p", "from=2024-05-01",
      "-p", "to={when}", "-o", "json"], "900000000000000000002"),
])
def test_every_instant_option_takes_every_form(
        lake: Path, capsys: pytest.CaptureFixture[str], argv: list[str], shows: str,
        when: str) -> None:
    code, out, err = run_cli([*(a.replace("{when}", when) for a in argv), "--lake", str(lake)],
                             capsys)
    assert (code, err.count("error")) == (0, 0), err
    assert shows in out  # the MODIFY at 10:00:05 is before each instant


@pytest.mark.parametrize(("since", "changes"), [
    ("2024-05-01", 2), ("2024-05-01T10:00:03Z", 1), ("now", None)])
def test_schema_since_takes_every_form(lake: Path, capsys: pytest.CaptureFixture[str],
                                       since: str, changes: int | None) -> None:
    code, out, err = run_cli(["schema", "--table", "Orders", "--since", since, "-o", "json",
                              "--lake", str(lake)], capsys)
    if changes is None:  # accepted: the lake simply has nothing after now
        assert code == 1
        assert "no changes in lake" in _one_error_line(err)
    else:
        assert code == 0, err
        assert json.loads(out)["changes"] == changes


@pytest.mark.parametrize("when", ["now", "2024-05-01", "2024-05-01T10:00:05Z"])
def test_history_since_takes_every_form(lake: Path, capsys: pytest.CaptureFixture[str],
                                        when: str) -> None:
    code, out, err = run_cli(["history", "--table", "Orders", "--key", "Id=101", "--since",
                              when, "-o", "json", "--lake", str(lake)], capsys)
    assert code == 0, err
    actions = [json.loads(x)["action"] for x in out.splitlines()]
    assert actions == {"now": [], "2024-05-01": ["INSERT", "MODIFY"],
                       "2024-05-01T10:00:05Z": ["MODIFY"]}[when]


# --------------------------------------------------------------------- 8: flatten bad bytes

def test_flatten_of_a_non_utf8_file_is_one_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"Records": [{"eventID": "café"}]}'.encode("latin-1"))
    code, out, err = run_cli(["flatten", str(bad)], capsys)
    assert code == 1
    assert out == ""
    assert _one_error_line(err) == (f"error: {bad}: not UTF-8 text (byte 0xe9 at offset 29); "
                                    "an event is UTF-8 JSON")


# --------------------------------------------------------------------- 9: AWS conventions

def _commands() -> dict[str, Any]:
    import typer.main

    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def _options(cmd: Any) -> set[str]:
    return {o for p in cmd.params for o in getattr(p, "opts", [])}


def test_every_command_that_reaches_aws_takes_profile_region_and_endpoint() -> None:
    reaching = {name for name, cmd in _commands().items() if "--region" in _options(cmd)}
    assert reaching >= {"capture", "backfill", "history", "as-of", "query", "report", "schema",
                        "views", "restore", "replicate", "copy", "redrive", "compact"}
    for name in reaching:
        assert {"--profile", "--endpoint-url"} <= _options(_commands()[name]), name


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from ddbtrail import __version__

    assert run_cli(["--version"], capsys) == (0, f"ddbtrail {__version__}\n", "")


def test_no_region_names_the_option_and_variable(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code, _, err = run_cli(["copy", "--from-table", "T", "--keys-file", "-",
                            "--queue-url", "http://q"], capsys)
    assert code == 2
    line = _one_error_line(err)
    assert "--region" in line
    assert "AWS_REGION" in line


def test_an_unknown_profile_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code, _, err = run_cli(["copy", "--from-table", "T", "--keys-file", "-",
                            "--queue-url", "http://q", "--profile", "ghost"], capsys)
    assert code == 2
    assert _one_error_line(err).startswith("error: --profile ghost: no such profile")


def test_a_profile_gives_the_region(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("[profile audit]\nregion = eu-west-3\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    from ddbtrail.cli._aws import aws_client

    assert aws_client("dynamodb", None, None, "audit").meta.region_name == "eu-west-3"


# --------------------------------------------------------------------- 10: output

def test_history_json_images_are_objects_like_as_of(
        lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["history", "--table", "Orders", "--key", "Id=101", "-o", "json",
                            "--lake", str(lake)], capsys)
    assert code == 0
    last = out.splitlines()[-1]
    row = json.loads(last)
    assert row["new_image"]["status"] == "PAID"
    assert row["old_image"]["shipping"]["address"]["city"] == "Québec"
    assert row["keys"] == {"Id": 101}
    assert '"big":123456789012345678901234567890' in last  # every digit, as stored
    code, out, _ = run_cli(["as-of", "--table", "Orders", "--at", "now", "-o", "json",
                            "--lake", str(lake)], capsys)
    assert json.loads(out) == row["new_image"]


@pytest.mark.parametrize(("command", "option", "choices"), [
    ("capture", "--format", "parquet|jsonl|iceberg"),
    ("backfill", "--format", "parquet|jsonl|iceberg"),
    ("redrive", "--format", "parquet|jsonl|iceberg"), ("demo", "--format", "parquet|jsonl|iceberg"),
    ("cost", "--format", "parquet|jsonl|iceberg"), ("query", "--engine", "duckdb|athena|trino"),
    ("views", "--apply", "duckdb|athena"), ("views", "--binary", "base64|varbinary"),
    ("schema", "--bucket", "day|hour"), ("replicate", "--delete-mode", "delete|tombstone"),
    ("history", "--output", "table|json|csv"),
])
def test_fixed_choices_show_in_help(capsys: pytest.CaptureFixture[str], command: str,
                                    option: str, choices: str) -> None:
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0
    flat = " ".join(out.split())
    assert re.search(re.escape(option) + r" \[?<?" + re.escape(choices), flat), flat


def test_top_level_help_is_whole_and_in_pipeline_order(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    assert "..." not in out.split("Commands:")[1]
    listed = re.findall(r"^  ([a-z][a-z-]*)  ", out.split("Commands:")[1], flags=re.MULTILINE)
    assert listed[:4] == ["demo", "flatten", "capture", "backfill"]
    assert listed == sorted(listed, key=_app.COMMAND_ORDER.index)


def test_lake_is_described_one_way(capsys: pytest.CaptureFixture[str]) -> None:
    for name, cmd in _commands().items():
        for p in cmd.params:
            if "--lake" in getattr(p, "opts", ()) and name != "demo":
                assert _app.LAKE_HELP in (p.help or ""), name


# --------------------------------------------------------------------- 11: terminals

def test_history_at_80_columns_keeps_tokens_whole_and_diffs_by_path(
        lake: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    narrow = Console(width=80, force_terminal=False, color_system=None)
    monkeypatch.setattr(_output, "console", narrow)
    code, out, _ = run_cli(["history", "--table", "Orders", "--key", "Id=101",
                            "--lake", str(lake)], capsys)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    for token in ("900000000000000000001", "900000000000000000002",
                  "2024-05-01T10:00:05.000Z", "sequence_number", "what_changed"):
        assert token in out, out
    flat = " ".join(out.split())
    assert 'shipping.address.city: "Québec" -> "Lyon"' in flat
    assert 'status: "NEW" -> "PAID"' in flat


# --------------------------------------------------------------------- 16: docs match code

def test_security_md_describes_capture_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    code, out, _ = run_cli(["capture", "--help"], capsys)
    assert code == 0
    assert "--redaction-policy" in out
    assert "no `--redaction-policy`" not in text
    assert "ddbtrail capture --redaction-policy" in text
    # Every option SECURITY.md gives a command exists on that command.
    commands = _commands()
    for name, rest in re.findall(r"`ddbtrail ([a-z-]+)([^`]*)`", text):
        for option in re.findall(r"--[a-z-]+", rest):
            assert option in _options(commands[name]), (name, option)


def test_cli_md_lists_every_command_and_its_instant_options() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    text = text.split("## Commands")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| `([a-z-]+)[^`]*` \|(.*)\|$", text, flags=re.MULTILINE))
    commands = _commands()
    assert set(rows) == set(commands)
    for name, cmd in commands.items():
        instants = {o for p in cmd.params for o in getattr(p, "opts", [])
                    if o in ("--at", "--since", "--before")}
        listed = set(re.findall(r"`(--[a-z]+)`", rows[name].rsplit("|", 1)[-1]))
        assert listed == instants, name
