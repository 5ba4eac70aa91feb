"""The optional SQS copy construct: queue, DLQ, throttled writer Lambda; cdk-nag clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk import App, Stack, Validations
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.constructs.sqs_copy import SqsCopy

pytestmark = pytest.mark.infra


def synth(tmp_path: Path, **kwargs: Any) -> Template:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "CopyTest")
    SqsCopy(stack, "Copy", target_table_name="orders-copy", **kwargs)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises if cdk-nag reports an unacknowledged finding
    return Template.from_stack(stack)


def test_queue_dlq_and_throttled_writer(tmp_path: Path) -> None:
    template = synth(tmp_path, batch_size=5, max_concurrency=3, reserved_concurrency=4,
                     max_receive_count=7, timeout_seconds=20, sender_account_ids=["111122223333"])
    template.resource_count_is("AWS::SQS::Queue", 2)
    template.has_resource_properties("AWS::SQS::Queue", {
        "VisibilityTimeout": 120,
        "RedrivePolicy": {"maxReceiveCount": 7, "deadLetterTargetArn": Match.any_value()},
        "SqsManagedSseEnabled": True,
    })
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "sqs_copy.handler", "ReservedConcurrentExecutions": 4, "Timeout": 20,
        "Environment": {"Variables": Match.object_like({"TARGET_TABLE": "orders-copy"})},
    })
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 5, "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 3},
    })
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {
        "Statement": Match.array_with([Match.object_like({
            "Action": "dynamodb:PutItem",
            "Resource": {"Fn::Join": ["", Match.array_with([
                Match.string_like_regexp(":table/orders-copy")])]}})])}})
    template.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {
        "Statement": Match.array_with([Match.object_like({
            "Action": Match.array_with(["sqs:SendMessage"]),
            "Principal": {"AWS": Match.any_value()}})])}})
    asset = tmp_path / "cdk.out" / ".staging" / "sqs-copy"
    assert (asset / "sqs_copy.py").is_file()
    assert (asset / "ddbtrail" / "capture" / "copy.py").is_file()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_concurrency": 1}, "max_concurrency"),
    ({"max_concurrency": 6, "reserved_concurrency": 5}, "reserved_concurrency"),
    ({"batch_size": 50}, "batching_window"),
])
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SqsCopy(Stack(App(outdir=str(tmp_path)), "S"), "Copy", target_table_name="t", **kwargs)
