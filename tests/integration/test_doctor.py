"""``ddbtrail doctor`` against moto: a healthy deployment passes, and each injected fault
is named with its fix.

The stack is a CloudFormation stack in moto holding the resource types the checks find
through it (table, mapping, on-failure queue, state machine) and the stack's outputs;
Firehose, Glue, Athena and the metrics are made beside it, as the real stack names them.
moto cannot express some states: a mapping's LastProcessingResult (always absent), and
metrics only exist when put here.
"""

from __future__ import annotations

import datetime as dt_mod
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ddbtrail.catalog import glue as catalog
from ddbtrail.core.row import arrow_schema
from ddbtrail.lake.files import Lake
from infra import constants as C
from tests.cli import run_cli

STACK = "ddbtrail"
TABLE = "Orders"
REGION = "us-east-1"
BUCKET = "lake-bucket"
DELIVERY = "ddbtrail-changes"
MACHINE = "ddbtrail-maintenance"
ROLE = "arn:aws:iam::123456789012:role/ddbtrail"
FUNCTION = "ddbtrail-OrdersCapture"
SUCCEED = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
FAIL = {"StartAt": "Broken", "States": {"Broken": {"Type": "Fail", "Error": "Athena.Failed",
                                                   "Cause": "query failed"}}}


def _template(view_type: str, *, table_name: str = TABLE, bucket: str = BUCKET,
              name: str = "ddbtrail") -> dict[str, Any]:
    table = {"TableName": table_name, "BillingMode": "PAY_PER_REQUEST",
             "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
             "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
             "StreamSpecification": {"StreamViewType": view_type}}
    return {
        "Resources": {
            "OrdersTable": {"Type": "AWS::DynamoDB::Table", "Properties": table},
            "OrdersOnFailure": {"Type": "AWS::SQS::Queue",
                                "Properties": {"QueueName": f"{name}-orders-on-failure"}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}},
            "OrdersFunction": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": f"{name}-OrdersCapture", "Runtime": "python3.12",
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context):\n    return None\n"}}},
            "OrdersMapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                "EventSourceArn": {"Fn::GetAtt": ["OrdersTable", "StreamArn"]},
                "FunctionName": {"Ref": "OrdersFunction"}, "StartingPosition": "TRIM_HORIZON",
                "DestinationConfig": {"OnFailure": {
                    "Destination": {"Fn::GetAtt": ["OrdersOnFailure", "Arn"]}}}}},
            # Same name as the one made through the API (moto runs only those).
            "Maintenance": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
                "StateMachineName": f"{name}-maintenance",
                "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "DefinitionString": json.dumps(SUCCEED)}},
        },
        "Outputs": {
            "LakeUri": {"Value": f"s3://{bucket}/{C.LAKE_PREFIX}"},
            "DeliveryStreamName": {"Value": DELIVERY},
            "AthenaWorkGroup": {"Value": C.DEFAULT_WORKGROUP},
            "GlueDatabase": {"Value": C.DEFAULT_DATABASE},
        },
    }


def _row(event_id: str, dt: str) -> dict[str, Any]:
    key = json.dumps({"pk": event_id}, separators=(",", ":"))
    return {
        "schema_version": 1, "event_id": event_id, "sequence_number": "100",
        "action": "INSERT", "item_key": key, "keys": key, "old_image": None,
        "new_image": key, "type_hints": None, "changed_attributes": ["pk"],
        "timestamp": 1_741_000_000_000, "event_time": f"{dt}T00:00:00.000Z",
        "ingested_at": f"{dt}T00:00:01.000Z", "stream_view_type": "NEW_AND_OLD_IMAGES",
        "size_bytes": 40, "ttl_delete": False, "user_identity": None,
        "event_source": "aws:dynamodb", "aws_region": REGION, "spill_uri": None,
        "snapshot_id": None,
    }


