"""The synthesized pipeline keeps its contracts: cdk-nag and cfn-lint clean, the stream and
event source mapping settings, Firehose prefix == Glue storage template, one NamedQuery per
.sql file (saved queries and generated views), bucket policies, least-privilege IAM, alarms,
the optional scheduled redrive, and a lean capture asset.

Two synths in all (see conftest): Parquet on existing tables with every option (redrive on,
a views_dir and a redaction policy written before the synth), and JSON Lines on the demo table.
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
from aws_cdk.assertions import Match, Template

from ddbtrail.capture.batch import CaptureSettings
from ddbtrail.catalog import glue as catalog
from ddbtrail.catalog.schema_infer import SchemaBuilder
from ddbtrail.catalog.views import render_views, write_views
from ddbtrail.core import row
from ddbtrail.core.exceptions import ConfigError
from ddbtrail.core.flatten import event_records, flatten_records
from ddbtrail.delivery.targets import sink_from_env
from ddbtrail.query import saved
from infra import constants as C
from infra.config import load_config
from infra.constructs.capture import lambda_pin, redaction_statements
from infra.constructs.queries import view_queries

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
SQL_FILES = sorted((REPO / "athena_queries").glob("*.sql"))

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ddbtrail/redaction-Ab12Cd"
CMK_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
POLICY = {"orders": {"email": "hmac", "/address/street": "drop"}, "*": {"password": "drop"}}

PARQUET = {"tables": "orders,customers", "object_lock_days": "365",
           "object_lock_mode": "COMPLIANCE", "expire_days": "2555",
           "alarm_email": "ops@example.com", "bytes_scanned_cutoff": "2000000000",
           "sqs_copy_target_table": "orders-copy", "freshness_alarm_seconds": "1200",
           "redrive": "true", "redrive_schedule_minutes": "10",
           "redrive_alarm_age_seconds": "7200",
           "redaction_key_secret_arn": SECRET_ARN, "redaction_key_kms_arn": CMK_ARN,
           }  # + views_dir and redaction_policy, written by prepare_inputs
# No tables named: the demo table is used (and said so on stderr).
JSONL = {"format": "jsonl", "batch_size": "200"}


def generate_views(folder: Path) -> dict[str, str]:
    """Typed views of a sample event's table, by ``ddbtrail views``' generator, in folder/views."""
    event = json.loads((REPO / "tests" / "events" / "every-kind.json").read_text())
    rows = [f.row for f in flatten_records(event_records(event), ingested_at_ms=1_714_600_000_000,
                                           table_name="Orders") if f.row is not None]
    out = folder / "views"
    write_views(render_views(SchemaBuilder("Orders").add_all(rows).build()), out)
    return {"views_dir": str(out)}


def prepare_inputs(folder: Path) -> dict[str, str]:
    """The views (generate_views) and a redaction policy file, indented as people write it."""
    policy = folder / "redaction.json"
    policy.write_text(json.dumps(POLICY, indent=2), encoding="utf-8")
    return {**generate_views(folder), "redaction_policy": str(policy)}


def view_files(synth: Any) -> list[Path]:
    """The generated view files the synth was given (see generate_views)."""
    return sorted((synth.outdir.parent / "views").glob("*.sql"))


@pytest.fixture(scope="module")
def parquet(synth_once: Any) -> Any:
    return synth_once("parquet", PARQUET, setup=prepare_inputs)


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
        return str(sep).join(flat(p) for p in parts)
    raise AssertionError(f"unexpected expression {value!r}")


def glue_table(synth: Any, name: str) -> dict[str, Any]:
    """The Properties of the AWS::Glue::Table named ``name`` (changes or snapshots)."""
    found = [r["Properties"] for r in synth.resources("AWS::Glue::Table").values()
             if r["Properties"]["TableInput"]["Name"] == name]
    assert len(found) == 1, f"expected one Glue table {name}, found {len(found)}"
    props: dict[str, Any] = found[0]
    return props


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


class FakeSecrets:
    """Secrets Manager's get_secret_value for the one secret the stack names
    (the capture reads its redaction key at cold start)."""

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        assert SecretId == SECRET_ARN
        return {"SecretString": "k"}


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
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

    text = (either.outdir / "ddbtrail.template.json").read_text()
    matches = lint(text, config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_bad_setting_is_one_error_line(tmp_path: Path, app_runner: Any) -> None:
    result = app_runner({"tables": "orders", "format": "orc"}, tmp_path / "cdk.out")
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert lines == ["error: format='orc': expected one of parquet, jsonl, iceberg"]
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
        settings = CaptureSettings.from_env(env, secretsmanager=FakeSecrets())
        sink = sink_from_env(env, client=lambda service: None)
        assert settings.spill_bucket and sink.name
        assert settings.table_name in ("orders", "customers", "ddbtrail-demo")


def test_capture_asset_is_lean_and_imports_without_pyarrow(parquet: Any) -> None:
    fn = next(iter(capture_functions(parquet).values()))
    asset = parquet.asset_dir(fn["Code"])
    files = {p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()}
    assert "stream_to_firehose.py" in files
    assert "ddbtrail/capture/batch.py" in files
    assert not [f for f in files if "__pycache__" in f or f.startswith("ddbtrail/cli/")]
    # Lambda has boto3 and the Powertools layer, not pyarrow or duckdb: block them.
    code = ("import sys; sys.modules.update(pyarrow=None, duckdb=None, sqlglot=None); "
            "import stream_to_firehose; print(stream_to_firehose.SINK.name)")
    env = dict(os.environ, PYTHONPATH=str(asset), DELIVERY_STREAM_NAME="s",
               AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=asset, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "s"


def test_capture_asset_holds_orjson_for_graviton_and_the_runtime(parquet: Any) -> None:
    fn = next(iter(capture_functions(parquet).values()))
    assert fn["Architectures"] == [C.LAMBDA_ARCHITECTURE]
    asset = parquet.asset_dir(fn["Code"])
    abi = fn["Runtime"].removeprefix("python").replace(".", "")
    [so] = (asset / "orjson").glob("orjson.cpython-*.so")
    assert so.name == f"orjson.cpython-{abi}-aarch64-linux-gnu.so"
    version = lambda_pin("orjson").version
    assert (asset / f"orjson-{version}.dist-info" / "METADATA").is_file()


# ----------------------------------------------------------------------------- delivery


def test_firehose_prefix_equals_glue_storage_template(either: Any) -> None:
    dest = destination(either)
    table = glue_table(either, "changes")["TableInput"]
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
    # The Hive JSON SerDe, as the JSON Lines Glue table (Athena documents OpenX's reads as
    # possibly non-deterministic).
    assert conversion["InputFormatConfiguration"]["Deserializer"] == {
        "HiveJsonSerDe": {"TimestampFormats": ["millis"]}}
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
    table = glue_table(either, "changes")
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


def test_one_named_query_per_sql_file(parquet: Any, jsonl: Any) -> None:
    assert SQL_FILES, "athena_queries/ has no .sql files"
    views = view_files(parquet)
    assert [p.name for p in views] == ["orders_changes_typed.sql", "orders_current.sql"]
    named = [q["Properties"] for q in parquet.resources("AWS::Athena::NamedQuery").values()]
    assert len(named) == len(SQL_FILES) + len(views)
    by_name = {q["Name"]: q for q in named}
    assert set(by_name) == {p.stem for p in SQL_FILES + views}
    # Fragments (athena_queries/fragments/) are not queries: none is deployed.
    assert not set(by_name) & {f.name for f in saved.fragments(REPO / "athena_queries")}
    for path in SQL_FILES + views:
        q = by_name[path.stem]
        text = path.read_text(encoding="utf-8")
        # The deployed text is the saved query with its fragments expanded.
        assert q["QueryString"] == saved.parse_query(text, path).sql
        assert "{{" not in q["QueryString"], path.name
        assert q["Database"] == "ddbtrail"
        assert q["WorkGroup"] == "ddbtrail"
        question = re.search(r"^-- question: (.+)$", text, re.MULTILINE)
        assert question and question.group(1).strip() in q["Description"]
    # Without views_dir, only the saved queries.
    Template.from_json(jsonl.template).resource_count_is("AWS::Athena::NamedQuery",
                                                         len(SQL_FILES))


def write_sql(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.sql"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "text", "needle"), [
    ("orders_current", "CREATE OR REPLACE VIEW orders_current AS SELECT 1\n",
     "orders_current.sql has no header ('-- name:', '-- question:' ...)"),
    ("orders_current", "-- name: orders_current\n-- kind: view\nSELECT 1\n",
     "orders_current.sql: the header has no 'question:'"),
    ("item_history", "-- name: item_history\n-- kind: view\n-- question: Q?\nSELECT 1\n",
     "item_history.sql is named like the saved query 'item_history'"),
])
def test_bad_view_file_is_one_error_naming_it(tmp_path: Path, name: str, text: str,
                                              needle: str) -> None:
    write_sql(tmp_path / "views", "good_view", "-- name: good_view\n-- question: Q?\nSELECT 1\n")
    write_sql(tmp_path / "views", name, text)
    with pytest.raises(ConfigError) as err:
        view_queries(tmp_path / "views", {p.stem for p in SQL_FILES})
    assert f"views_dir {tmp_path / 'views'}: {needle}" in str(err.value)
    assert "\n" not in str(err.value)


def test_view_without_header_stops_the_app(tmp_path: Path, app_runner: Any) -> None:
    write_sql(tmp_path / "views", "orders_current", "CREATE OR REPLACE VIEW v AS SELECT 1\n")
    result = app_runner({"tables": "orders", "views_dir": str(tmp_path / "views")},
                        tmp_path / "cdk.out")
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "orders_current.sql has no header" in lines[0]
    assert "Traceback" not in result.stderr


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
                if text == "*":
                    # Only an action without resource ARNs, scoped by its condition instead.
                    assert as_list(s["Action"]) == ["cloudwatch:PutMetricData"], s
                    assert s["Condition"] == {"StringEquals": {
                        "cloudwatch:namespace": C.METRICS_NAMESPACE}}, s
                    continue
                # Object wildcards stay under one prefix of one bucket (or its data
                # partitions, table_name=*, or one stream, or the child executions of one
                # state machine's Distributed Map).
                if text.endswith("*"):
                    assert re.search(r"(>(/[a-z_-]+)+/(table_name=)?\*|:table/[\w.-]+/stream/\*"
                                     r"|:execution:<\w+\.Name>/\*)$", text), text
    for role in either.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_capture_role_is_scoped_to_its_stream_and_delivery_stream(parquet: Any) -> None:
    (stream_id,) = parquet.resources("AWS::KinesisFirehose::DeliveryStream")
    policies = [p["Properties"]["PolicyDocument"] for p in parquet.resources(
        "AWS::IAM::Policy").values()]
    capture = [d for d in policies if any(s.get("Sid") == "ListStreams" for s in statements(d))]
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


# ----------------------------------------------------------------------------- redrive


def redrive_functions(synth: Any) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in synth.resources("AWS::Lambda::Function").items()
            if r["Properties"]["Handler"] == "redrive.handler"}


def capture_of(synth: Any, table: str) -> dict[str, Any]:
    """The event source mapping of ``table``'s capture Lambda."""
    (fid,) = [k for k, f in capture_functions(synth).items()
              if f["Environment"]["Variables"]["TABLE_NAME"] == table]
    (mapping,) = [m["Properties"] for m in synth.resources(
        "AWS::Lambda::EventSourceMapping").values() if m["Properties"]["FunctionName"] == {
        "Ref": fid}]
    assert isinstance(mapping, dict)
    return mapping


