"""Capture Lambda: DynamoDB Streams (or Kinesis) batch -> change rows -> Firehose.

Settings are read and clients built once per container; the logic is
``ddbtrail.capture.batch.capture_batch`` into the sink the environment names
(``ddbtrail.delivery.targets.sink_from_env``: Firehose). Failures come back as
``batchItemFailures``. With RECEIPTS_BUCKET set, each delivered batch leaves a receipt
there (``ddbtrail.evidence.receipts``).
"""

from __future__ import annotations

from typing import Any, cast

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.delivery.targets import sink_from_env

logger = Logger(service="ddbtrail-capture")
copy_config_to_registered_loggers(source_logger=logger, include={"ddbtrail"})
metrics = Metrics(namespace="ddbtrail", service="capture")

SETTINGS = CaptureSettings.from_env()  # reads the redaction key from Secrets Manager/SSM
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})
# The sink names the service it needs; boto3 types clients by literal name only.
SINK = sink_from_env(client=lambda service: boto3.client(cast(Any, service), config=_CONFIG))
# S3 takes spilled rows, quarantined records and receipts (RECEIPTS_BUCKET).
S3 = (boto3.client("s3", config=_CONFIG)
      if SETTINGS.spill_bucket or SETTINGS.receipts_bucket else None)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = capture_batch(
        event,
        sink=SINK,
        settings=SETTINGS,
        s3=S3,
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    for name, value in result.metrics().items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return result.response()
