"""The saved query item_history_with_actor on DuckDB gives the CLI's answer, from the
same lake and the same CloudTrail files (tests/trail.py), through a cloudtrail_logs table
with the columns of AWS's documented Athena table."""

from __future__ import annotations

from pathlib import Path

from ddbtrail.lake.cloudtrail import TrailLogs
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved, trail_table, who
from ddbtrail.query.duck import connect
from tests import trail

FIELDS = ("actor", "actor_match", "actor_candidates", "source_ip", "user_agent",
          "cloudtrail_event", "cloudtrail_event_id")
FROM, TO = "2024-05-01T00:00:00Z", "2024-05-03T00:00:00Z"


def test_same_answer_as_the_cli(tmp_path: Path) -> None:
    lake = Lake.open(str(trail.write_lake(tmp_path / "lake")))
    logs = TrailLogs.open(str(trail.write_trail(tmp_path / "bucket")))
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
                                           "2024-05-01T10:00:05Z", "2024-05-01T10:00:06Z")
    # Only ch-2 is in the window; admin's failed UpdateItem of that second does not count.
    assert [(r["event_id"], r["actor"], r["actor_match"]) for r in rows] == [
        ("ch-2", trail.SUPPORT_ARN, "exact")]


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
