"""Compaction Lambda: one step of the compaction state machine (plan, or one partition).

Settings are read and the S3 client built once per container; the logic is
``ddbtrail.lake.scheduled.run_step`` on the lake at LAKE_URI, read through boto3 (the
pyarrow of AWS's SDK for pandas layer has no S3 of its own). A partition that fails
raises, so the state machine retries it with backoff and then records it.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from ddbtrail.lake.boto3fs import boto3_lake
from ddbtrail.lake.scheduled import CompactionSettings, run_step

logger = Logger(service="ddbtrail-compaction")
copy_config_to_registered_loggers(source_logger=logger, include={"ddbtrail"})

SETTINGS = CompactionSettings.from_env()
S3 = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))
LAKE = boto3_lake(SETTINGS.lake_uri, S3)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = run_step(LAKE, event, SETTINGS)
    logger.info(f"compaction {event.get('step')}", extra={"result": result})
    return result
