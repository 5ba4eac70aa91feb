"""Names and fixed values of the deployed pipeline, in one place.

Everything a user may want to change is a setting in ``infra.config``; what is here is
either dictated by AWS or by the rest of ddbtrail (the row schema, the capture Lambda).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ddbtrail.catalog import glue as catalog
from ddbtrail.delivery import processing
from ddbtrail.evidence import receipts
from ddbtrail.lake import replacements
from ddbtrail.lake.files import STATE_DIR

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
HANDLERS_DIR: Final = REPO_ROOT / "handlers"
CORE_PACKAGE_DIR: Final = REPO_ROOT / "src" / "ddbtrail"
QUERIES_DIR: Final = REPO_ROOT / "athena_queries"
FUNCTIONS_DIR: Final = Path(__file__).resolve().parent / "functions"
DEFAULT_CONFIG_FILE: Final = Path(__file__).resolve().parent / "config.json"

DEFAULT_STACK_NAME: Final = "ddbtrail"
DEFAULT_DATABASE: Final = catalog.DATABASE_NAME
DEFAULT_GLUE_TABLE: Final = catalog.TABLE_NAME
DEFAULT_WORKGROUP: Final = "ddbtrail"
DEFAULT_DEMO_TABLE: Final = "ddbtrail-demo"

# Lake layout inside the lake bucket. Only LAKE_PREFIX is in the Glue table; spill and
# quarantine sit beside it under the same key, lock and lifecycle (they are audit data too).
LAKE_PREFIX: Final = processing.LAKE_PREFIX
SPILL_PREFIX: Final = "spill/"
QUARANTINE_PREFIX: Final = "quarantine/"
ERROR_PREFIX: Final = processing.ERROR_PREFIX

# Firehose's dynamic-partitioning keys; the jq query reads the EVENT date the row carries.
# One definition (delivery/processing.py) serves the stack and the local delivery stream.
PARTITION_KEYS: Final = processing.PARTITION_KEYS
JQ_PARTITION_QUERY: Final = processing.Processing.for_stream(
    fmt="jsonl", packs_rows=True).partition_query
FIREHOSE_PREFIX: Final = processing.Processing.for_stream(fmt="jsonl", packs_rows=True).prefix

# Capture Lambda: the handler module in handlers/ plus the core package.
CAPTURE_HANDLER: Final = "stream_to_firehose.handler"
CAPTURE_HANDLER_FILE: Final = "stream_to_firehose.py"
# Not needed by the capture path (CLI, library API, doctor, local emulators, packaged data).
CAPTURE_ASSET_IGNORE: Final = ("__pycache__", "*.pyc", "cli", "local", "api", "health", "_data",
                                "py.typed")
LAMBDA_PYTHON: Final = "python3.12"
# Every function runs on Graviton; the asset carries orjson (the codec's fast path) built
# for it, as a manylinux wheel fetched once into LAMBDA_WHEEL_CACHE (no Docker).
LAMBDA_ARCHITECTURE: Final = "arm64"
LAMBDA_WHEELS: Final = ("orjson",)
# Versions and SHA-256s of what the asset bundles (`make lock`); the asset's hash then changes
# only when the code or a pin does.
LAMBDA_LOCK: Final = REPO_ROOT / "requirements" / "lambda.txt"
WHEEL_PLATFORMS: Final = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"),
}

# Powertools for AWS Lambda (Python) V3 public layer, arm64 build for LAMBDA_PYTHON.
# Layer version 27 is the one the Powertools docs list at the time of writing; override
# with -c powertools_layer_version=N (see docs/deploy.md).
POWERTOOLS_ACCOUNT: Final = "017000801446"
POWERTOOLS_LAYER_NAME: Final = "AWSLambdaPowertoolsPythonV3-python312-arm64"
POWERTOOLS_LAYER_VERSION: Final = 27

# Scheduled compaction of the Hive formats (infra/constructs/compaction.py). Daily at 00:45
# UTC: after midnight closes the day's partitions and Firehose's longest buffer (900 s,
# delivered within 1.5x) has flushed; before maintenance (01:30) builds snapshots from them.
COMPACTION_SCHEDULE: Final = "cron(45 0 * * ? *)"
# Memory of the compaction Lambda: 3,008 MB is what a new account may use without a quota
# increase; it compacts partitions up to ~270 MB (ddbtrail.lake.scheduled).
COMPACTION_MEMORY_MB: Final = 3008
COMPACTION_TIMEOUT_SECONDS: Final = 900
# Partitions compacted at once (Lambda invocations of one run), and per plan of a run.
COMPACTION_MAX_CONCURRENCY: Final = 10
COMPACTION_MAX_PARTITIONS: Final = 1000
# A run looks this many days back for closed partitions still to compact.
COMPACTION_LOOKBACK_DAYS: Final = 7
# Iceberg retention (-c format=iceberg -c expire_days=N): the daily DELETE of old rows.
RETENTION_SCHEDULE: Final = "cron(15 1 * * ? *)"

# pyarrow for the compaction Lambda: AWS's managed "AWS SDK for pandas" layer, Python 3.12
# on arm64, version 3.17.0 (aws-sdk-pandas docs/source/layers.rst). Layer versions and
# publishing accounts differ by Region, so the stack looks its Region up in this table.
SDK_FOR_PANDAS_VERSION: Final = "3.17.0"
SDK_FOR_PANDAS_LAYER_NAME: Final = "AWSSDKPandas-Python312-Arm64"
# Region -> (publishing account, layer version).
SDK_FOR_PANDAS_LAYERS: Final = {
    "af-south-1": ("336392948345", 28),
    "ap-northeast-1": ("336392948345", 29),
    "ap-northeast-2": ("336392948345", 29),
    "ap-northeast-3": ("336392948345", 29),
    "ap-south-1": ("336392948345", 29),
    "ap-southeast-1": ("336392948345", 29),
    "ap-southeast-2": ("336392948345", 29),
    "ca-central-1": ("336392948345", 29),
    "eu-central-1": ("336392948345", 29),
    "eu-north-1": ("336392948345", 29),
    "eu-west-1": ("336392948345", 29),
    "eu-west-2": ("336392948345", 29),
    "eu-west-3": ("336392948345", 29),
    "sa-east-1": ("336392948345", 29),
    "us-east-1": ("336392948345", 29),
    "us-east-2": ("336392948345", 29),
    "us-west-1": ("336392948345", 29),
    "us-west-2": ("336392948345", 29),
    "ap-east-1": ("839552336658", 26),
    "ap-south-2": ("246107603503", 26),
    "ap-southeast-3": ("258944054355", 26),
    "ap-southeast-4": ("945386623051", 26),
    "ca-west-1": ("941713567376", 3),
    "eu-central-2": ("956415814219", 26),
    "eu-south-1": ("774444163449", 26),
    "eu-south-2": ("982086096842", 26),
    "il-central-1": ("263840725265", 26),
    "me-central-1": ("593833071574", 26),
}

# CDK feature flags the app relies on (also in cdk.json): server access logs are granted by
# bucket policy, not by the legacy LogDeliveryWrite ACL (ACLs stay disabled everywhere).
FEATURE_FLAGS: Final = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
}

METRICS_NAMESPACE: Final = "ddbtrail"
METRICS_SERVICE: Final = "capture"

# Evidence (issue 27, docs/evidence.md): the capture's receipts and the hourly signed digests
# live beside the data, under the lake prefix's ``_ddbtrail/`` (readers of the lake skip it).
RECEIPTS_PREFIX: Final = LAKE_PREFIX + receipts.DEFAULT_RECEIPTS_PREFIX  # the Glue table's too
DIGESTS_PREFIX: Final = f"{LAKE_PREFIX}{STATE_DIR}/digests/"
# A compaction's pending replacements (ddbtrail.lake.replacements), completed by the digests.
REPLACEMENTS_PREFIX: Final = f"{LAKE_PREFIX}{STATE_DIR}/{replacements.REPLACEMENTS_DIR}/"
DIGEST_HANDLER: Final = "seal_digests.handler"
DIGEST_HANDLER_FILE: Final = "seal_digests.py"
DIGEST_LAMBDA_MEMORY_MB: Final = 1_024
DIGEST_LAMBDA_TIMEOUT_SECONDS: Final = 900
# Hourly, this many minutes past the hour: the hour before is closed, and Firehose (at most a
# 900 s buffer) has delivered its files.
DIGEST_SCHEDULE_MINUTE: Final = 20
# Published by the daily reconciliation (namespace METRICS_NAMESPACE, dimension Table).
RECONCILE_METRICS: Final = ("ReceivedNotInLake", "InLakeWithoutReceipt")
RECONCILE_DIMENSION: Final = "Table"

# AWS limits the settings are checked against.
ESM_MAX_BATCH_SIZE: Final = 10_000
ESM_MAX_WINDOW_SECONDS: Final = 300
ESM_MAX_RECORD_AGE_SECONDS: Final = 604_800
STREAM_RETENTION_SECONDS: Final = 86_400
FIREHOSE_MIN_PARQUET_BUFFER_MB: Final = 64
FIREHOSE_MAX_BUFFER_MB: Final = 128
FIREHOSE_MAX_INTERVAL_SECONDS: Final = 900
ATHENA_MIN_CUTOFF_BYTES: Final = 10_000_000
NAMED_QUERY_MAX_CHARS: Final = 262_144
NAMED_QUERY_MAX_NAME: Final = 128
NAMED_QUERY_MAX_DESCRIPTION: Final = 1024
