"""SQS copy consumer: messages from ``ddbtrail copy`` -> items in the target table.

TARGET_TABLE (required) and TARGET_REGION are read once per container. Each message is
put as is (idempotent: a redelivery writes the same item again); a message that fails is
reported in ``batchItemFailures`` by its messageId so SQS redelivers only it, and after
the queue's maxReceiveCount it moves to the dead-letter queue. Nothing is dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ddbtrail.capture.copy import write_message
from ddbtrail.core.settings import env_required

logger = Logger(service="ddbtrail-sqs-copy")
copy_config_to_registered_loggers(source_logger=logger, include={"ddbtrail"})
metrics = Metrics(namespace="ddbtrail", service="sqs-copy")



@dataclass(frozen=True, slots=True)
class CopySettings:
    """Where the copied items go."""

    target_table: str
    target_region: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CopySettings:
        """Read TARGET_TABLE (required) and TARGET_REGION; ConfigError names the variable."""
        env = os.environ if env is None else env
        return cls(target_table=env_required(env, "TARGET_TABLE"),
                   target_region=env.get("TARGET_REGION") or None)


SETTINGS = CopySettings.from_env()
TARGET = boto3.client("dynamodb", region_name=SETTINGS.target_region)
PROCESSOR = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    message = write_message(record.body, target=TARGET, table=SETTINGS.target_table)
    logger.debug("copied", extra={"item_key": message.item_key, "message_id": record.message_id})


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(event=event, record_handler=record_handler,
                                        processor=PROCESSOR, context=context)
    failed = len(response.get("batchItemFailures", []))
    metrics.add_metric(name="CopiedItems", unit=MetricUnit.Count,
                       value=len(event.get("Records", [])) - failed)
    metrics.add_metric(name="FailedMessages", unit=MetricUnit.Count, value=failed)
    return dict(response)
