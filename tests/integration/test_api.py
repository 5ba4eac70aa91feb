"""``import ddbtrail as dt`` on a demo lake: what a notebook or a job calls, and the CLI's
JSON for the same arguments.

One small demo run (real moto, the stream runner, Parquet files) serves the module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import ddbtrail as dt
from ddbtrail.local.demo import STAR_KEY, TABLE, run_demo, trail_uri
from tests.cli import run_cli

KEY = {"customer_id": "C0001", "order_id": 1}


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from ddbtrail.lake.files import Lake as FilesLake

    root = tmp_path_factory.mktemp("api") / "lake"
    run_demo(FilesLake.open(str(root)), changes=200)
    return str(root)


@pytest.fixture
def lake(lake_dir: str) -> dt.Lake:
    return dt.Lake.open(lake_dir)


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    code, out, err = run_cli([*argv, "-o", "json"], capsys)
    assert (code, err) == (0, "")
    return [json.loads(line) for line in out.splitlines()]


def _as_cli_shows(rows: list[dict[str, Any]], cli: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """API rows with JSON-text columns parsed where the CLI prints them as objects."""
    out = []
    for row, shown in zip(rows, cli, strict=False):
        out.append({k: json.loads(v) if isinstance(v, str) and not isinstance(shown.get(k), str)
                    and v[:1] in "{[" else v for k, v in row.items()})
    return out


# --------------------------------------------------------------------------- the API


def test_history_of_one_item_is_arrow_for_pandas_and_polars(lake: dt.Lake) -> None:
    import polars as pl

    found = dt.history(lake, TABLE, KEY)
    assert isinstance(found, pa.Table) and found.num_rows >= 1
    assert found.column("action").to_pylist()[0] == "INSERT"
    assert found.column("what_changed").to_pylist()[0].startswith("created")
    seqs = [int(s) for s in found.column("sequence_number").to_pylist()]
    assert seqs == sorted(seqs)
    assert len(found.to_pandas()) == found.num_rows
    assert pl.from_arrow(found).height == found.num_rows


def test_a_key_is_plain_or_typed_values_and_numbers_may_be_text(lake: dt.Lake) -> None:
    plain = dt.history(lake, TABLE, KEY)
    typed = dt.history(lake, TABLE, {"customer_id": {"S": "C0001"}, "order_id": {"N": "1"}})
    text = dt.history(lake, TABLE, {"customer_id": "C0001", "order_id": "1"})
    assert plain.to_pylist() == typed.to_pylist() == text.to_pylist()
    assert dt.history(lake_dir_of(lake), TABLE, KEY).num_rows == plain.num_rows


def lake_dir_of(lake: dt.Lake) -> str:
    return lake.uri


@pytest.mark.parametrize(("key", "shows"), [
    ({"customer_id": "C0001"}, "keyed by customer_id, order_id; got customer_id"),
    ({"customer_id": "C0001", "order_id": "one"}, "order_id"),
    ({"customer_id": "C0001", "order_id": 1.5}, "a str, int, Decimal or bytes"),
])
def test_a_bad_key_names_the_key_argument(lake: dt.Lake, key: dict[str, Any],
                                          shows: str) -> None:
    with pytest.raises(dt.InvalidArgument) as caught:
        dt.history(lake, TABLE, key)
    assert caught.value.param == "key"
    assert shows in str(caught.value)
    assert "--" not in str(caught.value)


def test_since_and_until_bound_the_history(lake: dt.Lake) -> None:
    every = dt.history(lake, TABLE, KEY)
    stamps = every.column("timestamp").to_pylist()
    last = dt.history(lake, TABLE, KEY, since=stamps[-1])
    assert last.column("timestamp").to_pylist() == [t for t in stamps if t >= stamps[-1]]
    first = dt.history(lake, TABLE, KEY, until=stamps[0])
    assert first.column("timestamp").to_pylist() == [t for t in stamps if t <= stamps[0]]
    with pytest.raises(dt.InvalidArgument) as caught:
        dt.history(lake, TABLE, KEY, since="yesterday")
    assert (caught.value.param, caught.value.value) == ("since", "yesterday")


def test_as_of_now_is_the_last_image_of_each_live_item(lake: dt.Lake) -> None:
    import polars as pl

    every = dt.as_of(lake, TABLE, "now")
    one = dt.as_of(lake, TABLE, "now", key=KEY)
    history = dt.history(lake, TABLE, KEY).to_pylist()
    if history[-1]["action"] == "REMOVE":
        assert one.num_rows == 0
    else:
        assert one.column("item").to_pylist() == [history[-1]["new_image"]]
        assert one.to_pylist()[0] in every.to_pylist()
    frame = pl.from_arrow(every)
    assert isinstance(frame, pl.DataFrame)
    assert frame["item_key"].to_list() == sorted(frame["item_key"].to_list())


def test_as_of_in_the_future_is_refused_naming_at_unless_allowed(lake: dt.Lake) -> None:
    with pytest.raises(dt.InvalidArgument) as caught:
        dt.as_of(lake, TABLE, "2099-01-01")
    assert (caught.value.param, caught.value.value) == ("at", "2099-01-01")
    assert "future" in caught.value.reason
    allowed = dt.as_of(lake, TABLE, "2099-01-01", allow_future=True)
    assert allowed.to_pylist() == dt.as_of(lake, TABLE, "now").to_pylist()


def test_as_of_before_any_change_is_empty(lake: dt.Lake) -> None:
    assert dt.as_of(lake, TABLE, "0001-01-01").num_rows == 0


def test_saved_queries_run_by_name_with_their_parameters(lake: dt.Lake) -> None:
    listed = dt.queries()
    names = listed.column("name").to_pylist()
    assert "item_history" in names and names == sorted(names)
    params = dict(zip(names, listed.column("parameters").to_pylist(), strict=True))
    assert params["item_history"] == ["table_name", "item_key"]
    hourly = dt.query(lake, "activity_by_hour", **{"from": "2000-01-01", "to": "now"})
    assert sum(hourly.column("changes").to_pylist()) == \
        dt.query(lake, "changes_in_window", table_name=TABLE, **{"from": "2000-01-01",
                                                                  "to": "now"}).num_rows
    with pytest.raises(dt.QueryError, match="unknown parameter 'nope'"):
        dt.query(lake, "activity_by_hour", nope="x")


def test_a_new_saved_query_is_reachable_with_no_code_change(
        lake: dt.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ddbtrail import resources
    from ddbtrail.query import saved

    folder = tmp_path / "athena_queries"
    shutil.copytree(resources.queries_dir(), folder)
    (folder / "orders_of_customer.sql").write_text(
        "-- name: orders_of_customer\n-- kind: query\n"
        "-- question: Which changes touched one customer's orders?\n"
        "-- parameters:\n--   customer  string  the customer_id\n"
        "-- output:\n--   changes  changes of that customer's orders\n"
        "SELECT count(*) AS changes FROM changes\n"
        "WHERE json_extract_scalar(keys, '$.customer_id') = ?\n", encoding="utf-8")
    monkeypatch.setattr(saved, "queries_dir", lambda: folder)
    assert "orders_of_customer" in dt.queries().column("name").to_pylist()
    found = dt.query(lake, "orders_of_customer", customer="C0001")
    expected = sum(dt.history(lake, TABLE, {"customer_id": "C0001", "order_id": o}).num_rows
                   for o in _orders_of(lake, "C0001"))
    assert found.to_pylist() == [{"changes": expected}]


def _orders_of(lake: dt.Lake, customer: str) -> set[int]:
    rows = dt.query(lake, "changes_in_window", table_name=TABLE,
                    **{"from": "2000-01-01", "to": "now"}).to_pylist()
    return {json.loads(r["item_key"])["order_id"] for r in rows
            if json.loads(r["item_key"])["customer_id"] == customer}


def test_schema_snapshot_compact_restore_and_cost(lake_dir: str, tmp_path: Path) -> None:
    work = tmp_path / "lake"
    shutil.copytree(lake_dir, work)
    lake = dt.Lake.open(str(work))
    learnt = dt.schema(lake, TABLE)
    assert {"customer_id", "order_id", "status"} <= {a.name for a in learnt.attributes}
    built = dt.snapshot(lake, TABLE, at="now")
    assert built.items == dt.as_of(lake, TABLE, built.snapshot_ms).num_rows
    assert isinstance(dt.compact(lake, dry_run=True), list)
    restored = dt.restore(lake, TABLE, "now", to_table="copy", key=KEY)
    assert restored.dry_run and restored.written == 0
    assert len(restored.plan.items) == dt.as_of(lake, TABLE, "now", key=KEY).num_rows
    with pytest.raises(dt.InvalidArgument) as caught:
        dt.snapshot(lake, TABLE, at="2099-01-01")
    assert caught.value.param == "at"
    from ddbtrail.cost import Workload, estimate

    assert dt.cost(changes_per_day=1_000_000, avg_item_kb=2, lookups_per_day=100) == \
        estimate(Workload(changes_per_day=1_000_000, avg_item_kb=2, lookups_per_day=100))
    with pytest.raises(dt.InvalidArgument) as bad:
        dt.cost(changes_per_day=-1, avg_item_kb=2)
    assert (bad.value.param, bad.value.value) == ("changes_per_day", -1)


def test_a_snapshot_at_now_is_never_in_the_future_however_the_clock_moves(
        lake_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """"now" is the instant the call read the clock at, not a later reading (a loaded
    machine once made ``ddbtrail snapshot --at now`` refuse its own "now" as future)."""
    import time

    work = tmp_path / "lake"
    shutil.copytree(lake_dir, work)
    ticks = iter(range(time.time_ns(), time.time_ns() + 10**15, 5_000_000))  # +5 ms a read
    monkeypatch.setattr(time, "time_ns", lambda: next(ticks))
    built = dt.snapshot(dt.Lake.open(str(work)), TABLE, at="now", settle_seconds=0)
    assert built.items > 0


def test_restore_writes_through_the_lakes_session_and_reports_progress(
        lake_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="x",
                                aws_secret_access_key="x")
        ddb = session.client("dynamodb")
        ddb.create_table(
            TableName="copy", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "customer_id", "KeyType": "HASH"},
                       {"AttributeName": "order_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "customer_id", "AttributeType": "S"},
                                  {"AttributeName": "order_id", "AttributeType": "N"}])
        lake = dt.Lake.open(lake_dir, boto3_session=session)
        heard: list[tuple[int, int]] = []
        planned: list[int] = []
        done = dt.restore(lake, TABLE, "now", to_table="copy", dry_run=False,
                          on_plan=lambda plan: planned.append(len(plan.items)),
                          progress=lambda n, total: heard.append((n, total)))
        live = dt.as_of(lake, TABLE, "now").num_rows
        assert done.written == planned[0] == live == ddb.scan(TableName="copy")["Count"]
        assert heard[-1] == (live, live) and [n for n, _ in heard] == sorted(n for n, _ in heard)


def test_who_needs_cloudtrail_and_attributes_from_it(lake: dt.Lake, lake_dir: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DDBTRAIL_CLOUDTRAIL", raising=False)
    with pytest.raises(dt.InvalidArgument) as caught:
        dt.who(lake, TABLE, KEY)
    assert caught.value.param == "cloudtrail"
    from ddbtrail.lake.files import Lake as FilesLake

    trail = trail_uri(FilesLake.open(lake_dir))
    found = dt.who(lake, TABLE, KEY, cloudtrail=trail)
    assert found.num_rows == dt.history(lake, TABLE, KEY).num_rows
    assert set(found.column("actor_match").to_pylist()) <= {"exact", "ambiguous", "none"}
    monkeypatch.setenv("DDBTRAIL_CLOUDTRAIL", trail)  # the environment when not given
    assert dt.who(lake, TABLE, KEY).to_pylist() == found.to_pylist()


def test_the_package_exports_its_api() -> None:
    assert set(dt.__all__) >= {"Lake", "history", "as_of", "who", "query", "queries",
                               "schema", "snapshot", "compact", "restore", "cost"}
    assert callable(dt.query) and callable(dt.cost)  # not the subpackage / module
    from ddbtrail.query import saved  # the subpackage still imports by its full name

    assert saved.__name__ == "ddbtrail.query.saved"
    assert callable(dt.query)


# --------------------------------------------------------------------------- CLI = API


def test_cli_history_json_is_the_api_history(lake: dt.Lake, lake_dir: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli_json(capsys, "history", "--table", TABLE, "--key", "customer_id=C0001",
                    "--key", "order_id=1", "--lake", lake_dir)
    api = dt.history(lake, TABLE, KEY).to_pylist()
    assert cli == _as_cli_shows(api, cli) and len(cli) == len(api)


def test_cli_who_json_is_the_api_who(lake: dt.Lake, lake_dir: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ddbtrail.lake.files import Lake as FilesLake

    trail = trail_uri(FilesLake.open(lake_dir))
    cli = _cli_json(capsys, "who", "--table", TABLE, "--key", "customer_id=C0001",
                    "--key", "order_id=1", "--lake", lake_dir, "--cloudtrail", trail)
    api = dt.who(lake, TABLE, KEY, cloudtrail=trail).to_pylist()
    assert cli == _as_cli_shows(api, cli) and len(cli) == len(api)


def test_cli_as_of_json_is_the_api_items(lake: dt.Lake, lake_dir: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli_json(capsys, "as-of", "--table", TABLE, "--at", "now", "--lake", lake_dir)
    api = dt.as_of(lake, TABLE, "now").to_pylist()
    assert cli == [json.loads(r["item"] or r["keys"]) for r in api]
    assert len(cli) == len(api) > 0


def test_cli_query_and_queries_json_are_the_api_results(
        lake: dt.Lake, lake_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli_json(capsys, "query", "activity_by_hour", "-p", "from=2000-01-01",
                    "-p", "to=2100-01-01", "--lake", lake_dir)
    api = dt.query(lake, "activity_by_hour", **{"from": "2000-01-01", "to": "2100-01-01"})
    assert cli == api.to_pylist() and cli
    listed = _cli_json(capsys, "queries")
    assert [r["name"] for r in listed] == dt.queries().column("name").to_pylist()
    assert [r["parameters"] for r in listed] == \
        [", ".join(p) for p in dt.queries().column("parameters").to_pylist()]


def test_cli_schema_json_is_the_api_schema(lake: dt.Lake, lake_dir: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli_json(capsys, "schema", "--table", TABLE, "--lake", lake_dir)
    assert cli == [dt.schema(lake, TABLE).to_json()]


# --------------------------------------------------------------------------- the notebook


def test_the_notebook_runs_on_the_demo_lake(lake_dir: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import re

    page = Path(__file__).resolve().parents[2] / "docs" / "notebook.md"
    cells = re.findall(r"^```python\n(.*?)^```$", page.read_text(encoding="utf-8"),
                       re.MULTILINE | re.DOTALL)
    assert len(cells) == 5
    monkeypatch.setenv("DDBTRAIL_LAKE", lake_dir)  # what `ddbtrail demo` made
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {"__name__": "notebook"}
    for cell in cells:
        exec(compile(cell, str(page), "exec"), scope)  # our own page, cell by cell
    out = capsys.readouterr().out
    assert len(scope["history"]) == dt.history(lake_dir, TABLE, KEY).num_rows
    assert scope["now"].height == dt.as_of(lake_dir, TABLE, "now").num_rows
    assert int(scope["per_minute"]["changes"].sum()) == \
        int(scope["hourly"]["changes"].sum())
    assert "plotly" in (tmp_path / "activity.html").read_text(encoding="utf-8")
    assert "changes plotted into activity.html" in out


# --------------------------------------------------------------------------- --at errors


@pytest.mark.parametrize(("at", "line"), [
    ("2099-01-01", "error: --at '2099-01-01': in the future; the lake holds changes that "
                   "have happened"),
    ("0001-13-01", "error: --at '0001-13-01': expected an ISO-8601 instant"),
    ("soon", "error: --at 'soon': expected an ISO-8601 instant"),
])
def test_as_of_at_errors_name_at_and_echo_the_input(
        lake_dir: str, capsys: pytest.CaptureFixture[str], at: str, line: str) -> None:
    code, out, err = run_cli(["as-of", "--table", TABLE, "--at", at, "--lake", lake_dir],
                             capsys)
    assert (code, out) == (2, "")
    assert err.startswith(line) and len(err.strip().splitlines()) == 1


def test_as_of_at_year_one_answers_nothing_rather_than_failing(
        lake_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["as-of", "--table", TABLE, "--at", "0001-01-01", "--lake",
                              lake_dir, "-o", "json"], capsys)
    assert (code, out, err) == (0, "", "")
    code, out, err = run_cli(["as-of", "--table", TABLE, "--at", "2099-01-01",
                              "--allow-future", "--lake", lake_dir, "-o", "json"], capsys)
    assert code == 0 and len(out.splitlines()) == dt.as_of(lake_dir, TABLE, "now").num_rows


def test_star_key_is_the_documented_key() -> None:
    assert {k: next(iter(v.values())) for k, v in STAR_KEY.items()} == \
        {"customer_id": "C0001", "order_id": "1"}