def write_partition(lake: Lake, dt: str, *, age_hours: float = 0.0) -> Path:
    """One Firehose-like Parquet file in TABLE's partition ``dt``, written ``age_hours`` ago."""
    path = Path(lake.partition(TABLE, dt)) / f"{DELIVERY}-1-{dt}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([_row(f"e-{dt}", dt)],
                                        schema=arrow_schema(include_partitions=False)), path)
    when = time.time() - age_hours * 3600
    os.utime(path, (when, when))
    return path


def today() -> str:
    return dt_mod.datetime.now(dt_mod.UTC).strftime("%Y-%m-%d")


def days_ago(n: int) -> str:
    return (dt_mod.datetime.now(dt_mod.UTC) - dt_mod.timedelta(days=n)).strftime("%Y-%m-%d")


@dataclass
class Deployed:
    """A healthy trail in moto, and the handles that inject faults into it."""

    lake: Lake
    mapping: str
    queue_url: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    def run_machine(self, definition: dict[str, Any]) -> str:
        """One execution of the maintenance machine with ``definition``; its final status."""
        sfn = self.client("stepfunctions")
        arn = f"arn:aws:states:{REGION}:123456789012:stateMachine:{MACHINE}"
        sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))
        run = sfn.start_execution(stateMachineArn=arn, name=f"run-{time.time_ns()}")
        for _ in range(200):  # moto runs it on a thread; bounded wait for the verdict
            status = str(sfn.describe_execution(executionArn=run["executionArn"])["status"])
            if status != "RUNNING":
                return status
            time.sleep(0.05)
        raise AssertionError("the maintenance execution did not finish")

    def doctor(self, capsys: pytest.CaptureFixture[str],
               *args: str) -> tuple[int, list[dict[str, Any]], str]:
        """Run ``ddbtrail doctor -o json``; (exit code, one dict per check, stderr)."""
        code, out, err = run_cli(["doctor", "--stack", STACK, "--region", REGION, "--lake",
                                  self.lake.uri, "--output", "json", *args], capsys)
        return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


@pytest.fixture
def view_type() -> str:
    """The captured table's stream view type (moto cannot change it once set)."""
    return "NEW_AND_OLD_IMAGES"


@pytest.fixture
def deployed(tmp_path: Path, view_type: str) -> Iterator[Deployed]:
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        import boto3

        def client(service: str) -> Any:
            return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

        client("s3").create_bucket(Bucket=BUCKET)
        client("stepfunctions").create_state_machine(
            name=MACHINE, roleArn=ROLE, definition=json.dumps(SUCCEED))
        cfn = client("cloudformation")
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(_template(view_type)))
        resources = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        client("firehose").create_delivery_stream(
            DeliveryStreamName=DELIVERY, ExtendedS3DestinationConfiguration={
                "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}",
                "Prefix": C.FIREHOSE_PREFIX, "ErrorOutputPrefix": C.ERROR_PREFIX})
        glue = client("glue")
        glue.create_database(DatabaseInput=catalog.database_input(C.DEFAULT_DATABASE))
        location = f"s3://{BUCKET}/{C.LAKE_PREFIX}"
        glue.create_table(DatabaseName=C.DEFAULT_DATABASE,
                          TableInput=catalog.table_input("parquet", location, [TABLE]))
        glue.create_table(DatabaseName=C.DEFAULT_DATABASE,
                          TableInput=catalog.snapshot_table_input(location, [TABLE]))
        client("athena").create_work_group(Name=C.DEFAULT_WORKGROUP)
        # A minute back, as AWS publishes them: moto truncates EndTime to the second, so a
        # point from the same second as the check would fall outside its window.
        now = dt_mod.datetime.now(dt_mod.UTC) - dt_mod.timedelta(minutes=1)
        cw = client("cloudwatch")
        cw.put_metric_data(Namespace="AWS/Firehose", MetricData=[{
            "MetricName": "DeliveryToS3.Success", "Value": 1.0, "Timestamp": now,
            "Dimensions": [{"Name": "DeliveryStreamName", "Value": DELIVERY}]}])
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[{
            "MetricName": "IteratorAge", "Value": 1_200.0, "Timestamp": now,
            "Unit": "Milliseconds", "Dimensions": [{"Name": "FunctionName", "Value": FUNCTION}]}])
        lake = Lake.open(str(tmp_path / "lake"))
        write_partition(lake, today(), age_hours=0.5)
        trail = Deployed(lake=lake, mapping=ids["OrdersMapping"], queue_url=ids["OrdersOnFailure"])
        assert trail.run_machine(SUCCEED) == "SUCCEEDED"
        yield trail


