"""The daily maintenance: a schedule starts a state machine that runs the saved SQL on
Athena, and that SQL, run on DuckDB, writes the state ``ddbtrail snapshot`` writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from ddbtrail.core.row import SNAPSHOT_COLUMN_NAMES
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved, snapshots
from ddbtrail.query.duck import connect
from infra.constructs.maintenance import ATHENA_RESULTS, ATHENA_SYNC, VIEW_ORDER
from tests.infra.asl import evaluate
from tests.infra.test_infra_app import JSONL, PARQUET, prepare_inputs, statements
from tests.sql.test_snapshots import DAY, T0, TABLE, Workload, write


@pytest.fixture(scope="module")
def jsonl(synth_once: Any) -> Any:
    return synth_once("jsonl", JSONL)


@pytest.fixture(scope="module")
def parquet(synth_once: Any) -> Any:
    return synth_once("parquet", PARQUET, setup=prepare_inputs)


def machine(synth: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(logical id, resource, parsed definition) of the maintenance state machine (the
    stack's other machines, compaction and retention, have their own tests)."""
    ((sm_id, sm),) = [(k, r) for k, r in synth.resources(
        "AWS::StepFunctions::StateMachine").items() if k.startswith("Maintenance")]
    body = sm["Properties"]["DefinitionString"]
    if isinstance(body, dict):  # Fn::Join of the text around the tokens in it
        sep, parts = body["Fn::Join"]
        body = sep.join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return sm_id, sm, json.loads(body)


def test_default_synth_schedules_a_state_machine_that_runs_athena(jsonl: Any) -> None:
    sm_id, _, body = machine(jsonl)
    (schedule,) = [s for s in jsonl.resources("AWS::Scheduler::Schedule").values()
                   if s["Properties"]["Target"]["Arn"] == {"Ref": sm_id}]
    props = schedule["Properties"]
    assert props["ScheduleExpression"].startswith("cron(")
    assert props["ScheduleExpressionTimezone"] in ("Etc/UTC", "UTC")
    assert props["Target"]["Arn"] == {"Ref": sm_id}
    assert body["QueryLanguage"] == "JSONata"
    states = body["States"]
    created = [s["Arguments"]["QueryString"].split(" AS")[0] for n, s in states.items()
               if n.startswith("CreateView_")]
    assert created == [f"CREATE OR REPLACE VIEW {saved.view_name(saved.load(v))}"
                       for v in VIEW_ORDER]
    inner = states["Tables"]["ItemProcessor"]["States"]
    assert [inner[n]["Resource"] for n in ("FindBase", "ReadCandidates", "CheckCandidate",
                                           "ReadCheck", "WriteSnapshot", "MarkComplete")] == [
        ATHENA_SYNC, ATHENA_RESULTS, ATHENA_SYNC, ATHENA_RESULTS, ATHENA_SYNC, ATHENA_SYNC]
    # The SQL is the saved queries' (fragments expanded).
    assert inner["FindBase"]["Arguments"]["QueryString"] == \
        saved.load("snapshot_candidates").sql
    assert inner["CheckCandidate"]["Arguments"]["QueryString"] == \
        saved.load("snapshot_check").sql
    assert inner["WriteSnapshot"]["Arguments"]["QueryString"] == (
        "INSERT INTO snapshots\n" + saved.load("snapshot_state").sql)
    # Fragments expanded: no placeholder reaches Athena.
    for state in [*states.values(), *inner.values()]:
        assert "{{" not in state.get("Arguments", {}).get("QueryString", ""), state
    assert states["Tables"]["Items"] == "{% $tables %}"


def test_a_failed_run_raises_an_alarm_on_the_topic(parquet: Any) -> None:
    sm_id, _, _ = machine(parquet)
    alarms = [a["Properties"] for k, a in parquet.resources("AWS::CloudWatch::Alarm").items()
              if a["Properties"].get("Namespace") == "AWS/States" and k.startswith("Maintenance")]
    by_metric = {a["MetricName"]: a for a in alarms}
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"} <= set(by_metric)
    for alarm in by_metric.values():
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": sm_id}}]
        assert alarm["Threshold"] == 1 and alarm["AlarmActions"]


def test_maintenance_role_is_least_privilege(parquet: Any) -> None:
    _, sm, _ = machine(parquet)
    role_id = sm["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    docs = [p["Properties"]["PolicyDocument"]
            for p in parquet.resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]]
    found = {s["Sid"]: s for doc in docs for s in statements(doc)}
    assert set(found) == {"RunAthena", "ReadCatalog", "SavedViews", "SnapshotPartitions",
                          "ListBuckets", "ReadLake", "WriteSnapshots", "QueryResults",
                          "LakeKeyViaS3",
                          # evidence's reconciliation (tests/infra/test_evidence_stack.py)
                          "ReadReceiptsTable", "PublishReconciliation"}
    workgroup = json.dumps(found["RunAthena"]["Resource"])
    assert ":workgroup/" in workgroup
    # Objects are written only under the snapshot prefix; views are the saved ones only.
    (write_target,) = [found["WriteSnapshots"]["Resource"]]
    assert json.dumps(write_target).endswith('/lake/snapshots/*"]]}')
    views = {r.split("/")[-1] for r in _texts(found["SavedViews"]["Resource"])
             if ":table/" in r}
    assert views == {saved.view_name(q) for q in saved.catalogue() if q.kind == "view"}
    assert found["LakeKeyViaS3"]["Condition"]


def _texts(resources: Any) -> list[str]:
    out = []
    for r in resources if isinstance(resources, list) else [resources]:
        if isinstance(r, dict) and "Fn::Join" in r:
            out.append("".join(p if isinstance(p, str) else "X" for p in r["Fn::Join"][1]))
        else:
            out.append(str(r))
    return out


