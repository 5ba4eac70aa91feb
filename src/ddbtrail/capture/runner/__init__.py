"""The local stream runner: Lambda's event source mapping for DynamoDB Streams, on one machine.

A processor is ``Callable[[dict], dict]``: it receives the exact Lambda event
(``{"Records": [...]}``, eventSourceARN included, B/BS as base64 text,
ApproximateCreationDateTime as epoch seconds) and returns Lambda's response
(``{"batchItemFailures": [...]}``) or raises.
"""

from ddbtrail.capture.runner.checkpoint import Checkpoint, CheckpointStore
from ddbtrail.capture.runner.esm import (
    EsmSettings,
    Processor,
    RunnerSettings,
    RunStats,
    StreamRunner,
)
from ddbtrail.capture.runner.shards import (
    Shard,
    describe_shards,
    lambda_event,
    lambda_record,
    lineage_order,
    ready_shards,
)

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "EsmSettings",
    "Processor",
    "RunStats",
    "RunnerSettings",
    "Shard",
    "StreamRunner",
    "describe_shards",
    "lambda_event",
    "lambda_record",
    "lineage_order",
    "ready_shards",
]
