"""``ddbtrail history``, ``as-of``, ``queries`` and ``query`` on a lake of real rows.

Rows come from stream records through ``flatten`` and land as JSON Lines in the
Firehose layout; key types come from the lake or from DynamoDB (moto) DescribeTable.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from ddbtrail.cli import main
from ddbtrail.core import codec
from ddbtrail.core.flatten import flatten_record, row_bytes
from ddbtrail.core.row import partition_path
from ddbtrail.query import saved

BIG = "110111111111111110000000000000000000000"
T0 = 1714557600  # 2024-05-01T10:00:00Z, seconds as DynamoDB Streams give them


def _record(seq: int, action: str, key: int, new: dict[str, Any] | None,
            old: dict[str, Any] | None, at: int, *, ttl: bool = False) -> dict[str, Any]:
    ddb: dict[str, Any] = {"Keys": {"Id": {"N": str(key)}}, "SequenceNumber": str(seq),
                           "ApproximateCreationDateTime": at, "SizeBytes": 100,
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    rec: dict[str, Any] = {
        "eventID": f"ev-{seq}", "eventName": action, "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1", "dynamodb": ddb,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/x"}
    if ttl:
        rec["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return rec


V1 = {"Id": {"N": "101"}, "status": {"S": "NEW"}, "big": {"N": BIG},
      "blob": {"B": "AAEC"}, "tags": {"SS": ["a", "b"]}}
V2 = {**V1, "status": {"S": "PAID"}}
OTHER = {"Id": {"N": "7"}, "note": {"S": "short-lived"}}
RECORDS = [
    _record(900000000000000000001, "INSERT", 101, V1, None, T0),
    _record(900000000000000000002, "MODIFY", 101, V2, V1, T0),  # same second
    _record(900000000000000000003, "INSERT", 7, OTHER, None, T0 + 60),
    _record(1000000000000000000004, "REMOVE", 7, None, OTHER, T0 + 3600, ttl=True),
]


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    for i, rec in enumerate(RECORDS):
        row = flatten_record(rec, ingested_at_ms=(T0 + 7200) * 1000)
        folder = root / partition_path(row["table_name"], row["dt"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"delivery-{i}.jsonl").write_bytes(row_bytes(row))
    # At-least-once: the MODIFY lands twice.
    row = flatten_record(RECORDS[1], ingested_at_ms=(T0 + 9000) * 1000)
    (root / partition_path("Orders", "2024-05-01") / "retry.jsonl").write_bytes(row_bytes(row))
    return root


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_history_oldest_first_deduplicated(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "history", "--lake", str(lake), "--table", "Orders",
                        "--key", "Id=101", "--output", "json")
    assert code == 0
    rows = _json_lines(out)
    assert [r["event_id"] for r in rows] == ["ev-900000000000000000001",
                                             "ev-900000000000000000002"]
    assert rows[1]["changed_attributes"] == ["status"]


def test_history_table_says_what_changed(lake: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBTRAIL_LAKE", str(lake))
    code, out, _ = _run(capsys, "history", "--table", "Orders", "--key", "Id=101")
    assert code == 0
    assert out.index("INSERT") < out.index("MODIFY")
    code, out, _ = _run(capsys, "history", "--table", "Orders", "--key", "Id=101", "-o", "csv")
    assert code == 0
    assert [r["what_changed"] for r in csv.DictReader(io.StringIO(out))] == [
        "created: Id, big, blob, status, tags", 'status: "NEW" -> "PAID"']


def test_as_of_json_is_the_plain_image_and_rebuilds_the_typed_item(
        lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "as-of", "--lake", str(lake), "--table", "Orders",
                        "--at", "2024-05-01T10:30:00Z", "--output", "json")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2  # Id 101 and Id 7 (not yet deleted)
    item = codec.parse_plain(lines[0])
    assert str(item["big"]) == BIG  # every digit
    assert item["status"] == "PAID"
    hints = {"/blob": "B", "/tags": "SS"}
    assert codec.decode_item(lines[0], hints) == V2


def test_as_of_leaves_out_deleted_items(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "as-of", "--lake", str(lake), "--table", "Orders",
                        "--at", "2024-05-01T11:00:00Z", "--output", "json")
    assert code == 0
    assert [codec.parse_plain(x)["Id"] for x in out.splitlines()] == ["101"]
    code, out, _ = _run(capsys, "as-of", "--lake", str(lake), "--table", "Orders",
                        "--at", "2024-05-01T11:00:00Z", "--key", "Id=7", "--output", "json")
    assert (code, out) == (0, "")
    code, out, _ = _run(capsys, "as-of", "--lake", str(lake), "--table", "Orders",
                        "--at", "2024-05-01T10:59:59Z", "--key", "Id=7.0", "--output", "csv")
    assert code == 0
    assert out.splitlines()[0] == "item_key,last_event_time,last_action,item"
    assert out.splitlines()[1].startswith('"{""Id"":7}",2024-05-01T10:01:00.000Z,INSERT,')


def test_queries_lists_names_and_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "queries", "--output", "json")
    assert code == 0
    listed = {r["name"]: r for r in _json_lines(out)}
    assert listed["item_history"]["parameters"] == "table_name, item_key"
    assert listed["hot_items"]["parameters"] == "table_name, from, to, top"


def test_query_sql_prints_the_athena_text_with_fragments_expanded(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "query", "view_current_state", "--sql")
    assert code == 0
    assert out == saved.load("view_current_state").sql + "\n"
    assert "{{" not in out and "ORDER BY change_order DESC" in out


def test_query_runs_a_saved_query(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "query", "deletions", "--lake", str(lake),
                        "--param", "table_name=*", "--param", "from=2024-05-01",
                        "--param", "to=2024-05-02", "--output", "json")
    assert code == 0
    (row,) = _json_lines(out)
    assert (row["item_key"], row["deletion_kind"]) == ('{"Id":7}', "ttl")


@pytest.mark.parametrize(("argv", "message"), [
    (["history", "--table", "Orders", "--key", "Id"], "--key 'Id': expected ATTR=VALUE"),
    (["history", "--table", "Orders", "--key", "Nope=1"], "keyed by Id; got Nope"),
    (["history", "--table", "Orders", "--key", "Id=abc"], "--key"),
    (["history", "--table", "Missing", "--key", "Id=1"],
     "table Missing: no changes in lake"),
    (["as-of", "--table", "Orders", "--at", "yesterday"],
     "--at 'yesterday': expected an ISO-8601 instant"),
    (["query", "nope"], "unknown query 'nope'"),
    (["query", "hot_items", "--param", "x=1"], "unknown parameter 'x'"),
    (["query", "hot_items", "--param", "table_name"], "--param 'table_name': expected"),
    (["query", "deletions", "--param", "table_name=*"], "missing parameter 'from'"),
    (["query", "hot_items", "-p", "table_name=Orders", "-p", "table_name=Other"],
     "--param table_name: given more than once"),
    (["query", "hot_items", "--engine", "sqlite"], "--engine: sqlite is not one of duckdb, athena"),
])
def test_bad_input_is_one_clear_line(lake: Path, capsys: pytest.CaptureFixture[str],
                                     argv: list[str], message: str) -> None:
    code, out, err = _run(capsys, *argv, "--lake", str(lake))
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_unreadable_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "history", "--lake", str(tmp_path / "nowhere"),
                        "--table", "Orders", "--key", "Id=1")
    assert code != 0
    assert err.startswith("error: lake ")
    assert "no such folder" in err
    bad = tmp_path / "bad" / partition_path("Orders", "2024-05-01")
    bad.mkdir(parents=True)
    (bad / "x.parquet").write_bytes(b"garbage")
    code, _, err = _run(capsys, "history", "--lake", str(tmp_path / "bad"),
                        "--table", "Orders", "--key", "Id=1")
    assert code != 0
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")


@pytest.mark.integration
def test_key_types_from_describe_table(moto_server: Any, lake: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    ddb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    ddb.create_table(TableName="Fresh", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "n", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "n", "AttributeType": "N"}])
    common = ["--lake", str(lake), "--endpoint-url", moto_server.endpoint_url,
              "--region", "us-east-1"]
    # The lake holds nothing of Fresh yet: one error naming it and the tables there.
    code, out, err = _run(capsys, "history", "--table", "Fresh", "--key", "pk=a",
                          "--key", "n=1", "--output", "json", *common)
    assert (code, out) == (1, "")
    assert err == (f"error: table Fresh: no changes in lake {lake} (it holds Orders; check "
                   "--table and --lake)\n")
    # A row of an earlier Fresh whose n was a string: DynamoDB's key types win.
    rec = _record(5, "INSERT", 1, {"Id": {"N": "1"}}, None, T0)
    rec["dynamodb"]["Keys"] = {"pk": {"S": "a"}, "n": {"S": "x"}}
    rec["eventSourceARN"] = rec["eventSourceARN"].replace("/Orders/", "/Fresh/")
    row = flatten_record(rec, ingested_at_ms=T0 * 1000)
    folder = lake / partition_path("Fresh", row["dt"])
    folder.mkdir(parents=True)
    (folder / "fresh.jsonl").write_bytes(row_bytes(row))
    code, out, err = _run(capsys, "history", "--table", "Fresh", "--key", "pk=a",
                          "--key", "n=1", "--output", "json", *common)
    assert (code, out, err) == (0, "", "")
    code, _, err = _run(capsys, "history", "--table", "Fresh", "--key", "pk=a", *common)
    assert code == 2
    assert "keyed by n, pk" in err
    code, _, err = _run(capsys, "history", "--table", "Fresh", "--key", "pk=a",
                        "--key", "n=x", *common)
    assert code == 2
    assert err.startswith("error: --key")
    # A table DynamoDB does not know (deleted since) falls back to the lake's rows.
    code, out, _ = _run(capsys, "history", "--table", "Orders", "--key", "Id=101",
                        "--output", "json", *common)
    assert code == 0
    assert len(_json_lines(out)) == 2
