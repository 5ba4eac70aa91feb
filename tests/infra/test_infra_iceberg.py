"""``-c format=iceberg -c expire_days=400``: a Glue Iceberg table, Firehose's Iceberg
destination, Glue's table optimizers, retention by the table's own DELETE, least-privilege
roles; cfn-lint and cdk-nag clean. One synth (see conftest)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ddbtrail.catalog import glue as catalog
from ddbtrail.core import row

pytestmark = pytest.mark.infra

# expire_days: the table's own retention (DELETE, then snapshot expiry), never S3 expiry.
ICEBERG = {"format": "iceberg", "tables": "orders", "expire_days": "400"}


@pytest.fixture(scope="module")
def iceberg(synth_once: Any) -> Any:
    return synth_once("iceberg", ICEBERG)


def _one(synth: Any, type_: str) -> dict[str, Any]:
    found = list(synth.resources(type_).values())
    if type_ == "AWS::Glue::Table":  # the changes table; the snapshots table sits beside it
        found = [r for r in found if r["Properties"]["TableInput"]["Name"] == "changes"]
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    props: dict[str, Any] = found[0]["Properties"]
    return props


def _statements(synth: Any, role_logical_id: str) -> list[dict[str, Any]]:
    out = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        roles = policy["Properties"]["Roles"]
        if {"Ref": role_logical_id} in roles:
            stmts = policy["Properties"]["PolicyDocument"]["Statement"]
            out += stmts if isinstance(stmts, list) else [stmts]
    return out


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_synth_is_cdk_nag_and_cfn_lint_clean(iceberg: Any) -> None:
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

    assert iceberg.returncode == 0, iceberg.stderr[-3000:]
    report = json.loads((iceberg.outdir / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []
    text = (iceberg.outdir / "ddbtrail.template.json").read_text()
    assert [str(m) for m in lint(text, config=ManualArgs(regions=["us-east-1"]))] == []


def test_glue_table_is_iceberg_partitioned_and_sorted_as_the_row_schema(iceberg: Any) -> None:
    table = _one(iceberg, "AWS::Glue::Table")
    ice = table["OpenTableFormatInput"]["IcebergInput"]
    assert (ice["MetadataOperation"], ice["Version"]) == ("CREATE", "2")
    spec = ice["IcebergTableInput"]
    fields = spec["Schema"]["Fields"]
    assert [f["Name"] for f in fields] == list(row.COLUMN_NAMES)
    assert [f["Required"] for f in fields] == [not c.nullable for c in row.COLUMNS]
    by_id = {f["Id"]: f["Name"] for f in fields}
    assert [(by_id[p["SourceId"]], p["Transform"]) for p in spec["PartitionSpec"]["Fields"]] \
        == [("table_name", "identity"), ("dt", "identity")]
    assert [by_id[s["SourceId"]] for s in spec["WriteOrder"]["Fields"]] == [
        "item_key", "sequence_number"]
    assert spec["Properties"]["write.delete.isolation-level"] == "snapshot"
    assert table["TableInput"]["Name"] == "changes"
    assert "PartitionKeys" not in table["TableInput"]  # Iceberg partitions, not Hive's


def test_firehose_writes_the_iceberg_table_with_s3_error_output(iceberg: Any) -> None:
    stream = _one(iceberg, "AWS::KinesisFirehose::DeliveryStream")
    assert "ExtendedS3DestinationConfiguration" not in stream
    dest = stream["IcebergDestinationConfiguration"]
    [route] = dest["DestinationTableConfigurationList"]
    assert (route["DestinationDatabaseName"], route["DestinationTableName"]) == (
        "ddbtrail", "changes")
    assert "UniqueKeys" not in route  # inserts only: every change is a new row
    assert _text(dest["CatalogConfiguration"]["CatalogArn"]).endswith(':catalog"]]}')
    assert dest["s3BackupMode"] == "FailedDataOnly"
    assert "firehose-errors/" in dest["S3Configuration"]["ErrorOutputPrefix"]
    assert "ProcessingConfiguration" not in dest  # one row per record: no de-aggregation
    assert dest["BufferingHints"]["SizeInMBs"] == 128
    # The capture sends one row per record.
    envs = [f["Properties"]["Environment"]["Variables"]
            for f in iceberg.resources("AWS::Lambda::Function").values()
            if f["Properties"].get("Handler") == "stream_to_firehose.handler"]
    assert envs and all(e["PACK_ROWS"] == "false" for e in envs)


def test_firehose_role_reaches_only_its_table(iceberg: Any) -> None:
    stream = _one(iceberg, "AWS::KinesisFirehose::DeliveryStream")
    role = stream["IcebergDestinationConfiguration"]["RoleARN"]["Fn::GetAtt"][0]
    stmts = {s.get("Sid"): s for s in _statements(iceberg, role)}
    glue = stmts["IcebergTable"]
    assert sorted(glue["Action"]) == ["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"]
    assert any(":table/ddbtrail/changes" in _text(r) for r in glue["Resource"])
    assert "lake/ddbtrail/changes/*" in _text(stmts["IcebergFiles"]["Resource"])
    assert all(s.get("Resource") != "*" for s in stmts.values())


def test_glue_optimizers_compact_by_sort_expire_snapshots_and_delete_orphans(
        iceberg: Any) -> None:
    optimizers = {o["Properties"]["Type"]: o for o in
                  iceberg.resources("AWS::Glue::TableOptimizer").values()}
    assert set(optimizers) == {"compaction", "retention", "orphan_file_deletion"}
    for o in optimizers.values():
        props = o["Properties"]
        assert (props["DatabaseName"], props["TableName"]) == ("ddbtrail", "changes")
        assert props["TableOptimizerConfiguration"]["Enabled"] is True
        table_id = next(iter(iceberg.resources("AWS::Glue::Table")))
        assert table_id in o["DependsOn"]
    config = optimizers["compaction"]["Properties"]["TableOptimizerConfiguration"]
    assert config["CompactionConfiguration"]["IcebergConfiguration"]["Strategy"] == "sort"
    retention = optimizers["retention"]["Properties"]["TableOptimizerConfiguration"]
    assert retention["RetentionConfiguration"]["IcebergConfiguration"]["CleanExpiredFiles"]
    role = config["RoleArn"]["Fn::GetAtt"][0]
    trust = iceberg.template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
    assert _text(trust).count("glue.amazonaws.com") == 1
    stmts = {s["Sid"]: s for s in _statements(iceberg, role)}
    assert "lake/ddbtrail/changes/*" in _text(stmts["TableFiles"]["Resource"])
    assert all("/aws-glue/iceberg-" in _text(r) for r in stmts["Logs"]["Resource"])


def test_alarms_watch_the_iceberg_delivery(iceberg: Any) -> None:
    metrics = {a["Properties"].get("MetricName") for a in
               iceberg.resources("AWS::CloudWatch::Alarm").values()}
    assert {"DeliveryToIceberg.Success", "DeliveryToIceberg.DataFreshness",
            "DeliveryToIceberg.FailedRowCount"} <= metrics
    assert "DeliveryToS3.Success" not in metrics


def test_packed_rows_are_refused_with_iceberg(tmp_path: Any, app_runner: Any) -> None:
    result = app_runner({**ICEBERG, "pack_rows": "true"}, tmp_path / "cdk.out")
    assert result.returncode == 2
    assert "pack_rows=true: Firehose's Iceberg destination takes one JSON row" in result.stderr


def test_glue_iceberg_fields_are_the_pyiceberg_schema() -> None:
    schema = row.iceberg_schema()
    fields = catalog.iceberg_fields()
    assert [(f["Id"], f["Name"], f["Required"]) for f in fields] == [
        (f.field_id, f.name, f.required) for f in schema.fields]
    assert all(f["Type"] == str(pf.field_type) for f, pf in zip(fields, schema.fields, strict=True)
               if f["Name"] != "changed_attributes")
    changed = next(f for f in fields if f["Name"] == "changed_attributes")
    element = schema.find_field("changed_attributes").field_type
    assert json.loads(changed["Type"]) == {"type": "list", "element-id": element.element_id,
                                           "element": "string", "element-required": False}


def test_s3_lifecycle_never_archives_or_expires_what_the_table_reads(iceberg: Any) -> None:
    """Every file under lake/ (data, manifests, metadata) stays readable by Athena; only the
    prefixes no table reads are archived."""
    all_rules = [bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
                 for bucket in iceberg.resources("AWS::S3::Bucket").values()]
    [rules] = [r for r in all_rules if any(x["Id"].startswith("iceberg-table") for x in r)]
    covering_lake = [r for r in rules if "lake/".startswith(r.get("Prefix", ""))]
    assert [r["Id"] for r in covering_lake] == ["iceberg-table-tier-only"]
    [lake_rule] = covering_lake
    assert [t["StorageClass"] for t in lake_rule["Transitions"]] == ["STANDARD_IA"]
    assert "ExpirationInDays" not in lake_rule
    archived = {r["Prefix"] for r in rules if any(
        t["StorageClass"] == "GLACIER_IR" for t in r.get("Transitions", []))}
    assert archived == {"spill/", "quarantine/", "firehose-errors/"}


def test_lake_expiry_under_the_table_is_never_s3s_but_the_other_prefixes_expire(
        iceberg: Any) -> None:
    all_rules = [bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
                 for bucket in iceberg.resources("AWS::S3::Bucket").values()]
    [rules] = [r for r in all_rules if any(x["Id"].startswith("iceberg-table") for x in r)]
    expiring = {r.get("Prefix"): r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r}
    assert expiring == {"spill/": 400, "quarantine/": 400, "firehose-errors/": 400}


def _retention_definition(iceberg: Any) -> tuple[str, dict[str, Any]]:
    [(lid, machine)] = [(k, r) for k, r in iceberg.resources(
        "AWS::StepFunctions::StateMachine").items() if k.startswith("Retention")]
    body = machine["Properties"]["DefinitionString"]
    text = body if isinstance(body, str) else "".join(
        p if isinstance(p, str) else "" for p in body["Fn::Join"][1])
    return lid, json.loads(text)


def test_retention_deletes_old_rows_through_athena_daily_and_alarms(iceberg: Any) -> None:
    from infra import constants as C
    from infra.constructs.maintenance import ATHENA_SYNC
    from infra.constructs.retention import definition
    from tests.infra.asl import Interpreter

    lid, body = _retention_definition(iceberg)
    assert body == definition(database=catalog.DATABASE_NAME, table=catalog.TABLE_NAME,
                              workgroup="ddbtrail", expire_days=400)
    [schedule] = [r["Properties"] for r in iceberg.resources("AWS::Scheduler::Schedule").values()
                  if r["Properties"]["Target"]["Arn"] == {"Ref": lid}]
    assert schedule["ScheduleExpression"] == C.RETENTION_SCHEDULE
    alarmed = {a["Properties"]["MetricName"] for a in iceberg.resources(
        "AWS::CloudWatch::Alarm").values()
        if {"Name": "StateMachineArn", "Value": {"Ref": lid}} in a["Properties"]["Dimensions"]}
    assert alarmed == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    # Run: the DELETE names the table and the UTC date 400 days before the run.
    sent: list[dict[str, Any]] = []
    Interpreter(body, {ATHENA_SYNC: lambda args: sent.append(args) or {}}).execute(
        {}, start_time="2026-12-08T01:15:00.000Z")
    [query] = sent
    assert query["QueryString"] == (f'DELETE FROM "{catalog.DATABASE_NAME}".'
                                    f'"{catalog.TABLE_NAME}" WHERE dt < \'2025-11-03\'')
    assert query["WorkGroup"] == "ddbtrail"


def test_retention_role_reaches_only_the_table_the_workgroup_and_results(iceberg: Any) -> None:
    [role] = [k for k in iceberg.resources("AWS::IAM::Role") if k.startswith("RetentionRole")]
    text = _text(_statements(iceberg, role))
    assert "s3:DeleteObject" not in text
    assert "workgroup/ddbtrail" in text and "table/ddbtrail/changes" in text


def test_an_iceberg_lake_gets_no_lambda_compaction(iceberg: Any) -> None:
    """The Glue optimizer compacts an Iceberg table; the Hive compaction is not deployed."""
    assert not [k for k in iceberg.template["Resources"] if k.startswith("Compaction")]