def test_redrive_per_table_on_a_schedule_with_alarms(parquet: Any, jsonl: Any) -> None:
    template = Template.from_json(parquet.template)
    template.resource_properties_count_is("AWS::Lambda::Function",
                                          {"Handler": "redrive.handler"}, 2)
    template.resource_properties_count_is("AWS::Events::Rule", {
        "ScheduleExpression": "rate(10 minutes)", "State": "ENABLED",
        "Targets": [Match.object_like({"RetryPolicy": {"MaximumRetryAttempts": 0}})]}, 2)
    rules = [r["Properties"] for r in parquet.resources("AWS::Events::Rule").values()]
    assert {flat(r["Targets"][0]["Arn"]) for r in rules} == {
        f"<{k}.Arn>" for k in redrive_functions(parquet)}
    for fn in redrive_functions(parquet).values():
        env = fn["Properties"]["Environment"]["Variables"]
        table = env["TABLE_NAME"]
        dlq = capture_of(parquet, table)["DestinationConfig"]["OnFailure"]["Destination"][
            "Fn::GetAtt"][0]
        # It drains its own table's on-failure queue and writes rows as the capture would.
        assert env["QUEUE_URL"] == {"Ref": dlq}
        settings = CaptureSettings.from_env({k: flat(v) for k, v in env.items()},
                                            secretsmanager=FakeSecrets())
        assert settings.table_name == table and settings.spill_bucket
        (capture_env,) = [f["Environment"]["Variables"] for f in capture_functions(
            parquet).values() if f["Environment"]["Variables"]["TABLE_NAME"] == table]
        assert {k: env[k] for k in capture_env} == capture_env
        # The age of the oldest message of that queue alarms at the configured threshold.
        template.has_resource_properties("AWS::CloudWatch::Alarm", {
            "MetricName": "ApproximateAgeOfOldestMessage", "Threshold": 7200,
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]})
    template.resource_properties_count_is("AWS::CloudWatch::Alarm",
                                          {"MetricName": "TrimmedRanges"}, 2)
    # Off by default.
    off = Template.from_json(jsonl.template)
    off.resource_properties_count_is("AWS::Lambda::Function", {"Handler": "redrive.handler"}, 0)
    off.resource_count_is("AWS::Events::Rule", 0)
    off.resource_properties_count_is("AWS::CloudWatch::Alarm",
                                     {"MetricName": "ApproximateAgeOfOldestMessage"}, 0)


