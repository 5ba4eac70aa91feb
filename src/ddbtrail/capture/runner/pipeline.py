"""The local capture pipeline: stream runner -> capture_batch -> local delivery stream -> lake.

The processor is the capture Lambda's own code path (``ddbtrail.capture.batch.capture_batch``)
into a ``Sink``: the local delivery stream where the Lambda has Firehose. The sink is
flushed before every checkpoint, so a checkpoint never covers rows only in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.capture.redaction_key import policy_from_env
from ddbtrail.capture.runner.checkpoint import CheckpointStore
from ddbtrail.capture.runner.esm import Processor, RunnerSettings, RunStats, StreamRunner
from ddbtrail.capture.runner.shards import error_code
from ddbtrail.core.exceptions import StreamNotEnabled, TableNotFound
from ddbtrail.core.redact import RedactionPolicy
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.delivery.sink import Sink
from ddbtrail.delivery.targets import open_sink
from ddbtrail.evidence.receipts import LakeReceipts, ReceiptStore
from ddbtrail.lake.files import Lake

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TableStream:
    """A table's current stream, as DescribeTable tells it."""

    table_name: str
    stream_arn: str
    view_type: str
    key_schema: list[dict[str, str]] = field(default_factory=list)
    attribute_types: dict[str, str] = field(default_factory=dict)


def table_stream(ddb: Any, table_name: str) -> TableStream:
    """The stream of a table. Raises TableNotFound or StreamNotEnabled naming the table."""
    try:
        desc = ddb.describe_table(TableName=table_name)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise TableNotFound(f"table {table_name!r} does not exist") from exc
        raise
    spec = desc.get("StreamSpecification") or {}
    arn = desc.get("LatestStreamArn")
    if not spec.get("StreamEnabled") or not arn:
        raise StreamNotEnabled(
            f"table {table_name!r} has no stream; enable one with NEW_AND_OLD_IMAGES "
            f"(aws dynamodb update-table --table-name {table_name} --stream-specification "
            "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES)")
    return TableStream(
        table_name=table_name,
        stream_arn=str(arn),
        view_type=str(spec.get("StreamViewType", "")),
        key_schema=list(desc.get("KeySchema", [])),
        attribute_types={a["AttributeName"]: a["AttributeType"]
                         for a in desc.get("AttributeDefinitions", [])},
    )


def capture_processor(sink: Sink, table_name: str,
                      redaction: RedactionPolicy | None = None,
                      receipts: ReceiptStore | None = None) -> Processor:
    """A processor that runs the capture Lambda's code path into ``sink``, leaving a
    receipt in ``receipts`` for every batch the sink accepted."""
    settings = CaptureSettings(table_name=table_name, redaction=redaction)

    def process(event: dict[str, Any]) -> dict[str, Any]:
        return capture_batch(event, sink=sink, settings=settings,
                             receipts=receipts).response()

    return process


def checkpoint_name(table_name: str) -> str:
    """The checkpoint folder of ``ddbtrail capture`` for a table."""
    return f"capture-{table_name}"


@dataclass(slots=True)
class CaptureRun:
    """A capture of one table into a lake, ready to ``run``."""

    runner: StreamRunner
    delivery: LocalDeliveryStream
    stream: TableStream

    def run(self, *, once: bool = False) -> RunStats:
        """Run until stopped (or drained with ``once``); flush and checkpoint at the end."""
        try:
            return self.runner.run(once=once)
        finally:
            # Rows of a batch interrupted mid-way may sit in the buffer: write them too
            # (duplicates at worst). A failure here leaves the checkpoint behind them.
            self.delivery.close()


def build_capture(
    table_name: str,
    lake: Lake,
    *,
    ddb: Any,
    streams: Any,
    fmt: str = "parquet",
    settings: RunnerSettings | None = None,
    on_progress: Callable[[RunStats], None] | None = None,
    buffer_seconds: float | None = None,
    redaction: RedactionPolicy | None = None,
) -> CaptureRun:
    """Wire table -> runner -> capture_batch -> local delivery stream -> lake.

    ``redaction`` defaults to the policy in the environment (REDACTION_POLICY with its
    key), as in the Lambda. Each batch the delivery stream accepts leaves a receipt
    under the lake's ``_ddbtrail/receipts/``, as the Lambda leaves one in S3. Raises
    TableNotFound, StreamNotEnabled, ConfigError for bad settings.
    """
    if redaction is None:
        redaction = policy_from_env()
    stream = table_stream(ddb, table_name)
    settings = settings or RunnerSettings()
    delivery = open_sink(
        "local", lake=lake, name=f"ddbtrail-{table_name}", fmt=fmt,
        buffer_seconds=(settings.checkpoint_interval if buffer_seconds is None
                        else buffer_seconds),
    )
    runner = StreamRunner(
        streams, stream.stream_arn,
        capture_processor(delivery, table_name, redaction, LakeReceipts(lake)),
        CheckpointStore(lake, checkpoint_name(table_name)), settings,
        before_checkpoint=delivery.flush, on_progress=on_progress,
    )
    return CaptureRun(runner, delivery, stream)
