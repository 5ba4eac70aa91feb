"""The optional scheduled redrive construct: schedule, scoped IAM, alarms; cdk-nag clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk import App, Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.constructs.redrive import ScheduledRedrive

pytestmark = pytest.mark.infra

QUEUE_ARN = "arn:aws:sqs:us-east-1:111122223333:orders-on-failure"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
STREAM_ARN = "arn:aws:dynamodb:us-east-1:111122223333:table/orders/stream/2026-01-01T00:00:00.000"
FIREHOSE_ARN = "arn:aws:firehose:us-east-1:111122223333:deliverystream/ddbtrail-changes"
TOPIC_ARN = "arn:aws:sns:us-east-1:111122223333:ddbtrail-alarms"


def build(stack: Stack, **kwargs: Any) -> ScheduledRedrive:
    return ScheduledRedrive(
        stack, "Redrive", queue=sqs.Queue.from_queue_arn(stack, "Q", QUEUE_ARN),
        queue_key=kms.Key.from_key_arn(stack, "K", KEY_ARN), stream_arn=STREAM_ARN,
        delivery_stream_name="ddbtrail-changes", delivery_stream_arn=FIREHOSE_ARN, **kwargs)


def statement(template: Template, sid: str) -> dict[str, Any]:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            if st.get("Sid") == sid:
                return dict(st)
    raise AssertionError(f"no statement {sid}")


def test_scheduled_lambda_scoped_iam_and_alarms(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "RedriveTest")
    build(stack, schedule_minutes=10, alarm_age_seconds=7200, timeout_seconds=120,
          environment={"PACK_ROWS": "true", "TABLE_NAME": "orders"},
          alarm_topic=sns.Topic.from_topic_arn(stack, "T", TOPIC_ARN))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises if cdk-nag reports an unacknowledged finding
    template = Template.from_stack(stack)

    template.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": "rate(10 minutes)", "State": "ENABLED",
        "Targets": [Match.object_like({"RetryPolicy": {"MaximumRetryAttempts": 0}})]})
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "redrive.handler", "Timeout": 120,
        "Environment": {"Variables": Match.object_like({
            "DELIVERY_STREAM_NAME": "ddbtrail-changes", "VISIBILITY_TIMEOUT": "180",
            "PACK_ROWS": "true", "TABLE_NAME": "orders", "QUEUE_URL": Match.any_value()})}})

    queue = statement(template, "OnFailureQueue")
    assert queue["Resource"] == QUEUE_ARN
    assert sorted(queue["Action"]) == ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                                       "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert statement(template, "ReadStream")["Resource"] == STREAM_ARN
    assert statement(template, "Deliver")["Resource"] == FIREHOSE_ARN
    assert statement(template, "QueueKeyViaSqs")["Resource"] == KEY_ARN
    for sid in ("OnFailureQueue", "ReadStream", "Deliver", "QueueKeyViaSqs"):
        assert "*" not in str(statement(template, sid)["Resource"])

    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    age = next(a["Properties"] for a in alarms.values()
               if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage")
    assert age["Threshold"] == 7200 and age["Namespace"] == "AWS/SQS"
    assert age["ComparisonOperator"] == "GreaterThanThreshold"
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": "orders-on-failure"}]
    assert age["AlarmActions"] == [TOPIC_ARN]
    trimmed = next(a["Properties"] for a in alarms.values()
                   if a["Properties"]["MetricName"] == "TrimmedRanges")
    assert trimmed["Namespace"] == "ddbtrail" and trimmed["AlarmActions"] == [TOPIC_ARN]

    asset = tmp_path / "cdk.out" / ".staging" / "redrive"
    assert (asset / "redrive.py").is_file()
    assert (asset / "ddbtrail" / "capture" / "redrive.py").is_file()
    assert not (asset / "ddbtrail" / "cli").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"alarm_age_seconds": 86_400}, "alarm_age_seconds"),
    ({"schedule_minutes": 0}, "schedule_minutes"),
    ({"timeout_seconds": 901}, "timeout_seconds"),
])
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(Stack(App(outdir=str(tmp_path)), "S"), **kwargs)
