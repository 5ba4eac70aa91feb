"""Hourly digests: the lake's closed hours sealed and signed with the stack's KMS key.

Settings are read and clients built once per container: LAKE_URI (``s3://bucket/prefix/``,
the lake) and SIGNING_KEY_ID (the KMS key, ECC_NIST_P256). The logic is
``ddbtrail.evidence.seal``, which writes a digest per table for each closed hour not yet
sealed, so a failed run is made good by the next one, and completes the compactions'
pending replacements (it alone signs their digests; it deletes their old files). A
replacement it must refuse fails the run (the DigestErrors alarm). See docs/evidence.md.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.settings import env_required
from ddbtrail.evidence import KmsSigner, seal
from ddbtrail.lake.boto3fs import boto3_lake

logger = Logger(service="ddbtrail-digests")
copy_config_to_registered_loggers(source_logger=logger, include={"ddbtrail"})

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
# Read through boto3: the SDK for pandas layer's pyarrow has no S3 of its own.
LAKE = boto3_lake(env_required(os.environ, "LAKE_URI"), boto3.client("s3", config=_CONFIG))
SIGNER = KmsSigner(env_required(os.environ, "SIGNING_KEY_ID"))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = seal(LAKE, signer=SIGNER)
    summary = {"digests": report.written, "files": report.files,
               "tables": sorted(report.digests), "replacements": report.replacements}
    logger.info("digests sealed", extra=summary)
    if report.failed:
        raise LakeError("pending replacement(s) kept with their old files: "
                        + "; ".join(map(str, report.failed)))
    return summary
