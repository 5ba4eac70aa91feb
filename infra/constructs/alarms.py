"""Alarms: IteratorAge, DLQ depth, Lambda errors, quarantined records, and Firehose
delivery failures, conversion failures and freshness. All notify one encrypted SNS topic."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as C
from infra.config import DeployConfig
from infra.constructs.capture import TableCapture

_FIVE_MIN = Duration.minutes(5)


class Alarms(Construct):
    """``topic`` and ``alarms`` (by construct id)."""

    def __init__(self, scope: Construct, cid: str, *, cfg: DeployConfig, key: kms.IKey,
                 captures: Sequence[TableCapture], delivery_stream_name: str) -> None:
        super().__init__(scope, cid)
        self.topic = sns.Topic(self, "Topic", display_name="ddbtrail alarms",
                               master_key=key, enforce_ssl=True)
        if cfg.alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(cfg.alarm_email))
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cw.Alarm] = {}

        for cap in captures:
            fn = {"FunctionName": cap.function.function_name}
            t = cap.table
            self._alarm(
                f"{cap.node.id}IteratorAge", f"{t}: capture is falling behind the stream",
                cw.Metric(namespace="AWS/Lambda", metric_name="IteratorAge", dimensions_map=fn,
                          statistic="Maximum", period=_FIVE_MIN),
                cfg.iterator_age_alarm_ms, periods=2)
            self._alarm(
                f"{cap.node.id}Errors", f"{t}: capture Lambda errors (batches are retried)",
                cw.Metric(namespace="AWS/Lambda", metric_name="Errors", dimensions_map=fn,
                          statistic="Sum", period=_FIVE_MIN),
                cfg.lambda_errors_alarm)
            self._alarm(
                f"{cap.node.id}OnFailure",
                f"{t}: stream records gave up after retries; redrive them before they leave "
                "the stream (24 h)",
                cap.dlq.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=Duration.minutes(1)),
                cfg.dlq_alarm_messages)

        self._alarm(
            "QuarantinedRecords",
            "Malformed stream records were quarantined in S3 instead of the lake",
            cw.Metric(namespace=C.METRICS_NAMESPACE, metric_name="QuarantinedRecords",
                      dimensions_map={"service": C.METRICS_SERVICE}, statistic="Sum",
                      period=_FIVE_MIN),
            1)

        def firehose(metric_name: str, statistic: str) -> cw.Metric:
            """A metric of the delivery stream, over five minutes."""
            return cw.Metric(namespace="AWS/Firehose", metric_name=metric_name,
                             dimensions_map={"DeliveryStreamName": delivery_stream_name},
                             statistic=statistic, period=_FIVE_MIN)

        to = "DeliveryToIceberg" if cfg.format == "iceberg" else "DeliveryToS3"
        # Success is reported per delivery attempt: a minimum below 1 means a failed one.
        self._alarm(
            "DeliveryFailures", "Firehose failed to deliver to S3 (it retries for 24 h)",
            firehose(f"{to}.Success", "Minimum"),
            1, comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD, periods=2)
        self._alarm(
            "Freshness", "The oldest record in Firehose is older than the freshness threshold",
            firehose(f"{to}.DataFreshness", "Maximum"),
            cfg.freshness_alarm_seconds)
        self._alarm(
            "PartitionCountExceeded", "Firehose ran out of active dynamic partitions",
            firehose("PartitionCountExceeded", "Maximum"), 1)
        if cfg.format == "iceberg":
            self._alarm(
                "IcebergFailedRows",
                "Rows Firehose could not write to the Iceberg table went to the error prefix",
                firehose("DeliveryToIceberg.FailedRowCount", "Sum"), 1)
        if cfg.format == "parquet":
            self._alarm(
                "ConversionFailures",
                "Rows failed Parquet conversion and went to the error prefix, not the lake",
                firehose("FailedConversion.Records", "Sum"), 1)

    def _alarm(self, cid: str, description: str, metric: cw.IMetric, threshold: float, *,
               comparison: cw.ComparisonOperator = (
                   cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD),
               periods: int = 1) -> None:
        alarm = cw.Alarm(self, cid, metric=metric, threshold=threshold,
                         evaluation_periods=periods, comparison_operator=comparison,
                         alarm_description=f"ddbtrail: {description}",
                         treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
        alarm.add_alarm_action(self._action)
        self.alarms[cid] = alarm


def run_alarms(scope: Construct, machine: sfn.StateMachine, topic: sns.ITopic,
               description: str) -> dict[str, cw.Alarm]:
    """Failed, TimedOut and Aborted alarms of ``machine`` (any run in an hour), notifying
    ``topic``; ``description`` has ``{kind}`` for failed, timed out or aborted."""
    alarms = {}
    for kind, metric in (("Failed", machine.metric_failed()),
                         ("TimedOut", machine.metric_timed_out()),
                         ("Aborted", machine.metric_aborted())):
        alarm = cw.Alarm(
            scope, f"{kind}Alarm", metric=metric.with_(period=Duration.hours(1),
                                                       statistic="Sum"),
            threshold=1, evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description="ddbtrail: " + description.format(
                kind={"TimedOut": "timed out"}.get(kind, kind.lower())))
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
        alarms[kind] = alarm
    return alarms
