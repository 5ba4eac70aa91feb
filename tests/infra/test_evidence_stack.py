"""Evidence in the synthesised stack (issue 27): the capture's receipts permission, the
signing key and who may sign, the hourly digest schedule and function, the receipts Glue
table, the reconciliation's states, grants and alarms; ``-c evidence=false`` removes all of
them, and both templates pass cdk-nag and cfn-lint."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.capture.batch import CaptureSettings
from ddbtrail.catalog import glue as catalog
from ddbtrail.evidence import signing
from infra import constants as C
from infra.constructs.evidence import PUT_METRIC_DATA, RECONCILE_STATE
from tests.infra.test_infra_app import (
    JSONL,
    PARQUET,
    FakeSecrets,
    as_list,
    capture_functions,
    flat,
    glue_table,
    prepare_inputs,
    statements,
)
from tests.infra.test_maintenance import machine

pytestmark = pytest.mark.infra

NO_EVIDENCE = {**JSONL, "tables": "orders", "evidence": "false"}


@pytest.fixture(scope="module")
def parquet(synth_once: Any) -> Any:
    return synth_once("parquet", PARQUET, setup=prepare_inputs)


@pytest.fixture(scope="module")
def jsonl(synth_once: Any) -> Any:
    return synth_once("jsonl", JSONL)


@pytest.fixture(scope="module")
def off(synth_once: Any) -> Any:
    synth = synth_once("no-evidence", NO_EVIDENCE)
    assert synth.returncode == 0, synth.stderr[-3000:]
    return synth


@pytest.fixture(params=["parquet", "jsonl"])
def either(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


def lake_bucket(synth: Any) -> str:
    """The lake bucket's logical id (the one Firehose writes to)."""
    (stream,) = synth.resources("AWS::KinesisFirehose::DeliveryStream").values()
    arn = stream["Properties"]["ExtendedS3DestinationConfiguration"]["BucketARN"]
    return str(arn["Fn::GetAtt"][0])


def policies(synth: Any) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in synth.resources("AWS::IAM::Policy").items()}


def role_of(policy: dict[str, Any]) -> str:
    (role,) = policy["Roles"]
    return str(role["Ref"])


def signing_keys(synth: Any) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in synth.resources("AWS::KMS::Key").items()
            if r["Properties"].get("KeyUsage") == "SIGN_VERIFY"}


def digest_functions(synth: Any) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in synth.resources("AWS::Lambda::Function").items()
            if r["Properties"]["Handler"] == C.DIGEST_HANDLER}


def allows(actions: Any, action: str) -> bool:
    """Whether a statement's action patterns (``kms:*``, ``kms:S*``) include ``action``."""
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in as_list(actions))


def evidence_alarms(synth: Any) -> list[dict[str, Any]]:
    return [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("MetricName") in C.RECONCILE_METRICS]


# ----------------------------------------------------------------------------- receipts


def test_capture_and_redrive_may_put_receipts_under_the_receipts_prefix_only(
        parquet: Any) -> None:
    bucket = lake_bucket(parquet)
    receipts = f"<{bucket}.Arn>/{C.RECEIPTS_PREFIX}*"
    capture_roles = {flat(f["Role"]).removesuffix(".Arn>").lstrip("<")
                     for f in capture_functions(parquet).values()}
    writers: dict[str, list[str]] = {}
    for policy in policies(parquet).values():
        for s in statements(policy["PolicyDocument"]):
            if allows(s["Action"], "s3:PutObject"):
                writers.setdefault(role_of(policy), []).extend(
                    flat(r) for r in as_list(s["Resource"]))
    # Each capture role writes receipts, spill and quarantine, nothing else of the bucket.
    assert capture_roles and capture_roles <= set(writers)
    for role in capture_roles:
        assert sorted(writers[role]) == sorted([receipts, f"<{bucket}.Arn>/spill/*",
                                                f"<{bucket}.Arn>/quarantine/*"]), role
    # The redrive (same capture code path, source "redrive") may write receipts too.
    redrive_roles = {role_of(p) for p in policies(parquet).values()
                     if any(s.get("Sid") == "OnFailureQueue"
                            for s in statements(p["PolicyDocument"]))}
    assert len(redrive_roles) == 2
    for role in redrive_roles:
        assert receipts in writers[role]
    # No one but the digest role writes digests; no receipt writer reads the lake.
    assert [r for r, arns in writers.items() if any("/digests/" in a for a in arns)] == [
        next(iter(digest_functions(parquet).values()))["Role"]["Fn::GetAtt"][0]]


