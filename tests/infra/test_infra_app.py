"""The synthesized pipeline keeps its contracts: cdk-nag and cfn-lint clean, the stream and
event source mapping settings, Firehose prefix == Glue storage template, one NamedQuery per
.sql file, bucket policies, least-privilege IAM, alarms, and a lean capture asset.

Two synths in all (see conftest): Parquet on existing tables with every option, and JSON
Lines on the demo table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ddbtrail import catalog, row
from ddbtrail.capture import CaptureSettings

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
SQL_FILES = sorted((REPO / "athena_queries").glob("*.sql"))

PARQUET = {"tables": "orders,customers", "object_lock_days": "365",
           "object_lock_mode": "COMPLIANCE", "expire_days": "2555",
           "alarm_email": "ops@example.com", "bytes_scanned_cutoff": "2000000000",
           "sqs_copy_target_table": "orders-copy", "freshness_alarm_seconds": "1200"}
# No tables named: the demo table is used (and said so on stderr).
JSONL = {"format": "jsonl", "batch_size": "200"}


@pytest.fixture(scope="module")
def parquet(synth_once: Any) -> Any:
    return synth_once("parquet", PARQUET)


@pytest.fixture(scope="module")
def jsonl(synth_once: Any) -> Any:
    return synth_once("jsonl", JSONL)


@pytest.fixture(params=["parquet", "jsonl"])
def either(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


# ----------------------------------------------------------------------------- helpers


def flat(value: Any) -> str:
    """A CloudFormation string expression as text: Ref X -> <X>, GetAtt X.A -> <X.A>."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(flat(p) for p in parts)
    raise AssertionError(f"unexpected expression {value!r}")


def one(synth: Any, type_: str) -> dict[str, Any]:
    found = list(synth.resources(type_).values())
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    props: dict[str, Any] = found[0]["Properties"]
    return props


def destination(synth: Any) -> dict[str, Any]:
    dest: dict[str, Any] = one(synth, "AWS::KinesisFirehose::DeliveryStream")[
        "ExtendedS3DestinationConfiguration"]
    return dest


def capture_functions(synth: Any) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in synth.resources("AWS::Lambda::Function").items()
            if r["Properties"]["Handler"] == "stream_to_firehose.handler"}


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    stmts = doc["Statement"]
    return stmts if isinstance(stmts, list) else [stmts]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ----------------------------------------------------------------------------- the app runs


def test_synth_succeeds_with_cdk_nag_clean(either: Any) -> None:
    assert either.returncode == 0, either.stderr[-3000:]
    report = json.loads((either.outdir / "validation-report.json").read_text())
    violations = [v for p in report["pluginReports"] for v in p.get("violations", [])]
    assert violations == []


def test_every_nag_acknowledgment_has_a_reason(either: Any) -> None:
    acknowledged = [rule for r in either.template["Resources"].values()
                    for rule in r.get("Metadata", {}).get("cdk_nag", {}).get(
                        "rules_to_suppress", [])]
    assert acknowledged, "expected the acknowledged rules in the template metadata"
    for rule in acknowledged:
        assert rule["id"].startswith("AwsSolutions-")
        assert len(rule["reason"].split()) >= 5, rule


