"""The capture Lambda handler, on moto in-process: Firehose -> S3, and a failing Firehose."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ddbtrail.core.backoff import RetryPolicy
from ddbtrail.delivery.firehose import FirehoseSink
from tests.stubs import StubFirehose
from tests.unit.test_capture_delivery import make_event

HANDLER = Path(__file__).parents[2] / "handlers" / "stream_to_firehose.py"
pytestmark = pytest.mark.integration


class Context:
    """The parts of LambdaContext that the handler and Powertools read."""

    function_name = "ddbtrail-capture"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ddbtrail-capture"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler() -> ModuleType:
    """Import the handler as Lambda does: fresh module, settings read from the environment."""
    spec = importlib.util.spec_from_file_location("stream_to_firehose", HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("stream_to_firehose", None)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("DELIVERY_STREAM_NAME", "ddbtrail-changes")
    monkeypatch.setenv("SPILL_BUCKET", "spill")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ddbtrail")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        s3.create_bucket(Bucket="spill")
        boto3.client("firehose", region_name="us-east-1").create_delivery_stream(
            DeliveryStreamName="ddbtrail-changes",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::lake",
                "Prefix": "changes/",
            },
        )
        yield {"s3": s3}


def lake_rows(s3: Any) -> list[dict[str, Any]]:
    rows = []
    for obj in s3.list_objects_v2(Bucket="lake").get("Contents", []):
        body = s3.get_object(Bucket="lake", Key=obj["Key"])["Body"].read()
        rows += [json.loads(line) for line in body.splitlines()]
    return rows


def test_every_change_lands_in_s3_through_firehose(aws: dict[str, Any],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    handler = load_handler()
    event = make_event(1100)
    assert handler.handler(event, Context()) == {"batchItemFailures": []}
    rows = lake_rows(aws["s3"])
    assert sorted(r["event_id"] for r in rows) == sorted(f"e{i}" for i in range(1100))
    assert {r["table_name"] for r in rows} == {"orders"}
    # Powertools Metrics wrote an EMF blob with our counts.
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines()
           if '"_aws"' in line]
    assert emf[-1]["Records"] == [1100.0]
    assert emf[-1]["FailedBatches"] == [0.0]


def test_sample_events_from_public_projects(aws: dict[str, Any], load_event: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "Example")
    handler = load_handler()
    for name in ("powertools-dynamo-stream-event.json",
                 "powertools-dynamo-tumbling-window-event.json",
                 "sam-cli-dynamodb-update.json", "history-storer-multiple.json"):
        assert handler.handler(load_event(name), Context()) == {"batchItemFailures": []}, name
    assert len(lake_rows(aws["s3"])) == 2 + 3 + 3 + 2


def test_partial_failures_are_retried_then_reported(aws: dict[str, Any]) -> None:
    handler = load_handler()
    # The entry holding e3 fails on every call: retried alone, never accepted.
    stub = StubFirehose(fail_entry=lambda call, i, data: b'"event_id":"e3"' in data)
    handler.SINK = FirehoseSink(stub, "s", pack_rows=False,
                                retry=RetryPolicy(max_attempts=3, base_delay=0.001))
    response = handler.handler(make_event(10), Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": str(10**20 + 3)}]}
    assert stub.calls == 3  # one call, then two retries of the failed entry alone
    assert len(stub.accepted) == 9


def test_oversize_row_is_spilled_to_the_spill_bucket(aws: dict[str, Any]) -> None:
    handler = load_handler()
    event = make_event(2)
    event["Records"][0]["dynamodb"]["NewImage"]["pad"] = {"S": "z" * 1_050_000}
    assert handler.handler(event, Context()) == {"batchItemFailures": []}
    rows = {r["event_id"]: r for r in lake_rows(aws["s3"])}
    uri = rows["e0"]["spill_uri"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    spilled = json.loads(aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    assert len(json.loads(spilled["new_image"])["pad"]) == 1_050_000