def test_redrive_role_is_scoped_to_its_queue_stream_and_prefixes(parquet: Any) -> None:
    (stream_id,) = parquet.resources("AWS::KinesisFirehose::DeliveryStream")
    lake = flat(destination(parquet)["BucketARN"])
    policies = parquet.resources("AWS::IAM::Policy")
    for fn in redrive_functions(parquet).values():
        props = fn["Properties"]
        role = props["Role"]["Fn::GetAtt"][0]
        mine = {k: p for k, p in policies.items() if {"Ref": role} in p["Properties"]["Roles"]}
        # The function waits for every policy of its role (a run must not lack permissions).
        assert sorted(fn["DependsOn"]) == sorted(mine)
        by_sid = {s["Sid"]: s for p in mine.values()
                  for s in statements(p["Properties"]["PolicyDocument"])}
        mapping = capture_of(parquet, props["Environment"]["Variables"]["TABLE_NAME"])
        dlq = mapping["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert flat(by_sid["OnFailureQueue"]["Resource"]) == f"<{dlq}.Arn>"
        assert flat(by_sid["ReadStream"]["Resource"]) == flat(mapping["EventSourceArn"])
        assert flat(by_sid["Deliver"]["Resource"]) == f"<{stream_id}.Arn>"
        assert as_list(by_sid["Deliver"]["Action"]) == ["firehose:PutRecordBatch"]
        spill = by_sid["SpillAndQuarantine"]
        assert as_list(spill["Action"]) == ["s3:PutObject"]
        assert {flat(r) for r in as_list(spill["Resource"])} == {
            f"{lake}/spill/*", f"{lake}/quarantine/*"}
        for sid, service in (("LakeKeyViaS3", "s3"), ("QueueKeyViaSqs", "sqs")):
            via = by_sid[sid]["Condition"]["StringEquals"]["kms:ViaService"]
            assert flat(via) == f"{service}.<AWS::Region>.amazonaws.com"
        assert set(by_sid) == {"OnFailureQueue", "ReadStream", "Deliver", "Logs",
                               "QueueKeyViaSqs", "SpillAndQuarantine", "LakeKeyViaS3",
                               "Receipts", *REDACTION_GRANTS}


# ----------------------------------------------------------------------------- redaction

# The only statements a role needs to read the redaction key (secret + its CMK).
REDACTION_GRANTS = {
    "RedactionKeySecret": {"Sid": "RedactionKeySecret", "Effect": "Allow",
                           "Action": "secretsmanager:GetSecretValue", "Resource": SECRET_ARN},
    "RedactionKeyCmk": {"Sid": "RedactionKeyCmk", "Effect": "Allow", "Action": "kms:Decrypt",
                        "Resource": CMK_ARN, "Condition": {"StringEquals": {
                            "kms:ViaService": "secretsmanager.<AWS::Region>.amazonaws.com"}}},
}


def flat_all(value: Any) -> Any:
    """``value`` with every CloudFormation string expression in it flattened (see flat)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Join"):
            return flat(value)
        return {k: flat_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [flat_all(v) for v in value]
    return value


def role_statements(synth: Any, function: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the policies on ``function``'s (properties') role, flattened."""
    role = {"Ref": function["Role"]["Fn::GetAtt"][0]}
    return [flat_all(s) for p in synth.resources("AWS::IAM::Policy").values()
            if role in p["Properties"]["Roles"]
            for s in statements(p["Properties"]["PolicyDocument"])]


def test_capture_and_redrive_get_the_redaction_policy_and_key_source(parquet: Any) -> None:
    functions = [*capture_functions(parquet).values(),
                 *(r["Properties"] for r in redrive_functions(parquet).values())]
    assert len(functions) == 4
    for props in functions:
        env = {k: flat(v) for k, v in props["Environment"]["Variables"].items()}
        # Compact JSON of the file, and the capture reads it with the key from the secret.
        assert json.loads(env["REDACTION_POLICY"]) == POLICY
        assert " " not in env["REDACTION_POLICY"]
        assert env["REDACTION_KEY_SECRET_ARN"] == SECRET_ARN
        assert "REDACTION_KEY_PARAMETER" not in env
        settings = CaptureSettings.from_env(env, secretsmanager=FakeSecrets())
        assert settings.redaction is not None
        assert settings.redaction.rules("orders") == {
            ("email",): "hmac", ("address", "street"): "drop", ("password",): "drop"}
        assert settings.redaction.key == b"k"


def test_redaction_grants_are_the_secret_and_its_cmk_only(parquet: Any, jsonl: Any) -> None:
    functions = [*capture_functions(parquet).values(),
                 *(r["Properties"] for r in redrive_functions(parquet).values())]
    assert len(functions) == 4
    for props in functions:
        mine = role_statements(parquet, props)
        redaction = [s for s in mine if s.get("Sid", "").startswith("RedactionKey")]
        assert redaction == list(REDACTION_GRANTS.values()), redaction
        # Nothing else in the role touches secrets, parameters or the CMK.
        others = [s for s in mine if s not in redaction]
        assert not [s for s in others if CMK_ARN in json.dumps(s) or any(
            a.split(":")[0] in ("secretsmanager", "ssm") for a in as_list(s["Action"]))]
    # Without a policy: no variables, no grants.
    for fn in capture_functions(jsonl).values():
        assert not [k for k in fn["Environment"]["Variables"] if k.startswith("REDACTION")]
        assert not [s for s in role_statements(jsonl, fn)
                    if s.get("Sid", "").startswith("RedactionKey")]


def test_redaction_key_from_an_ssm_parameter_is_granted_on_that_parameter(
        tmp_path: Path) -> None:
    # In process, no synth: the statements as CloudFormation would receive them.
    from aws_cdk import Stack

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY), encoding="utf-8")
    cfg = load_config({"tables": "orders", "redaction_policy": str(policy),
                       "redaction_key_parameter": "/ddbtrail/redaction-key",
                       "redaction_key_kms_arn": CMK_ARN})
    stack = Stack()
    resolved = [stack.resolve(s.to_statement_json()) for s in redaction_statements(cfg)]
    assert flat_all(resolved) == [
        {"Sid": "RedactionKeyParameter", "Effect": "Allow", "Action": "ssm:GetParameter",
         "Resource": "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:"
                     "parameter/ddbtrail/redaction-key"},
        {"Sid": "RedactionKeyCmk", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": CMK_ARN, "Condition": {"StringEquals": {
             "kms:ViaService": "ssm.<AWS::Region>.amazonaws.com"}}},
    ]
    assert redaction_statements(load_config({"tables": "orders"})) == []


def test_snapshot_table_is_the_catalog_definition_under_the_lake(either: Any) -> None:
    got = glue_table(either, "snapshots")["TableInput"]
    expected = catalog.snapshot_table_input("s3://BUCKET/lake/", ["orders"])
    assert got["StorageDescriptor"]["Columns"] == expected["StorageDescriptor"]["Columns"]
    assert [k["Name"] for k in got["PartitionKeys"]] == ["table_name", "snapshot_date"]
    assert got["Parameters"]["classification"] == "parquet"
    template = flat(got["Parameters"]["storage.location.template"])
    changes = flat(glue_table(either, "changes")["TableInput"]["Parameters"][
        "storage.location.template"])
    # A second dataset beside the changes, which the changes' template never reaches.
    assert template.endswith("/snapshots/table_name=${table_name}/snapshot_date=${snapshot_date}/")
    assert template.split("/snapshots/")[0] + "/" == changes.split("table_name=")[0]