def by_name(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in checks}


def test_healthy_deployment_passes_every_check(deployed: Deployed,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, checks, err = deployed.doctor(capsys)
    assert (code, err) == (0, "")
    found = by_name(checks)
    assert set(found) == {
        f"stream {TABLE}", f"mapping {TABLE}", f"on-failure queue {TABLE}",
        "firehose delivery", "firehose errors", f"freshness {TABLE}",
        f"glue table {C.DEFAULT_DATABASE}.{catalog.TABLE_NAME}",
        f"glue table {C.DEFAULT_DATABASE}.{catalog.SNAPSHOT_TABLE_NAME}",
        "workgroup", f"maintenance {MACHINE}", "compaction lag"}
    assert {c["check"]: c["status"] for c in checks if c["status"] != "ok"} == {}
    assert "iterator age 1 s" in found[f"mapping {TABLE}"]["detail"]
    assert all(c["fix"] == "" for c in checks)


def test_table_output_prints_one_line_per_check(deployed: Deployed,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["doctor", "--stack", STACK, "--region", REGION, "--lake",
                            deployed.lake.uri], capsys)
    _, checks, _ = deployed.doctor(capsys)
    lines = out.splitlines()
    assert code == 0
    assert len(lines) == len(checks)
    assert all(line.startswith("OK") for line in lines)


def _stream_off(d: Deployed) -> None:
    d.client("dynamodb").update_table(TableName=TABLE,
                                      StreamSpecification={"StreamEnabled": False})


def _mapping_disabled(d: Deployed) -> None:
    d.client("lambda").update_event_source_mapping(UUID=d.mapping, Enabled=False)


def _dlq_messages(d: Deployed) -> None:
    for n in range(2):
        d.client("sqs").send_message(QueueUrl=d.queue_url, MessageBody=json.dumps({"n": n}))


def _stale_partitions(d: Deployed) -> None:
    for f in d.lake.data_files(TABLE):
        os.remove(f.path)
    write_partition(d.lake, days_ago(3), age_hours=70)


def _missing_glue_table(d: Deployed) -> None:
    d.client("glue").delete_table(DatabaseName=C.DEFAULT_DATABASE, Name=catalog.TABLE_NAME)


def _projection_without_table(d: Deployed) -> None:
    glue = d.client("glue")
    glue.delete_table(DatabaseName=C.DEFAULT_DATABASE, Name=catalog.TABLE_NAME)
    glue.create_table(DatabaseName=C.DEFAULT_DATABASE, TableInput=catalog.table_input(
        "parquet", f"s3://{BUCKET}/{C.LAKE_PREFIX}", ["Customers"]))


def _firehose_errors(d: Deployed) -> None:
    d.client("s3").put_object(
        Bucket=BUCKET, Key=f"firehose-errors/processing-failed/dt={today()}/x.gz", Body=b"{}")


def _iterator_behind(d: Deployed) -> None:
    d.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[{
        "MetricName": "IteratorAge", "Value": 3_600_000.0,
        "Timestamp": dt_mod.datetime.now(dt_mod.UTC) - dt_mod.timedelta(minutes=1),
        "Unit": "Milliseconds",
        "Dimensions": [{"Name": "FunctionName", "Value": FUNCTION}]}])


def _maintenance_failed(d: Deployed) -> None:
    assert d.run_machine(FAIL) == "FAILED"


def _workgroup_missing(d: Deployed) -> None:
    d.client("athena").delete_work_group(WorkGroup=C.DEFAULT_WORKGROUP)