# --------------------------------------------------------------------------- same state


def _literal_sql(sql: str, params: list[str], values: dict[str, str]) -> str:
    """What Athena runs: each ``?`` replaced by its execution parameter (a SQL literal),
    the machine's JSONata evaluated with ``values`` as its variables."""
    literals = [str(evaluate(p.strip()[2:-2], values, "machine")) for p in params]
    spans = saved._placeholder_spans(sql, "machine")
    assert len(spans) == len(literals)
    for (start, end), literal in reversed(list(zip(spans, literals, strict=True))):
        sql = sql[:start] + literal + sql[end:]
    return sql


def _run_machine_day(con: duckdb.DuckDBPyConnection, inner: dict[str, Any],
                     values: dict[str, Any]) -> None:
    """The Map iteration of one table, its Athena statements run on DuckDB: the
    candidates, each checked newest first until one is not stale, then the build."""
    def run(state: str) -> list[tuple[Any, ...]]:
        args = inner[state]["Arguments"]
        sql = _literal_sql(args["QueryString"], args.get("ExecutionParameters", []), values)
        saved.install_views_for(sql, con)
        return con.execute(saved.transpile(sql, state)).fetchall()

    header = {"Data": [{"VarCharValue": "snapshot_ms"}, {"VarCharValue": "made_at"}]}
    values["candidates"] = [header, *({"Data": [{"VarCharValue": str(ms)},
                                                {"VarCharValue": made}]}
                                      for ms, made in run("FindBase"))]
    values["base"], values["baseMadeAt"] = snapshots.NO_SNAPSHOT, snapshots.NO_BUILD
    for index in range(1, len(values["candidates"])):
        values["next"] = index
        ((_, stale),) = run("CheckCandidate")
        if not stale:
            ms, made = (d["VarCharValue"] for d in values["candidates"][index]["Data"])
            values["base"], values["baseMadeAt"] = iso_ms(int(ms)), made
            break
    run("WriteSnapshot")
    run("MarkComplete")


def test_athena_snapshot_sql_on_duckdb_writes_what_ddbtrail_snapshot_writes(
        tmp_path: Path, jsonl: Any) -> None:
    _, _, body = machine(jsonl)
    inner = body["States"]["Tables"]["ItemProcessor"]["States"]
    work = Workload()
    rows = [work.op("a", "put", T0, 1, T0), work.op("b", "put", T0 + 5, 2, T0 + 5),
            work.op("a", "update", T0 + 60, 3, T0 + 60),
            work.op("c", "backfill", T0 + 70, 9, T0 + 70),
            work.op("b", "ttl", T0 + DAY, 0, T0 + DAY),
            work.op("a", "delete", T0 + DAY + 1, 0, T0 + DAY + 1),
            work.op("a", "put", T0 + DAY + 2, 4, T0 + DAY + 2),
            work.op("d", "put", T0 + 2 * DAY, 5, T0 + 2 * DAY)]
    rows.append(rows[2])  # a duplicate delivery
    cli_lake = write(tmp_path / "cli", rows, "part")
    shutil.copytree(tmp_path / "cli", tmp_path / "athena")
    athena_lake = Lake.open(str(tmp_path / "athena"))
    con = connect(athena_lake, table_name=TABLE)
    # Athena's snapshots is a table that INSERT INTO appends to.
    con.execute("DROP VIEW snapshots")
    con.execute("CREATE TABLE snapshots AS SELECT * FROM _snapshots_0")
    try:
        for day, at_s in enumerate((T0 + DAY - 1, T0 + 3 * DAY - 1)):
            made_ms = (T0 + (day + 3) * DAY) * 1000
            snapshots.build(cli_lake, TABLE, at_s * 1000, now_ms=made_ms,
                            settle_seconds=snapshots.S3_SETTLE_SECONDS)
            values = {"table": TABLE, "at": iso_ms(at_s * 1000), "madeAt": iso_ms(made_ms),
                      "visibleBefore": iso_ms(made_ms - snapshots.S3_SETTLE_SECONDS * 1000)}
            _run_machine_day(con, inner, values)
            if day == 1:  # the second day builds on the first, on both paths
                assert values["base"] == iso_ms((T0 + DAY - 1) * 1000)
            cols = ", ".join(f'"{c}"' for c in SNAPSHOT_COLUMN_NAMES)
            got = con.execute(f"SELECT {cols} FROM snapshots WHERE made_at = ? "
                              "ORDER BY row_kind, item_key, source_dt",
                              [iso_ms(made_ms)]).fetchall()
            want = _cli_rows(cli_lake, iso_ms(made_ms))
            assert got == want
            assert any(r[SNAPSHOT_COLUMN_NAMES.index("row_kind")] == "item" for r in got)
    finally:
        con.close()


def _cli_rows(lake: Lake, made_at: str) -> list[tuple[Any, ...]]:
    out = []
    for f in lake.snapshot_files(TABLE):
        table = pq.read_table(f.path)
        for r in table.to_pylist():
            if r["made_at"] == made_at:
                r["table_name"], r["snapshot_date"] = f.table_name, f.dt
                out.append(tuple(r[c] for c in SNAPSHOT_COLUMN_NAMES))
    return sorted(out, key=lambda r: (r[SNAPSHOT_COLUMN_NAMES.index("row_kind")],
                                      r[SNAPSHOT_COLUMN_NAMES.index("item_key")],
                                      r[SNAPSHOT_COLUMN_NAMES.index("source_dt")] or ""))
