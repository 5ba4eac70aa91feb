"""Replication Lambda: DynamoDB Streams batch -> conditional writes to a target table.

Settings (TARGET_TABLE, TARGET_REGION, TARGET_ROLE_ARN, REPLICATION_ATTRIBUTE, DELETE_MODE,
TOMBSTONE_TTL_ATTRIBUTE) are read and the target client built once per container; the
logic is ``ddbtrail.capture.replicate.replicate_batch``. With TARGET_ROLE_ARN the credentials come
from STS and are refreshed before they expire. Failures come back as batchItemFailures.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ddbtrail.capture.replicate import ReplicateSettings, replicate_batch, target_client

logger = Logger(service="ddbtrail-replicate")
copy_config_to_registered_loggers(source_logger=logger, include={"ddbtrail"})
metrics = Metrics(namespace="ddbtrail", service="replicate")

SETTINGS = ReplicateSettings.from_env()
TARGET = target_client(SETTINGS)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = replicate_batch(
        event,
        target=TARGET,
        settings=SETTINGS,
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    if result.permanent is not None:
        logger.error(result.permanent)  # retries cannot fix it; the batch goes on-failure
    for name, value in result.metrics().items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return result.response()
