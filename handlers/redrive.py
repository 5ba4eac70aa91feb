"""Scheduled redrive: on-failure messages -> their stream ranges re-read -> Firehose.

Settings are read and clients built once per container: QUEUE_URL and the redrive options
(``ddbtrail.capture.redrive.RedriveSettings``), and the capture settings and sink the capture
Lambda uses (SPILL_BUCKET, REDACTION_POLICY, ...: ``CaptureSettings``; DELIVERY_STREAM_NAME,
...: ``sink_from_env``), so
redriven rows are exactly what the capture Lambda would have written. One log line and
metrics per range; trimmed ranges are logged as errors and their messages kept.
"""

from __future__ import annotations

from typing import Any, cast

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from ddbtrail.capture.batch import CaptureSettings
from ddbtrail.capture.redrive import RangeOutcome, RedriveSettings, redrive
from ddbtrail.delivery.targets import sink_from_env

logger = Logger(service="ddbtrail-redrive")
copy_config_to_registered_loggers(source_logger=logger, include={"ddbtrail"})
metrics = Metrics(namespace="ddbtrail", service="redrive")

SETTINGS = RedriveSettings.from_env()
CAPTURE = CaptureSettings.from_env()
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})
SQS = boto3.client("sqs", config=_CONFIG)
STREAMS = boto3.client("dynamodbstreams", config=_CONFIG)
# The sink names the service it needs; boto3 types clients by literal name only.
SINK = sink_from_env(client=lambda service: boto3.client(cast(Any, service), config=_CONFIG))
S3 = boto3.client("s3", config=_CONFIG) if CAPTURE.spill_bucket else None


def log_outcome(outcome: RangeOutcome) -> None:
    """One structured line per message: info when redriven, error when kept."""
    if outcome.error is None:
        logger.info(f"range {outcome.status}", extra=outcome.log_fields())
    else:
        logger.error(f"range {outcome.status}", extra=outcome.log_fields())


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, float]:
    report = redrive(
        SETTINGS.queue_url, sqs=SQS, streams=STREAMS, sink=SINK, capture=CAPTURE,
        s3=S3, discard_trimmed=SETTINGS.discard_trimmed, max_messages=SETTINGS.max_messages,
        visibility_timeout=SETTINGS.visibility_timeout,
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
        min_remaining_seconds=SETTINGS.min_remaining_seconds, on_outcome=log_outcome)
    counts = report.metrics()
    for name, value in counts.items():
        unit = MetricUnit.Seconds if name.endswith("Seconds") else MetricUnit.Count
        metrics.add_metric(name=name, unit=unit, value=value)
    return counts