def test_capture_environment_names_the_receipts_bucket_and_prefix(either: Any) -> None:
    bucket = lake_bucket(either)
    for fn in capture_functions(either).values():
        env = fn["Environment"]["Variables"]
        assert env["RECEIPTS_BUCKET"] == {"Ref": bucket}
        assert env["RECEIPTS_PREFIX"] == C.RECEIPTS_PREFIX == "lake/_ddbtrail/receipts/"
        # The capture's own parser reads them as the receipts' destination.
        settings = CaptureSettings.from_env({k: flat(v) for k, v in env.items()},
                                            secretsmanager=FakeSecrets())
        assert (settings.receipts_bucket, settings.receipts_prefix) == (
            f"<{bucket}>", C.RECEIPTS_PREFIX)


def flat_all(value: Any) -> Any:
    """``value`` with every CloudFormation string expression as text (see ``flat``)."""
    if isinstance(value, dict) and value.keys() & {"Ref", "Fn::GetAtt", "Fn::Join"}:
        return flat(value)
    if isinstance(value, dict):
        return {k: flat_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [flat_all(v) for v in value]
    return value


def test_receipts_table_is_the_catalog_definition_where_capture_writes(either: Any) -> None:
    tables = [r["Properties"] for r in either.resources("AWS::Glue::Table").values()
              if r["Properties"]["TableInput"]["Name"] == catalog.RECEIPTS_TABLE_NAME]
    assert len(tables) == 1
    got = flat_all(tables[0]["TableInput"])
    bucket = lake_bucket(either)
    # The captured tables, in the order the changes table's projection lists them.
    names = glue_table(either, "changes")["TableInput"]["Parameters"][
        "projection.table_name.values"].split(",")
    assert sorted(names) == sorted(fn["Environment"]["Variables"]["TABLE_NAME"]
                                   for fn in capture_functions(either).values())
    assert got == catalog.receipts_table_input(f"s3://<{bucket}>/{C.LAKE_PREFIX}", names)
    # Athena reads the receipts exactly where the capture puts them.
    template = got["Parameters"]["storage.location.template"]
    assert template.startswith(f"s3://<{bucket}>/{C.RECEIPTS_PREFIX}table=")


# ----------------------------------------------------------------------------- digests


def test_the_signing_key_is_ecc_p256_and_only_the_digest_role_may_sign(either: Any) -> None:
    (key,) = signing_keys(either).values()
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert key["KeySpec"] == signing.KMS_KEY_SPEC  # what KmsSigner signs with
    assert "EnableKeyRotation" not in key  # KMS rotates symmetric keys only
    (digest,) = digest_functions(either).values()
    digest_role = digest["Role"]["Fn::GetAtt"][0]
    signers = []
    for s in statements(key["KeyPolicy"]):
        assert s["Effect"] == "Allow"
        if any(allows(s["Action"], a) for a in ("kms:Sign", "kms:CreateGrant")):
            signers.append(s["Principal"]["AWS"])
    assert signers == [{"Fn::GetAtt": [digest_role, "Arn"]}]
    # The account administers the key and reads its public key for auditors, through IAM.
    root = [s for s in statements(key["KeyPolicy"])
            if flat(s["Principal"]["AWS"]).endswith(":root")]
    assert len(root) == 1
    assert allows(root[0]["Action"], "kms:GetPublicKey")
    assert allows(root[0]["Action"], "kms:PutKeyPolicy")
    # Auditors find it by alias (docs/evidence.md) and by the stack output.
    ((key_id, _),) = signing_keys(either).items()
    aliases = [a["Properties"] for a in either.resources("AWS::KMS::Alias").values()
               if a["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}]
    assert [a["AliasName"] for a in aliases] == ["alias/ddbtrail-digests"]
    assert either.template["Outputs"]["SigningKeyArn"]["Value"] == {
        "Fn::GetAtt": [key_id, "Arn"]}
    # No identity policy hands out signing either (the key policy alone decides).
    for policy in policies(either).values():
        for s in statements(policy["PolicyDocument"]):
            assert not allows(s["Action"], "kms:Sign"), s


def test_an_hourly_schedule_runs_the_digest_function_on_the_lake_with_the_key(
        either: Any) -> None:
    ((fn_id, fn),) = digest_functions(either).items()
    ((key_id, _),) = signing_keys(either).items()
    env = fn["Environment"]["Variables"]
    assert flat(env["LAKE_URI"]) == f"s3://<{lake_bucket(either)}>/{C.LAKE_PREFIX}"
    assert env["SIGNING_KEY_ID"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert fn["Architectures"] == [C.LAMBDA_ARCHITECTURE]
    assert fn["Timeout"] == C.DIGEST_LAMBDA_TIMEOUT_SECONDS
    schedules = [s["Properties"] for s in either.resources("AWS::Scheduler::Schedule").values()
                 if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]}]
    assert len(schedules) == 1
    schedule = schedules[0]
    # Every hour of every day, in UTC.
    assert schedule["ScheduleExpression"] == f"cron({C.DIGEST_SCHEDULE_MINUTE} * * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Etc/UTC"
    # The schedule's role may invoke exactly this function.
    role = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    granted = [s for p in policies(either).values() if role_of(p) == role
               for s in statements(p["PolicyDocument"])]
    assert [(s["Action"], s["Resource"]) for s in granted] == [
        ("lambda:InvokeFunction", {"Fn::GetAtt": [fn_id, "Arn"]})]


def test_the_digest_role_reads_the_lake_and_writes_digests_only(either: Any) -> None:
    (fn,) = digest_functions(either).values()
    role = fn["Role"]["Fn::GetAtt"][0]
    bucket = lake_bucket(either)
    by_sid = {s["Sid"]: s for p in policies(either).values() if role_of(p) == role
              for s in statements(p["PolicyDocument"])}
    assert flat(by_sid["ReadLake"]["Resource"]) == f"<{bucket}.Arn>/{C.LAKE_PREFIX}*"
    assert as_list(by_sid["ReadLake"]["Action"]) == ["s3:GetObject"]
    assert flat(by_sid["WriteDigests"]["Resource"]) == f"<{bucket}.Arn>/{C.DIGESTS_PREFIX}*"
    assert as_list(by_sid["WriteDigests"]["Action"]) == ["s3:PutObject"]
    # It completes the compactions (the compaction function may not delete): it deletes
    # data files and the notes, nothing else.
    assert as_list(by_sid["CompleteCompactions"]["Action"]) == ["s3:DeleteObject"]
    assert sorted(flat(r) for r in as_list(by_sid["CompleteCompactions"]["Resource"])) == [
        f"<{bucket}.Arn>/{C.REPLACEMENTS_PREFIX}*", f"<{bucket}.Arn>/{C.LAKE_PREFIX}table_name=*"]
    assert set(by_sid) == {"ListLake", "ReadLake", "WriteDigests", "CompleteCompactions",
                           "LakeKeyViaS3", "Logs"}
    # One run at a time: a single writer of each chain and of its deletes.
    assert fn["ReservedConcurrentExecutions"] == 1


def test_the_digest_asset_carries_the_evidence_package_and_pyarrow_comes_from_the_layer(
        parquet: Any) -> None:
    """Like the compaction function's: pyarrow from AWS's SDK for pandas layer of the
    Region, not bundled."""
    (fn,) = digest_functions(parquet).values()
    asset = parquet.asset_dir(fn["Code"])
    assert (asset / C.DIGEST_HANDLER_FILE).is_file()
    assert (asset / "ddbtrail" / "evidence" / "__init__.py").is_file()
    assert not (asset / "ddbtrail" / "cli").exists()
    assert not (asset / "pyarrow").exists()
    [mapping_id] = [k for k in parquet.template["Mappings"] if "SdkForPandas" in k]
    assert {"Fn::FindInMap": [mapping_id, {"Ref": "AWS::Region"}, "arn"]} in fn["Layers"]


def test_the_digest_handler_imports_from_its_asset_and_reads_its_settings(
        parquet: Any, tmp_path: Path) -> None:
    """The handler and the package as staged (pyarrow is the host's here, the layer's in
    Lambda), with the environment the stack sets: settings parsed at import, no call."""
    (fn,) = digest_functions(parquet).values()
    asset = parquet.asset_dir(fn["Code"])
    code = tmp_path / "code"
    code.mkdir()
    for item in asset.iterdir():
        (code / item.name).symlink_to(item)
    script = ("import seal_digests as h; from ddbtrail.evidence import digests; "
              "print(h.LAKE.uri, h.SIGNER.key_id, h.SIGNER.algorithm, digests.__file__)")
    env = dict(os.environ, PYTHONPATH=str(code), AWS_DEFAULT_REGION="us-east-1",
               LAKE_URI="s3://lake-bucket/lake/", SIGNING_KEY_ID="arn:aws:kms:k")
    proc = subprocess.run([sys.executable, "-c", script], cwd=code, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    *settings, module = proc.stdout.split()
    assert settings == ["s3://lake-bucket/lake", "arn:aws:kms:k", signing.KMS_SIGNING_ALGORITHM]
    assert module.startswith(str(code / "ddbtrail" / "evidence"))


# ----------------------------------------------------------------------------- reconciliation


def test_the_maintenance_machine_reconciles_each_table_after_the_snapshots(
        jsonl: Any) -> None:
    _, _, body = machine(jsonl)
    states = body["States"]
    assert states["Tables"]["Next"] == RECONCILE_STATE
    reconcile = states[RECONCILE_STATE]
    assert reconcile["End"] is True and reconcile["Items"] == "{% $tables %}"
    inner = reconcile["ItemProcessor"]["States"]
    publish = next(s for s in inner.values() if s.get("Resource") == PUT_METRIC_DATA)
    args = publish["Arguments"]
    assert args["Namespace"] == C.METRICS_NAMESPACE
    assert [m["MetricName"] for m in args["MetricData"]] == list(C.RECONCILE_METRICS)
    for m in args["MetricData"]:
        assert m["Dimensions"] == [{"Name": C.RECONCILE_DIMENSION, "Value": "{% $table %}"}]
    sql = [s["Arguments"]["QueryString"] for s in inner.values()
           if "QueryString" in s.get("Arguments", {})]
    assert sql and all("name: reconcile_receipts" in q for q in sql)


def test_the_maintenance_role_publishes_in_the_ddbtrail_namespace_only(either: Any) -> None:
    _, sm, _ = machine(either)
    role = sm["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    granted = [s for p in policies(either).values() if role_of(p) == role
               for s in statements(p["PolicyDocument"])]
    (put,) = [s for s in granted if allows(s["Action"], "cloudwatch:PutMetricData")]
    assert put["Resource"] == "*"  # PutMetricData has no resource ARN
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": C.METRICS_NAMESPACE}}
    (read,) = [s for s in granted if s.get("Sid") == "ReadReceiptsTable"]
    assert any(flat(r).endswith(f":table/ddbtrail/{catalog.RECEIPTS_TABLE_NAME}")
               for r in as_list(read["Resource"]))
    # The machine starts only once both of its policies exist.
    assert len(sm["DependsOn"]) == 2


def test_an_alarm_per_table_and_metric_fires_above_zero(parquet: Any) -> None:
    (topic,) = parquet.resources("AWS::SNS::Topic")
    alarms = evidence_alarms(parquet)
    seen = set()
    for a in alarms:
        assert a["Namespace"] == C.METRICS_NAMESPACE
        (dim,) = a["Dimensions"]
        assert dim["Name"] == C.RECONCILE_DIMENSION
        assert (a["Threshold"], a["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert a["AlarmActions"] == [{"Ref": topic}]
        seen.add((dim["Value"], a["MetricName"]))
    assert seen == {(t, m) for t in ("orders", "customers") for m in C.RECONCILE_METRICS}
    (digest_id,) = digest_functions(parquet)
    errors = [a["Properties"] for a in parquet.resources("AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("Dimensions") == [
                  {"Name": "FunctionName", "Value": {"Ref": digest_id}}]]
    assert [(a["MetricName"], a["AlarmActions"]) for a in errors] == [
        ("Errors", [{"Ref": topic}])]


# ----------------------------------------------------------------------------- turned off


def test_evidence_false_deploys_none_of_it(off: Any) -> None:
    assert signing_keys(off) == {}
    assert "SigningKeyArn" not in off.template["Outputs"]
    assert digest_functions(off) == {}
    assert evidence_alarms(off) == []
    names = [r["Properties"]["TableInput"]["Name"]
             for r in off.resources("AWS::Glue::Table").values()]
    assert catalog.RECEIPTS_TABLE_NAME not in names and "changes" in names
    # Only state machines are scheduled (maintenance, compaction): no digest function.
    machines = off.resources("AWS::StepFunctions::StateMachine")
    schedules = off.resources("AWS::Scheduler::Schedule").values()
    assert schedules and all(s["Properties"]["Target"]["Arn"].get("Ref") in machines
                             for s in schedules)
    functions = capture_functions(off)
    assert functions
    for fn in functions.values():
        assert not {"RECEIPTS_BUCKET", "RECEIPTS_PREFIX"} & set(fn["Environment"]["Variables"])
    text = json.dumps(off.template)
    assert "_ddbtrail/" not in text and "cloudwatch:PutMetricData" not in text
    # Compaction deletes the old files itself, as `ddbtrail compact` on an unsealed lake.
    [compaction] = [fn for fn in off.resources("AWS::Lambda::Function").values()
                    if fn["Properties"]["Handler"] == "compact_partition.handler"]
    assert "EVIDENCE" not in compaction["Properties"]["Environment"]["Variables"]
    [compact_lake] = [s for p in policies(off).values() for s in statements(p["PolicyDocument"])
                      if s.get("Sid") == "CompactLake"]
    assert "s3:DeleteObject" in compact_lake["Action"]
    _, _, body = machine(off)
    assert RECONCILE_STATE not in body["States"] and body["States"]["Tables"]["End"] is True


def test_evidence_false_passes_cdk_nag_and_cfn_lint(off: Any) -> None:
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

    report = json.loads((off.outdir / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []
    text = (off.outdir / "ddbtrail.template.json").read_text()
    assert [str(m) for m in lint(text, config=ManualArgs(regions=["us-east-1"]))] == []
