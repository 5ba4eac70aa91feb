"""The default deployment (``python infra/app.py`` with no context) compacts its lake: a
daily schedule starts the compaction state machine, whose Distributed Map invokes the
partition Lambda; failures alarm; the Lambda reaches only the lake prefix of the lake bucket.
JSON Lines gets the same compaction, and a warning at synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from infra import constants as C
from infra.constructs.compaction import HANDLER, definition
from tests.infra.test_infra_app import JSONL, flat, statements

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def default(synth_once: Any) -> Any:
    return synth_once("default", {})


@pytest.fixture(scope="module")
def jsonl(synth_once: Any) -> Any:
    return synth_once("jsonl", JSONL)


def resource(synth: Any, type_: str, prefix: str) -> tuple[str, dict[str, Any]]:
    [(lid, found)] = [(k, r) for k, r in synth.resources(type_).items() if k.startswith(prefix)]
    return lid, found["Properties"]


def test_the_default_synth_is_clean(default: Any) -> None:
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

    assert default.returncode == 0, default.stderr[-3000:]
    assert "warning" not in default.stderr
    report = json.loads((default.outdir / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []
    text = (default.outdir / "ddbtrail.template.json").read_text()
    assert [str(m) for m in lint(text, config=ManualArgs(regions=["us-east-1"]))] == []


def test_a_daily_schedule_starts_the_machine_that_maps_the_partition_lambda(
        default: Any) -> None:
    fn_id, fn = resource(default, "AWS::Lambda::Function", "CompactionPartitionFunction")
    machine_id, machine = resource(default, "AWS::StepFunctions::StateMachine",
                                   "CompactionMachine")
    _, schedule = resource(default, "AWS::Scheduler::Schedule", "CompactionSchedule")
    assert schedule["ScheduleExpression"] == C.COMPACTION_SCHEDULE
    assert schedule["Target"]["Arn"] == {"Ref": machine_id}
    assert json.loads(schedule["Target"]["Input"]) == {}
    # The deployed definition is definition() with the function's ARN in it.
    parts = machine["DefinitionString"]["Fn::Join"][1]
    assert {"Fn::GetAtt": [fn_id, "Arn"]} in parts
    text = "".join(p if isinstance(p, str) else "FUNCTION" for p in parts)
    assert json.loads(text) == definition("FUNCTION")
    assert json.loads(text)["States"]["Compact"]["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert fn["Handler"] == HANDLER
    assert fn["MemorySize"] == C.COMPACTION_MEMORY_MB
    assert fn["Timeout"] == C.COMPACTION_TIMEOUT_SECONDS
    assert fn["Architectures"] == [C.LAMBDA_ARCHITECTURE]
    assert flat(fn["Environment"]["Variables"]["LAKE_URI"]).endswith("/lake/")


def test_pyarrow_comes_from_the_sdk_for_pandas_layer_of_the_stack_region(default: Any) -> None:
    _, fn = resource(default, "AWS::Lambda::Function", "CompactionPartitionFunction")
    [mapping_id] = [k for k in default.template["Mappings"] if "SdkForPandas" in k]
    mapping = default.template["Mappings"][mapping_id]
    assert mapping["us-east-1"]["arn"] == ("arn:aws:lambda:us-east-1:336392948345:layer:"
                                           "AWSSDKPandas-Python312-Arm64:29")
    assert len(mapping) == len(C.SDK_FOR_PANDAS_LAYERS)
    assert {"Fn::FindInMap": [mapping_id, {"Ref": "AWS::Region"}, "arn"]} in fn["Layers"]


def test_failed_timed_out_or_aborted_runs_alarm_on_the_topic(default: Any) -> None:
    machine_id, _ = resource(default, "AWS::StepFunctions::StateMachine", "CompactionMachine")
    alarms = [a["Properties"] for a in default.resources("AWS::CloudWatch::Alarm").values()
              if {"Name": "StateMachineArn", "Value": {"Ref": machine_id}}
              in a["Properties"]["Dimensions"]]
    assert {a["MetricName"] for a in alarms} == {
        "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    [topic] = default.resources("AWS::SNS::Topic")
    assert all(a["AlarmActions"] == [{"Ref": topic}] for a in alarms)


def test_the_function_reaches_only_the_lake_prefix_of_the_lake_bucket(default: Any) -> None:
    [bucket] = [k for k in default.resources("AWS::S3::Bucket") if k.startswith("LakeBucket")]
    [key] = [k for k in default.resources("AWS::KMS::Key") if k.startswith("LakeKey")]
    _, policy = resource(default, "AWS::IAM::Policy", "CompactionFunctionPolicy")
    by_sid = {s["Sid"]: s for s in statements(policy["PolicyDocument"])}
    assert set(by_sid) == {"ListLake", "CompactLake", "LakeKeyViaS3", "Logs"}
    assert flat(by_sid["ListLake"]["Resource"]) == f"<{bucket}.Arn>"
    assert by_sid["ListLake"]["Condition"] == {"StringLike": {"s3:prefix": ["lake/*", "lake"]}}
    assert flat(by_sid["CompactLake"]["Resource"]) == f"<{bucket}.Arn>/lake/*"
    # Evidence is on by default: the digest function deletes what a compaction replaced.
    assert sorted(by_sid["CompactLake"]["Action"]) == ["s3:GetObject", "s3:PutObject"]
    _, fn = resource(default, "AWS::Lambda::Function", "CompactionPartitionFunction")
    assert fn["Environment"]["Variables"]["EVIDENCE"] == "true"
    assert by_sid["LakeKeyViaS3"]["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
    # The machine may invoke only this function and start only its own children.
    fn_id, _ = resource(default, "AWS::Lambda::Function", "CompactionPartitionFunction")
    machine_id, _ = resource(default, "AWS::StepFunctions::StateMachine", "CompactionMachine")
    _, machine_policy = resource(default, "AWS::IAM::Policy", "CompactionPolicy")
    by_sid = {s["Sid"]: s for s in statements(machine_policy["PolicyDocument"])}
    assert by_sid["InvokeCompaction"]["Resource"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    assert by_sid["DistributedMapChildren"]["Resource"] == {"Ref": machine_id}
    assert flat(by_sid["DistributedMapRuns"]["Resource"]).endswith(
        f":execution:<{machine_id}.Name>/*")


def test_the_asset_holds_the_handler_and_imports_it_with_the_layer_s_libraries(
        default: Any) -> None:
    """The asset is the handler and the package (pyarrow comes from the layer: here the
    test environment's); importing it reads its settings once."""
    _, fn = resource(default, "AWS::Lambda::Function", "CompactionPartitionFunction")
    asset = default.asset_dir(fn["Code"])
    assert (asset / "compact_partition.py").is_file()
    assert (asset / "ddbtrail" / "lake" / "scheduled.py").is_file()
    code = ("import compact_partition as h; print(h.SETTINGS.lake_uri, h.SETTINGS.max_bytes)")
    env = dict(os.environ, PYTHONPATH=str(asset), LAKE_URI="s3://b/lake",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(C.COMPACTION_MEMORY_MB),
               AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=asset, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    uri, max_bytes = proc.stdout.split()
    assert uri == "s3://b/lake" and 250 * 2**20 < int(max_bytes) < 300 * 2**20


def test_json_lines_is_compacted_too_and_warned_about_at_synth(jsonl: Any) -> None:
    assert jsonl.returncode == 0, jsonl.stderr[-3000:]
    assert resource(jsonl, "AWS::StepFunctions::StateMachine", "CompactionMachine")
    assert "warning: format=jsonl" in jsonl.stderr
    assert "use format=parquet for large lakes" in jsonl.stderr
