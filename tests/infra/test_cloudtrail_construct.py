"""-c create_trail / -c cloudtrail_bucket: the Athena CloudTrail table as AWS documents it,
and a trail of exactly the captured tables' write data events; cdk-nag and cfn-lint clean."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ddbtrail.core.cloudtrail import ATHENA_COLUMNS
from ddbtrail.core.exceptions import ConfigError
from infra.config import load_config

TRAIL = {"tables": "orders,customers", "create_trail": "true",
         "cloudtrail_start_day": "2025/01/01"}
EXISTING = {"tables": "orders", "cloudtrail_bucket": "org-trail-logs",
            "cloudtrail_prefix": "audit"}


@pytest.fixture(scope="module")
def created(synth_once: Any) -> Any:
    return synth_once("cloudtrail", TRAIL)


@pytest.fixture(scope="module")
def existing(synth_once: Any) -> Any:
    return synth_once("cloudtrail-existing", EXISTING)


def _only(synth: Any, type_: str) -> dict[str, Any]:
    (found,) = synth.resources(type_).values()
    props: dict[str, Any] = found["Properties"]
    return props


def _trail_table(synth: Any) -> dict[str, Any]:
    (table,) = [r["Properties"]["TableInput"] for r in synth.resources("AWS::Glue::Table").values()
                if r["Properties"]["TableInput"]["Name"] == "cloudtrail_logs"]
    return dict(table)


@pytest.mark.parametrize("name", ["created", "existing"])
def test_nag_and_cfn_lint_clean(name: str, request: pytest.FixtureRequest) -> None:
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

    synth = request.getfixturevalue(name)
    assert synth.returncode == 0, synth.stderr[-3000:]
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []
    text = (synth.outdir / "ddbtrail.template.json").read_text()
    assert [str(m) for m in lint(text, config=ManualArgs(regions=["us-east-1"]))] == []


def test_trail_logs_only_the_captured_tables_writes(created: Any) -> None:
    trail = _only(created, "AWS::CloudTrail::Trail")
    (selector,) = trail["AdvancedEventSelectors"]
    fields = {f["Field"]: f["Equals"] for f in selector["FieldSelectors"]}
    assert fields["eventCategory"] == ["Data"]
    assert fields["resources.type"] == ["AWS::DynamoDB::Table"]
    assert fields["readOnly"] == ["false"]
    arns = [json.dumps(a) for a in fields["resources.ARN"]]
    assert len(arns) == 2 and "table/orders" in arns[0] and "table/customers" in arns[1]
    assert "EventSelectors" not in trail  # no management events either
    assert trail["IsLogging"] is True and trail["EnableLogFileValidation"] is True
    assert trail["IsMultiRegionTrail"] is False


def test_new_trail_bucket_admits_cloudtrail_for_this_trail_only(created: Any) -> None:
    policies = [p["Properties"]["PolicyDocument"]["Statement"]
                for p in created.resources("AWS::S3::BucketPolicy").values()]
    trail_policy = [s for p in policies for s in p if s.get("Sid", "").startswith("CloudTrail")]
    assert {s["Sid"] for s in trail_policy} == {"CloudTrailAclCheck", "CloudTrailWrite"}
    for s in trail_policy:
        assert s["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        assert "aws:SourceArn" in s["Condition"]["StringEquals"]
    write = next(s for s in trail_policy if s["Sid"] == "CloudTrailWrite")
    assert write["Action"] == "s3:PutObject"
    assert "AWSLogs/" in json.dumps(write["Resource"])


def test_athena_table_is_the_documented_one_with_projection(created: Any,
                                                            existing: Any) -> None:
    for synth in (created, existing):
        table = _trail_table(synth)
        sd = table["StorageDescriptor"]
        assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == list(ATHENA_COLUMNS)
        assert table["PartitionKeys"] == [{"Name": "timestamp", "Type": "string"}]
        assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hive.hcatalog.data.JsonSerDe"
        assert sd["InputFormat"] == "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
        params = table["Parameters"]
        assert params["projection.enabled"] == "true"
        assert params["projection.timestamp.type"] == "date"
        assert params["projection.timestamp.format"] == "yyyy/MM/dd"
        assert params["projection.timestamp.interval"] == "1"
        assert params["projection.timestamp.interval.unit"] == "DAYS"
        assert json.dumps(params["storage.location.template"]).endswith('/${timestamp}"]]}')
    assert _trail_table(created)["Parameters"]["projection.timestamp.range"] == "2025/01/01,NOW"
    location = json.dumps(_trail_table(existing)["StorageDescriptor"]["Location"])
    assert "s3://org-trail-logs/audit/AWSLogs/" in location
    assert not existing.resources("AWS::CloudTrail::Trail")  # an existing trail is not touched


@pytest.mark.parametrize(("context", "message"), [
    ({"cloudtrail_bucket": "Not_A_Bucket"}, "cloudtrail_bucket"),
    ({"cloudtrail_start_day": "2025-01-01"}, "cloudtrail_start_day"),
    ({"create_trail": "maybe"}, "create_trail"),
])
def test_bad_cloudtrail_settings_name_themselves(context: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"tables": "orders", **context})
