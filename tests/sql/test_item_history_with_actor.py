"""The saved query item_history_with_actor on DuckDB gives the CLI's answer, from the
same lake and the same CloudTrail files (tests/trail.py), through a cloudtrail_logs table
with the columns of AWS's documented Athena table."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddbtrail.lake.cloudtrail import TrailLogs
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved, trail_table, who
from ddbtrail.query.duck import connect
from tests import trail

FIELDS = ("actor", "actor_match", "actor_candidates", "source_ip", "user_agent",
          "cloudtrail_event", "cloudtrail_event_id")
FROM, TO = "2024-05-01T00:00:00Z", "2024-05-03T00:00:00Z"


@pytest.mark.parametrize("records", [trail.TRAIL, trail.trail_with_table_arns()],
                         ids=["table-names", "table-arns"])
def test_same_answer_as_the_cli(tmp_path: Path, records: list[dict[str, object]]) -> None:
    lake = Lake.open(str(trail.write_lake(tmp_path / "lake")))
    logs = TrailLogs.open(str(trail.write_trail(tmp_path / "bucket", records)))
    for item_key in ('{"Id":101}', '{"Id":102}'):
        sql_rows = who.item_history_with_actor_sql(lake, "Orders", item_key, logs, FROM, TO)
        cli_rows = who.item_history_with_actors(lake, "Orders", item_key, logs).rows
        assert [r["event_id"] for r in sql_rows] == [r["event_id"] for r in cli_rows]
        for s, c in zip(sql_rows, cli_rows, strict=True):
            assert {f: s[f] for f in FIELDS} == {f: c[f] for f in FIELDS}, s["event_id"]
            assert (s["actor"], s["actor_match"], s["actor_candidates"]) == \
                trail.EXPECTED[s["event_id"]]


def test_window_and_failed_calls(tmp_path: Path) -> None:
    lake = Lake.open(str(trail.write_lake(tmp_path / "lake")))
    logs = TrailLogs.open(str(trail.write_trail(tmp_path / "bucket")))
    rows = who.item_history_with_actor_sql(lake, "Orders", '{"Id":101}', logs,
                                           "2024-05-01T10:00:03Z", "2024-05-01T10:00:08Z")
    # Only ch-2 is in the window; admin's failed UpdateItem of that second does not count.
    assert [(r["event_id"], r["actor"], r["actor_match"]) for r in rows] == [
        ("ch-2", trail.SUPPORT_ARN, "exact")]
    # A window that ends a second after it cuts its run: a change just outside the window
    # could be one of the run's, so the SQL does not call it exact (the CLI, reading the
    # whole history, does).
    rows = who.item_history_with_actor_sql(lake, "Orders", '{"Id":101}', logs,
                                           "2024-05-01T10:00:05Z", "2024-05-01T10:00:06Z")
    assert [(r["event_id"], r["actor_match"], r["actor_candidates"]) for r in rows] == [
        ("ch-2", "ambiguous", [trail.SUPPORT_ARN])]


def test_cloudtrail_table_has_the_documented_columns(tmp_path: Path, load_event) -> None:
    logs = TrailLogs.open(str(trail.write_trail(tmp_path / "bucket")))
    con = connect(Lake.open(str(trail.write_lake(tmp_path / "lake"))))
    assert trail_table.register(con, logs) == []
    row = con.execute(
        "SELECT useridentity.arn, useridentity.sessioncontext.sessionissuer.arn, readonly, "
        "json_extract_string(requestparameters, '$.key.Id'), eventcategory, \"timestamp\" "
        "FROM cloudtrail_logs WHERE eventid = 'ct-0001'").fetchone()
    assert row == (trail.SERVICE_ARN, "arn:aws:iam::123456789012:role/orders-service",
                   "false", "101", "Data", "2024/05/01")


def test_runs_with_no_cloudtrail_logs_at_all(tmp_path: Path) -> None:
    lake = Lake.open(str(trail.write_lake(tmp_path / "lake")))
    rows = saved.run_local(saved.load("item_history_with_actor"),
                           {"table_name": "Orders", "item_key": '{"Id":101}',
                            "from": FROM, "to": TO}, lake).to_pylist()
    assert {r["actor_match"] for r in rows if not r["ttl_delete"]} == {"none"}


# ----------------------------------------------------------------------------- any workload

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PRINCIPALS = (trail.SERVICE, trail.SUPPORT, trail.ADMIN)


@st.composite
def workloads(draw: st.DrawFn) -> list[tuple[int, int, int, str, str, bool, int, bool]]:
    """(principal, item, second, kind, call, typed key, lag, table ARN) per write; lag is
    the seconds from the logged request to its change."""
    return draw(st.lists(st.tuples(
        st.integers(0, 2), st.integers(101, 102), st.integers(0, 12),
        st.sampled_from(["changed", "changed", "noop", "failed", "unlogged"]),
        st.sampled_from(["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"]),
        st.booleans(), st.sampled_from([0, 0, 1]), st.booleans()), max_size=12))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=workloads())
def test_any_workload_gets_the_same_answer_as_the_cli(
        tmp_path_factory: pytest.TempPathFactory,
        writes: list[tuple[int, int, int, str, str, bool, int, bool]]) -> None:
    root = tmp_path_factory.mktemp("w")
    stream, events = [], []
    for n, (who_, item, second, kind, call, typed, lag, arn) in enumerate(writes, start=1):
        at = trail.T0 + second
        if kind != "unlogged":
            other = 203 - item  # a transaction also writes the other item
            items = [("Update", "Orders", {"Id": item})] + (
                [("Update", "Orders", {"Id": other})] if call == "TransactWriteItems" else [])
            rec = trail.event(n, call, PRINCIPALS[who_], at, items,
                              error="ConditionalCheckFailedException" if kind == "failed"
                              else None)
            if typed and call != "TransactWriteItems":
                rec["requestParameters"]["key"] = {"Id": {"N": str(item)}}
            if arn:
                rec = trail.trail_with_table_arns([rec], [rec["eventID"]])[0]
            events.append(rec)
            if call == "TransactWriteItems" and kind == "changed":
                stream.append(trail.stream_record(1000 + n, "MODIFY", other, at + lag))
        if kind in ("changed", "unlogged"):
            stream.append(trail.stream_record(n, "MODIFY", item, at + lag))
    if not stream:
        return
    lake = Lake.open(str(trail.write_lake(root / "lake", stream)))
    logs = TrailLogs.open(str(trail.write_trail(root / "bucket", events)))
    for item_key in ('{"Id":101}', '{"Id":102}'):
        sql_rows = who.item_history_with_actor_sql(lake, "Orders", item_key, logs, FROM, TO)
        cli_rows = who.item_history_with_actors(lake, "Orders", item_key, logs).rows
        assert [r["event_id"] for r in sql_rows] == [r["event_id"] for r in cli_rows]
        for s, c in zip(sql_rows, cli_rows, strict=True):
            assert {f: s[f] for f in FIELDS} == {f: c[f] for f in FIELDS}, s["event_id"]
