"""Optional: the scheduled redrive of one on-failure queue, and its alarms.

An EventBridge rule runs ``handlers/redrive.py`` every ``schedule_minutes``; it reads the
on-failure messages of ``queue``, re-reads each range from the stream and sends it to the
delivery stream (``ddbtrail.capture.redrive``). Two alarms make data about to leave the stream
visible before it is lost: the oldest message is older than ``alarm_age_seconds``, and a
range was found trimmed (metric ``TrimmedRanges``).

Usage (e.g. in the stack, per ``TableCapture``)::

    ScheduledRedrive(stack, "OrdersRedrive", queue=capture.dlq, queue_key=ops_key,
                     stream_arn=capture.stream_arn,
                     delivery_stream_name=delivery.stream_name,
                     delivery_stream_arn=delivery.stream_arn,
                     environment=capture_environment(cfg, table="orders", ...),
                     schedule_minutes=15, alarm_age_seconds=3600, alarm_topic=alarms.topic)

Constructor arguments (keyword-only):

* ``queue`` (required): the on-failure SQS queue; ``queue_key``: its KMS key, if any.
* ``stream_arn`` (required): the stream the ranges are read from (IAM is scoped to it;
  messages naming another stream stay in the queue with an AccessDenied error).
* ``delivery_stream_name``/``delivery_stream_arn`` (required): the Firehose stream.
* ``environment``: more variables for the function, e.g. the capture Lambda's (packing,
  redaction, spill) so redriven rows match captured ones; grant what they need on ``role``.
* ``schedule_minutes`` 1..1440 (default 15); ``alarm_age_seconds`` 60..86399 (default
  3600), below the stream's 24 h retention; ``timeout_seconds`` 30..900 (default 300;
  messages stay hidden for it plus 60 s while a run works on them); ``memory_mb``.
* ``alarm_topic``: SNS topic for both alarms' actions.
* ``code``/``powertools``: Lambda code and Powertools layer; by default the handler plus
  the ``ddbtrail`` package staged under the cloud assembly, and AWS's public layer.

Attributes: ``function``, ``role``, ``rule``, ``age_alarm``, ``trimmed_alarm``.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as C
from infra.constructs.capture import (
    powertools_layer,
    python_function,
    staged_code,
)

HANDLER_FILE = "redrive.py"
HANDLER = "redrive.handler"
STREAM_RETENTION_SECONDS = 86_400


class ScheduledRedrive(Construct):
    """A scheduled Lambda that redrives one on-failure queue, with two alarms."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        queue: sqs.IQueue,
        stream_arn: str,
        delivery_stream_name: str,
        delivery_stream_arn: str,
        queue_key: kms.IKey | None = None,
        environment: Mapping[str, str] | None = None,
        schedule_minutes: int = 15,
        alarm_age_seconds: int = 3600,
        timeout_seconds: int = 300,
        memory_mb: int = 512,
        alarm_topic: sns.ITopic | None = None,
        code: lambda_.Code | None = None,
        powertools: lambda_.ILayerVersion | None = None,
    ) -> None:
        super().__init__(scope, cid)
        if not 1 <= schedule_minutes <= 1440:
            raise ValueError(f"schedule_minutes {schedule_minutes} is outside 1..1440")
        if not 60 <= alarm_age_seconds < STREAM_RETENTION_SECONDS:
            raise ValueError(f"alarm_age_seconds {alarm_age_seconds} is outside 60..86399: "
                             "the alarm must fire before records leave the stream (24 h)")
        if not 30 <= timeout_seconds <= 900:
            raise ValueError(f"timeout_seconds {timeout_seconds} is outside 30..900")

        log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS,
                                  removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role",
                             assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description="ddbtrail redrive of an on-failure queue")
        statements = [
            iam.PolicyStatement(sid="OnFailureQueue", actions=[
                "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes"], resources=[queue.queue_arn]),
            iam.PolicyStatement(sid="ReadStream", actions=[
                "dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"],
                resources=[stream_arn]),
            iam.PolicyStatement(sid="Deliver", actions=["firehose:PutRecordBatch"],
                                resources=[delivery_stream_arn]),
            iam.PolicyStatement(sid="Logs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[log_group.log_group_arn]),
        ]
        if queue_key is not None:
            statements.append(iam.PolicyStatement(
                sid="QueueKeyViaSqs", actions=["kms:Decrypt"], resources=[queue_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{Aws.REGION}.amazonaws.com"}}))
        self.policy = iam.Policy(self, "Policy", roles=[self.role], statements=statements)

        env = dict(environment or {})
        env.update({
            "QUEUE_URL": queue.queue_url,
            "DELIVERY_STREAM_NAME": delivery_stream_name,
            # Hidden while a run works on them; a run stops receiving 60 s before its end.
            "VISIBILITY_TIMEOUT": str(timeout_seconds + 60),
            "MIN_REMAINING_SECONDS": "60",
            "POWERTOOLS_SERVICE_NAME": "ddbtrail-redrive",
        })
        self.function = python_function(
            self, "Function", handler=HANDLER,
            code=code or staged_code(self, HANDLER_FILE, "redrive"),
            layers=[powertools or powertools_layer(self, C.POWERTOOLS_LAYER_VERSION)],
            memory_mb=memory_mb, timeout_seconds=timeout_seconds,
            role=self.role, log_group=log_group, environment=env,
            description="ddbtrail: redrive failed stream batches from the on-failure queue")
        self.function.node.add_dependency(self.policy)

        # No retries of a failed run: the next scheduled run is the retry.
        self.rule = events.Rule(
            self, "Schedule", schedule=events.Schedule.rate(Duration.minutes(schedule_minutes)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
            description="ddbtrail: run the redrive of the on-failure queue")

        self.age_alarm = cloudwatch.Alarm(
            self, "OldestMessageAlarm",
            metric=queue.metric_approximate_age_of_oldest_message(
                statistic="Maximum", period=Duration.minutes(5)),
            threshold=alarm_age_seconds, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=("ddbtrail: an on-failure message is older than "
                               f"{alarm_age_seconds} s; redrive before its records leave the "
                               "stream (24 h)"))
        self.trimmed_alarm = cloudwatch.Alarm(
            self, "TrimmedRangesAlarm",
            metric=cloudwatch.Metric(namespace=C.METRICS_NAMESPACE, metric_name="TrimmedRanges",
                                     dimensions_map={"service": "redrive"}, statistic="Sum",
                                     period=Duration.minutes(5)),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=("ddbtrail: a failed batch was trimmed from the stream before "
                               "redrive; run 'ddbtrail backfill' (see docs/redrive.md)"))
        if alarm_topic is not None:
            for alarm in (self.age_alarm, self.trimmed_alarm):
                alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