FAULTS: dict[str, tuple[Callable[[Deployed], None], str, str, str]] = {
    # fault: (inject, failing check, what the detail says, what the fix says)
    "stream off": (_stream_off, f"stream {TABLE}", "stream disabled",
                   "StreamViewType=NEW_AND_OLD_IMAGES"),
    "mapping disabled": (_mapping_disabled, f"mapping {TABLE}", "disabled",
                         "update-event-source-mapping"),
    "DLQ messages": (_dlq_messages, f"on-failure queue {TABLE}", "2 failed batch(es)",
                     "ddbtrail redrive --queue-url"),
    "stale partitions": (_stale_partitions, f"freshness {TABLE}", f"dt={days_ago(3)}",
                         f"run the canary (--canary {TABLE})"),
    "missing Glue table": (_missing_glue_table,
                           f"glue table {C.DEFAULT_DATABASE}.{catalog.TABLE_NAME}",
                           "EntityNotFoundException", "redeploy the stack"),
    "projection lacks the table": (_projection_without_table,
                                   f"glue table {C.DEFAULT_DATABASE}.{catalog.TABLE_NAME}",
                                   f"lacks {TABLE}", "redeploy the stack"),
    "Firehose error objects": (_firehose_errors, "firehose errors", "firehose-errors/",
                               "errorMessage"),
    "capture behind": (_iterator_behind, f"mapping {TABLE}", "iterator age 3,600 s",
                       "falling behind"),
    "maintenance failed": (_maintenance_failed, f"maintenance {MACHINE}", "FAILED",
                           "describe-execution"),
    "workgroup missing": (_workgroup_missing, "workgroup", C.DEFAULT_WORKGROUP,
                          "redeploy the stack"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_is_named_with_its_fix(fault: str, deployed: Deployed,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    inject, name, detail, fix = FAULTS[fault]
    inject(deployed)
    code, checks, err = deployed.doctor(capsys)
    failed = {c["check"]: c for c in checks if c["status"] == "fail"}
    assert code == 1, checks
    assert err == ""
    assert name in failed, checks
    assert detail in failed[name]["detail"]
    assert fix in failed[name]["fix"]


@pytest.mark.parametrize("view_type", ["KEYS_ONLY"])
def test_keys_only_view_is_named_with_its_fix(deployed: Deployed,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, checks, _ = deployed.doctor(capsys)
    stream = by_name(checks)[f"stream {TABLE}"]
    assert code == 1
    assert stream["status"] == "fail"
    assert "view type KEYS_ONLY" in stream["detail"]
    assert "StreamEnabled=false" in stream["fix"]
    assert "StreamViewType=NEW_AND_OLD_IMAGES" in stream["fix"]


def test_compaction_lag_is_reported_without_failing(deployed: Deployed,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_partition(deployed.lake, days_ago(5), age_hours=120)
    write_partition(deployed.lake, days_ago(1), age_hours=20)
    code, checks, _ = deployed.doctor(capsys)
    lag = by_name(checks)["compaction lag"]
    assert code == 0
    assert lag["status"] == "warn"
    assert f"oldest {TABLE}/dt={days_ago(5)} (5 day(s))" in lag["detail"]
    assert "2 closed partition(s)" in lag["detail"]
    assert lag["fix"] == f"ddbtrail compact --lake {deployed.lake.uri}"


def test_unknown_stack_is_one_line_and_exit_1(deployed: Deployed,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["doctor", "--stack", "no-such-stack", "--region", REGION], capsys)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "stack no-such-stack" in err
    assert "does not exist" in err


def test_bad_option_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["doctor", "--timeout", "0", "--region", REGION], capsys)
    assert code == 2
    assert "--timeout" in err
    code, _, err = run_cli(["doctor", "--engine", "spark", "--region", REGION], capsys)
    assert code == 2
    assert "--engine" in err


# --------------------------------------------------------------------------- canary


def _canary_table(ddb: Any, name: str, key_type: str = "S") -> None:
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": key_type}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     StreamSpecification={"StreamEnabled": True,
                                          "StreamViewType": "NEW_AND_OLD_IMAGES"})


def _capture_once(table: str, lake: Lake, ddb: Any, streams: Any) -> None:
    from ddbtrail.capture.runner.esm import RunnerSettings
    from ddbtrail.capture.runner.pipeline import build_capture

    build_capture(table, lake, ddb=ddb, streams=streams,
                  settings=RunnerSettings(poll_interval=0, checkpoint_interval=3600)
                  ).run(once=True)


@pytest.mark.parametrize("key_type", ["S", "N"])
def test_canary_waits_until_the_marker_insert_and_remove_are_in_the_lake(
        moto_server: Any, tmp_path: Path, key_type: str) -> None:
    import uuid

    import boto3

    from ddbtrail import health
    from ddbtrail.local.embedded import FAKE_CREDENTIALS
    from ddbtrail.query import lookups

    table = f"canary-{uuid.uuid4().hex[:8]}"
    ddb, streams = moto_server.client("dynamodb"), moto_server.client("dynamodbstreams")
    _canary_table(ddb, table, key_type)
    lake = Lake.open(str(tmp_path / "lake"))
    waits: list[tuple[float, int]] = []

    def deployed_pipeline_runs(elapsed: float, rows: int) -> None:
        waits.append((elapsed, rows))
        _capture_once(table, lake, ddb, streams)  # what the Lambda and Firehose do on AWS

    session = boto3.Session(region_name=moto_server.region, **FAKE_CREDENTIALS)
    result = health.canary(table, lake=lake, timeout_seconds=60, poll_seconds=0.01,
                           on_wait=deployed_pipeline_runs, boto3_session=session,
                           endpoint_url=moto_server.endpoint_url)
    assert result.status == "ok", result
    assert waits and waits[0][1] == 0  # nothing was in the lake before capture ran
    marker = result.detail.split()[1]
    assert [r["action"] for r in lookups.item_history(lake, table, marker)] == [
        "INSERT", "REMOVE"]
    assert ddb.scan(TableName=table)["Count"] == 0  # the marker is gone from the table


def test_canary_fails_naming_what_is_missing_when_nothing_captures(
        moto_server: Any, tmp_path: Path) -> None:
    import uuid

    import boto3

    from ddbtrail import health
    from ddbtrail.local.embedded import FAKE_CREDENTIALS

    table = f"canary-{uuid.uuid4().hex[:8]}"
    _canary_table(moto_server.client("dynamodb"), table)
    session = boto3.Session(region_name=moto_server.region, **FAKE_CREDENTIALS)
    result = health.canary(table, lake=Lake.open(str(tmp_path / "lake")), timeout_seconds=0.2,
                           poll_seconds=0.05, boto3_session=session,
                           endpoint_url=moto_server.endpoint_url)
    assert result.status == "fail"
    assert "holds nothing of marker" in result.detail
    assert "expected INSERT and REMOVE" in result.detail
    assert result.fix


def test_doctor_canary_on_the_cli_with_capture_running(deployed: Deployed, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from ddbtrail.capture.runner.esm import RunnerSettings
    from ddbtrail.capture.runner.pipeline import build_capture

    ddb = deployed.client("dynamodb")
    _canary_table(ddb, "Audit")
    run = build_capture("Audit", deployed.lake, ddb=ddb,
                        streams=deployed.client("dynamodbstreams"), buffer_seconds=0,
                        settings=RunnerSettings(poll_interval=0.05, checkpoint_interval=0.1))
    worker = threading.Thread(target=run.run, daemon=True)
    worker.start()
    try:
        code, checks, err = deployed.doctor(capsys, "--canary", "Audit", "--timeout", "60",
                                            "--poll", "0.2")
    finally:
        run.runner.stop()
        worker.join(timeout=30)
    canary = by_name(checks)["canary Audit"]
    assert code == 0, checks
    assert canary["status"] == "ok"
    assert "written, deleted and queryable" in canary["detail"]
    assert "error" not in err


# ------------------------------------------- states moto cannot put a mapping or stream in


def test_a_problem_result_or_a_transition_state_of_the_mapping(deployed: Deployed) -> None:
    from ddbtrail import health
    from ddbtrail.health import StreamMapping

    real = deployed.client("lambda").get_event_source_mapping(UUID=deployed.mapping)
    problem = StreamMapping(deployed.mapping, TABLE, {
        **real, "LastProcessingResult": "PROBLEM: Function call failed"})
    updating = StreamMapping(deployed.mapping, TABLE, {**real, "State": "Updating"})
    fine = StreamMapping(deployed.mapping, TABLE, {**real, "LastProcessingResult": "OK"})
    bad, wait, ok = health.check_mappings([problem, updating, fine])
    assert (bad.status, wait.status, ok.status) == ("fail", "warn", "ok")
    assert "PROBLEM: Function call failed" in bad.detail
    assert FUNCTION in bad.fix
    assert "last result OK" in ok.detail


def test_a_mapping_left_on_a_replaced_stream(deployed: Deployed) -> None:
    from ddbtrail import health
    from ddbtrail.health import StreamMapping

    real = deployed.client("lambda").get_event_source_mapping(UUID=deployed.mapping)
    old = real["EventSourceArn"].rsplit("/", 1)[0] + "/2020-01-01T00:00:00.000"
    [check] = health.check_streams([StreamMapping(deployed.mapping, TABLE,
                                            {**real, "EventSourceArn": old})])
    assert check.status == "fail"
    assert old in check.detail
    assert "redeploy" in check.fix


def test_an_s3_lake_from_the_stack_output_through_an_endpoint(
        moto_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import uuid

    name = f"trail-{uuid.uuid4().hex[:8]}"
    table, bucket = f"{name}-orders", f"{name}-lake"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    moto_server.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(
        _template("NEW_AND_OLD_IMAGES", table_name=table, bucket=bucket, name=name)))
    lake = Lake.open(f"s3://{bucket}/{C.LAKE_PREFIX}", endpoint_url=moto_server.endpoint_url)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([_row("e-1", today())],
                                        schema=arrow_schema(include_partitions=False)), sink)
    lake.write_atomic(f"{lake.partition(table, today())}/{DELIVERY}-1.parquet",
                      sink.getvalue().to_pybytes())
    code, out, _ = run_cli(["doctor", "--stack", name, "--region", moto_server.region,
                            "--endpoint-url", moto_server.endpoint_url, "-o", "json"], capsys)
    found = by_name([json.loads(line) for line in out.splitlines()])
    assert found[f"freshness {table}"]["status"] == "ok"
    assert f"dt={today()}" in found[f"freshness {table}"]["detail"]
    assert found[f"stream {table}"]["status"] == "ok"
    assert found[f"on-failure queue {table}"]["status"] == "ok"
    # Only the stack's own resources exist here: the rest are named as missing.
    assert code == 1
    assert found["firehose"]["status"] == "fail"
    assert found["workgroup"]["status"] == "fail"


def test_an_iceberg_change_table_is_checked_by_its_columns(deployed: Deployed) -> None:
    from ddbtrail import health

    glue = deployed.client("glue")
    glue.delete_table(DatabaseName=C.DEFAULT_DATABASE, Name=catalog.TABLE_NAME)
    table_input = catalog.iceberg_table(f"s3://{BUCKET}/{C.LAKE_PREFIX}")["TableInput"]
    glue.create_table(DatabaseName=C.DEFAULT_DATABASE, TableInput=table_input)
    changes = f"glue table {C.DEFAULT_DATABASE}.{catalog.TABLE_NAME}"
    assert {c.name: c.status for c in health.check_glue(C.DEFAULT_DATABASE, [TABLE])}[
        changes] == "ok"
    glue.update_table(DatabaseName=C.DEFAULT_DATABASE, TableInput={
        **table_input, "StorageDescriptor": {
            **table_input["StorageDescriptor"],
            "Columns": [c for c in table_input["StorageDescriptor"]["Columns"]
                        if c["Name"] != "sequence_number"]}})
    failed = {c.name: c for c in health.check_glue(C.DEFAULT_DATABASE, [TABLE])}[changes]
    assert failed.status == "fail"
    assert "missing columns sequence_number" in failed.detail
