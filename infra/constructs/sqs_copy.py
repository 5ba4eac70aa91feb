"""Optional: the consumer side of ``ddbtrail copy`` (queue, DLQ, writer Lambda).

Deploy it in the *target* account and region. ``ddbtrail copy`` (run with credentials of
the source account) sends items to ``queue``; the Lambda (``handlers/sqs_copy.py``) puts
them into the target table at a rate bounded by ``batch_size`` x ``max_concurrency``.

Usage::

    SqsCopy(stack, "Copy", target_table_name="orders-copy",
            sender_account_ids=["111122223333"],      # who may send (cross-account)
            batch_size=10, max_concurrency=2, reserved_concurrency=5)

Constructor arguments (all keyword-only):

* ``target_table_name`` (required), ``target_table_arn`` (default: that table in the
  stack's account and region), ``target_region`` (default: the Lambda's region).
* ``batch_size`` 1..10 messages per invocation (10 is SQS's limit without a batching
  window); ``max_batching_window_seconds`` 0..300.
* ``max_concurrency`` 2..1000: the event source mapping's maximum concurrency, the
  throttle that does not make SQS count throttled deliveries as receives.
* ``reserved_concurrency``: reserved concurrency of the function (>= max_concurrency), so
  other functions cannot starve it; None for none.
* ``max_receive_count`` (default 5): receives before a message moves to the DLQ.
* ``timeout_seconds`` of the function; the queue's visibility timeout is six times it,
  as AWS recommends for Lambda consumers.
* ``sender_account_ids``: accounts allowed to SendMessage (the queue uses SQS-managed
  encryption, so senders need no KMS grant).
* ``code``/``powertools``: Lambda code and Powertools layer; by default the handler plus
  the ``ddbtrail`` package staged under the cloud assembly, and AWS's public layer.

Attributes: ``queue``, ``dlq``, ``function``, ``event_source``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as C
from infra.constructs.capture import (
    powertools_layer,
    python_function,
    staged_code,
)
from infra.constructs.nag import acknowledge

HANDLER_FILE = "sqs_copy.py"
HANDLER = "sqs_copy.handler"


class SqsCopy(Construct):
    """Queue + dead-letter queue + a throttled Lambda that writes copied items."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        target_table_name: str,
        target_table_arn: str | None = None,
        target_region: str | None = None,
        batch_size: int = 10,
        max_batching_window_seconds: int = 0,
        max_concurrency: int = 2,
        reserved_concurrency: int | None = 5,
        max_receive_count: int = 5,
        timeout_seconds: int = 30,
        memory_mb: int = 256,
        sender_account_ids: Sequence[str] = (),
        code: lambda_.Code | None = None,
        powertools: lambda_.ILayerVersion | None = None,
    ) -> None:
        super().__init__(scope, cid)
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"batch_size {batch_size} is outside 1..10000")
        if batch_size > 10 and max_batching_window_seconds == 0:
            raise ValueError("batch_size above 10 needs max_batching_window_seconds >= 1")
        if not 0 <= max_batching_window_seconds <= 300:
            raise ValueError("max_batching_window_seconds is outside 0..300")
        if not 2 <= max_concurrency <= 1000:
            raise ValueError(f"max_concurrency {max_concurrency} is outside 2..1000")
        if reserved_concurrency is not None and reserved_concurrency < max_concurrency:
            raise ValueError("reserved_concurrency must be at least max_concurrency, or "
                             "throttled deliveries count as receives and reach the DLQ")
        if max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")

        self.dlq = sqs.Queue(self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED,
                             enforce_ssl=True, retention_period=Duration.days(14))
        acknowledge(self.dlq, "AwsSolutions-SQS3",
                    "This queue is the dead-letter queue of the copy queue.")
        self.queue = sqs.Queue(
            self, "Queue", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * timeout_seconds),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq,
                                                  max_receive_count=max_receive_count))
        for account in sender_account_ids:
            self.queue.grant_send_messages(iam.AccountPrincipal(account))

        table_arn = target_table_arn or (
            f"arn:{Aws.PARTITION}:dynamodb:{Aws.REGION}:{Aws.ACCOUNT_ID}:table/"
            f"{target_table_name}")
        log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS,
                                  removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"ddbtrail copy into table {target_table_name}")
        role.add_to_policy(iam.PolicyStatement(actions=["dynamodb:PutItem"],
                                               resources=[table_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn]))

        environment = {"TARGET_TABLE": target_table_name,
                       "POWERTOOLS_SERVICE_NAME": "ddbtrail-sqs-copy"}
        if target_region:
            environment["TARGET_REGION"] = target_region
        self.function = python_function(
            self, "Function", handler=HANDLER,
            code=code or staged_code(self, HANDLER_FILE, "sqs-copy"),
            layers=[powertools or powertools_layer(self, C.POWERTOOLS_LAYER_VERSION)],
            memory_mb=memory_mb, timeout_seconds=timeout_seconds,
            reserved_concurrency=reserved_concurrency,
            role=role, log_group=log_group, environment=environment,
            description=f"ddbtrail: copy queue -> {target_table_name}")

        self.event_source = sources.SqsEventSource(
            self.queue, batch_size=batch_size,
            max_batching_window=(Duration.seconds(max_batching_window_seconds)
                                 if max_batching_window_seconds else None),
            max_concurrency=max_concurrency, report_batch_item_failures=True)
        self.function.add_event_source(self.event_source)

        # Anything in the DLQ is an item that did not reach the target: make it loud.
        self.dlq_alarm = cloudwatch.Alarm(
            self, "DeadLettersAlarm",
            metric=self.dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5)),
            threshold=0, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            alarm_description="ddbtrail copy: messages in the dead-letter queue")