def test_cfn_lint_passes(either: Any) -> None:
    from cfnlint.api import ManualArgs, lint

    text = (either.outdir / "ddbtrail.template.json").read_text()
    matches = lint(text, config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_bad_setting_is_one_error_line(tmp_path: Path, app_runner: Any) -> None:
    result = app_runner({"tables": "orders", "format": "orc"}, tmp_path / "cdk.out")
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert lines == ["error: format='orc': expected one of parquet, jsonl"]
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- capture


def test_existing_tables_get_a_deploy_time_stream_check(parquet: Any) -> None:
    checks = parquet.resources("Custom::DdbtrailStreamCheck")
    assert {c["Properties"]["TableName"] for c in checks.values()} == {"orders", "customers"}
    for check in checks.values():
        assert check["Properties"]["RequireNewAndOldImages"] == "true"
    mappings = parquet.resources("AWS::Lambda::EventSourceMapping")
    sources = {flat(m["Properties"]["EventSourceArn"]) for m in mappings.values()
               if "StreamArn" in flat(m["Properties"]["EventSourceArn"])}
    assert sources == {f"<{k}.StreamArn>" for k in checks}


def test_demo_table_has_new_and_old_images_stream(jsonl: Any) -> None:
    assert "note: no tables configured: capturing the demo table ddbtrail-demo" in jsonl.stderr
    table = one(jsonl, "AWS::DynamoDB::Table")
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["TableName"] == "ddbtrail-demo"
    assert jsonl.resources("Custom::DdbtrailStreamCheck") == {}
    (demo_id,) = jsonl.resources("AWS::DynamoDB::Table")
    mapping = one(jsonl, "AWS::Lambda::EventSourceMapping")
    assert flat(mapping["EventSourceArn"]) == f"<{demo_id}.StreamArn>"
    assert mapping["BatchSize"] == 200


def test_event_source_mapping_settings(parquet: Any) -> None:
    queues = parquet.resources("AWS::SQS::Queue")
    mappings = [m["Properties"] for m in parquet.resources(
        "AWS::Lambda::EventSourceMapping").values() if "StartingPosition" in m["Properties"]]
    assert len(mappings) == 2
    for m in mappings:
        assert m["StartingPosition"] == "TRIM_HORIZON"
        assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert m["BisectBatchOnFunctionError"] is True
        assert 0 <= m["MaximumRetryAttempts"] <= 100
        # Bounded, and short of the 24 h retention so a redrive can re-read the records.
        assert 60 <= m["MaximumRecordAgeInSeconds"] < 86_400
        dlq = m["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert "KmsMasterKeyId" in queues[dlq]["Properties"]


def test_capture_lambda_runtime_layer_and_environment(either: Any) -> None:
    functions = capture_functions(either)
    assert functions
    for fn in functions.values():
        assert fn["Runtime"] in ("python3.11", "python3.12")
        assert fn["Architectures"] == ["arm64"]
        (layer,) = fn["Layers"]
        assert re.search(r":017000801446:layer:AWSLambdaPowertoolsPythonV3-python3\d+-arm64:\d+$",
                         flat(layer))
        env = {k: flat(v) for k, v in fn["Environment"]["Variables"].items()}
        # The capture code's own parser accepts exactly what the stack sets.
        settings = CaptureSettings.from_env(env)
        assert settings.spill_bucket and settings.delivery_stream
        assert settings.table_name in ("orders", "customers", "ddbtrail-demo")


def test_capture_asset_is_lean_and_imports_without_pyarrow(parquet: Any) -> None:
    fn = next(iter(capture_functions(parquet).values()))
    asset = parquet.asset_dir(fn["Code"])
    files = {p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()}
    assert "stream_to_firehose.py" in files
    assert "ddbtrail/capture.py" in files
    assert not [f for f in files if "__pycache__" in f or f.startswith("ddbtrail/cli/")]
    # Lambda has boto3 and the Powertools layer, not pyarrow or duckdb: block them.
    code = ("import sys; sys.modules.update(pyarrow=None, duckdb=None, sqlglot=None); "
            "import stream_to_firehose; print(stream_to_firehose.SETTINGS.delivery_stream)")
    env = dict(os.environ, PYTHONPATH=str(asset), DELIVERY_STREAM_NAME="s",
               AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=asset, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "s"


# ----------------------------------------------------------------------------- delivery


def test_firehose_prefix_equals_glue_storage_template(either: Any) -> None:
    dest = destination(either)
    table = one(either, "AWS::Glue::Table")["TableInput"]
    template = flat(table["Parameters"]["storage.location.template"])
    bucket = flat(dest["BucketARN"]).removesuffix(".Arn>") + ">"
    prefix = re.sub(r"!\{partitionKeyFromQuery:(\w+)\}", r"${\1}", dest["Prefix"])
    assert f"s3://{bucket}/{prefix}" == template
    # The partition keys are the Glue partition columns, read from the row by jq.
    keys = [k["Name"] for k in table["PartitionKeys"]]
    assert keys == [c.name for c in row.PARTITION_COLUMNS]
    metadata = next(p for p in dest["ProcessingConfiguration"]["Processors"]
                    if p["Type"] == "MetadataExtraction")
    params = {p["ParameterName"]: p["ParameterValue"] for p in metadata["Parameters"]}
    assert params["MetadataExtractionQuery"] == "{" + ", ".join(f"{k}: .{k}" for k in keys) + "}"
    assert dest["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert "!{firehose:error-output-type}" in dest["ErrorOutputPrefix"]
    assert not dest["ErrorOutputPrefix"].startswith(dest["Prefix"].split("/")[0] + "/")
    assert dest["CloudWatchLoggingOptions"]["Enabled"] is True


def test_packed_rows_are_deaggregated(either: Any) -> None:
    dest = destination(either)
    types = [p["Type"] for p in dest["ProcessingConfiguration"]["Processors"]]
    for fn in capture_functions(either).values():
        packs = fn["Environment"]["Variables"]["PACK_ROWS"] == "true"
        assert ("RecordDeAggregation" in types) == packs
        if packs:
            deagg = dest["ProcessingConfiguration"]["Processors"][0]
            assert deagg["Type"] == "RecordDeAggregation"
            assert deagg["Parameters"] == [{"ParameterName": "SubRecordType",
                                            "ParameterValue": "JSON"}]


def test_parquet_conversion_reads_the_glue_table(parquet: Any) -> None:
    dest = destination(parquet)
    conversion = dest["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert "OpenXJsonSerDe" in conversion["InputFormatConfiguration"]["Deserializer"]
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    schema = conversion["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == ("ddbtrail", "changes")
    assert dest["BufferingHints"]["SizeInMBs"] >= 64
    assert dest["CompressionFormat"] == "UNCOMPRESSED"
    assert dest["FileExtension"] == ".parquet"


def test_jsonl_rows_get_their_newline_back(jsonl: Any) -> None:
    dest = destination(jsonl)
    assert "DataFormatConversionConfiguration" not in dest
    types = [p["Type"] for p in dest["ProcessingConfiguration"]["Processors"]]
    assert types == ["RecordDeAggregation", "MetadataExtraction", "AppendDelimiterToRecord"]
    assert dest["FileExtension"] == ".jsonl.gz"


# ----------------------------------------------------------------------------- catalog


def test_glue_table_is_the_catalog_definition(either: Any) -> None:
    table = one(either, "AWS::Glue::Table")
    fmt = "parquet" if table["TableInput"]["Parameters"]["classification"] == "parquet" else "jsonl"
    expected = catalog.table_input(fmt, "s3://BUCKET/lake/",
                                   ["orders", "customers"] if fmt == "parquet"
                                   else ["ddbtrail-demo"])
    got = table["TableInput"]
    assert got["StorageDescriptor"]["Columns"] == expected["StorageDescriptor"]["Columns"]
    assert got["StorageDescriptor"]["SerdeInfo"] == expected["StorageDescriptor"]["SerdeInfo"]
    assert got["PartitionKeys"] == expected["PartitionKeys"]
    params = {k: v for k, v in got["Parameters"].items() if isinstance(v, str)}
    assert params == {k: v for k, v in expected["Parameters"].items()
                      if k != "storage.location.template"}
    assert table["DatabaseName"] == "ddbtrail"


def test_one_named_query_per_sql_file(parquet: Any) -> None:
    assert SQL_FILES, "athena_queries/ has no .sql files"
    named = [q["Properties"] for q in parquet.resources("AWS::Athena::NamedQuery").values()]
    assert len(named) == len(SQL_FILES)
    by_name = {q["Name"]: q for q in named}
    assert set(by_name) == {p.stem for p in SQL_FILES}
    for path in SQL_FILES:
        q = by_name[path.stem]
        assert q["QueryString"] == path.read_text(encoding="utf-8").strip().rstrip(";")
        assert q["Database"] == "ddbtrail"
        assert q["WorkGroup"] == "ddbtrail"
        assert q["Description"]


def test_workgroup_is_enforced_encrypted_and_capped(parquet: Any) -> None:
    wg = one(parquet, "AWS::Athena::WorkGroup")
    conf = wg["WorkGroupConfiguration"]
    assert conf["EnforceWorkGroupConfiguration"] is True
    assert conf["BytesScannedCutoffPerQuery"] == 2_000_000_000
    results = conf["ResultConfiguration"]
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    bucket = flat(results["OutputLocation"]).split("/")[2].strip("<>")
    encryption = parquet.template["Resources"][bucket]["Properties"]["BucketEncryption"]
    sse = encryption["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "aws:kms"


# ----------------------------------------------------------------------------- buckets


def test_every_bucket_is_private_tls_only_and_encrypted(either: Any) -> None:
    buckets = either.resources("AWS::S3::Bucket")
    policies = {p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
                for p in either.resources("AWS::S3::BucketPolicy").values()}
    assert set(policies) == set(buckets)
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        tls = [s for s in statements(policies[name]) if s["Effect"] == "Deny"
               and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
        assert len(tls) == 1
        assert tls[0]["Principal"] == {"AWS": "*"}
        covered = {flat(r) for r in as_list(tls[0]["Resource"])}
        assert covered == {f"<{name}.Arn>", f"<{name}.Arn>/*"}
        # Nothing but the S3 log delivery service is ever allowed in by a bucket policy.
        for s in statements(policies[name]):
            if s["Effect"] == "Allow":
                assert s["Principal"] == {"Service": "logging.s3.amazonaws.com"}


def lake_bucket(synth: Any) -> dict[str, Any]:
    arn = flat(destination(synth)["BucketARN"])
    props: dict[str, Any] = synth.template["Resources"][arn.strip("<>").split(".")[0]][
        "Properties"]
    return props


def test_lake_bucket_kms_versioning_lifecycle_and_object_lock(parquet: Any) -> None:
    lake = lake_bucket(parquet)
    sse = lake["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key = sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert parquet.template["Resources"][key]["Properties"]["EnableKeyRotation"] is True
    assert lake["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = lake["LifecycleConfiguration"]["Rules"]
    assert [(t["StorageClass"], t["TransitionInDays"]) for t in rule["Transitions"]] == [
        ("STANDARD_IA", 30), ("GLACIER_IR", 90)]
    assert rule["ExpirationInDays"] == 2555
    assert lake["ObjectLockEnabled"] is True
    assert lake["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Days": 365, "Mode": "COMPLIANCE"}
    assert "LoggingConfiguration" in lake


def test_lake_without_lock_or_expiry_by_default(jsonl: Any) -> None:
    lake = lake_bucket(jsonl)
    assert "ObjectLockConfiguration" not in lake
    assert "ExpirationInDays" not in lake["LifecycleConfiguration"]["Rules"][0]


# ----------------------------------------------------------------------------- IAM


def test_iam_allows_no_wildcard_actions_or_resources(either: Any) -> None:
    docs = [p["Properties"]["PolicyDocument"]
            for p in either.resources("AWS::IAM::Policy").values()]
    docs += [p["PolicyDocument"] for r in either.resources("AWS::IAM::Role").values()
             for p in r["Properties"].get("Policies", [])]
    assert docs
    for doc in docs:
        for s in statements(doc):
            assert s["Effect"] == "Allow"
            for action in as_list(s["Action"]):
                assert "*" not in action, s
            for resource in as_list(s["Resource"]):
                text = flat(resource)
                assert text != "*", s
                # Object wildcards stay under one prefix of one bucket (or one stream).
                if text.endswith("*"):
                    assert re.search(r"(>/[a-z-]+/\*|:table/[\w.-]+/stream/\*)$", text), text
    for role in either.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_capture_role_is_scoped_to_its_stream_and_delivery_stream(parquet: Any) -> None:
    (stream_id,) = parquet.resources("AWS::KinesisFirehose::DeliveryStream")
    policies = [p["Properties"]["PolicyDocument"] for p in parquet.resources(
        "AWS::IAM::Policy").values()]
    capture = [d for d in policies if any(s.get("Sid") == "ReadStream" for s in statements(d))]
    assert len(capture) == 2
    for doc in capture:
        by_sid = {s["Sid"]: s for s in statements(doc)}
        assert flat(by_sid["Deliver"]["Resource"]) == f"<{stream_id}.Arn>"
        assert as_list(by_sid["Deliver"]["Action"]) == ["firehose:PutRecordBatch"]
        assert flat(by_sid["ReadStream"]["Resource"]).endswith("StreamCheck.StreamArn>")


# ----------------------------------------------------------------------------- alarms


def test_alarms_cover_the_pipeline_and_notify_the_topic(parquet: Any) -> None:
    alarms = [a["Properties"] for a in parquet.resources("AWS::CloudWatch::Alarm").values()]
    (topic,) = parquet.resources("AWS::SNS::Topic")
    metrics = [a["MetricName"] for a in alarms]
    for name in ("IteratorAge", "Errors", "ApproximateNumberOfMessagesVisible"):
        assert metrics.count(name) >= 2, name  # one per captured table (+ the copy DLQ)
    for name in ("DeliveryToS3.Success", "DeliveryToS3.DataFreshness",
                 "FailedConversion.Records", "QuarantinedRecords"):
        assert name in metrics
    freshness = next(a for a in alarms if a["MetricName"] == "DeliveryToS3.DataFreshness")
    assert freshness["Threshold"] == 1200
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic}]
    assert one(parquet, "AWS::SNS::Subscription")["Endpoint"] == "ops@example.com"
    assert "KmsMasterKeyId" in one(parquet, "AWS::SNS::Topic")


def test_sqs_copy_is_deployed_from_context(parquet: Any, jsonl: Any) -> None:
    copies = [f for f in parquet.resources("AWS::Lambda::Function").values()
              if f["Properties"]["Handler"] == "sqs_copy.handler"]
    assert len(copies) == 1
    assert copies[0]["Properties"]["Environment"]["Variables"]["TARGET_TABLE"] == "orders-copy"
    assert not [f for f in jsonl.resources("AWS::Lambda::Function").values()
                if f["Properties"]["Handler"] == "sqs_copy.handler"]
