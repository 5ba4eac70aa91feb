"""What capture needs from any delivery target: the ``Sink`` protocol.

Capture (the Lambda's batch path, backfill, redrive) encodes rows and hands them to a
sink; it never knows which service is behind it. Amazon Data Firehose
(``ddbtrail.delivery.firehose.FirehoseSink``) and the local delivery stream
(``ddbtrail.delivery.local.LocalDeliveryStream``) implement it; a new target (Kinesis
Data Streams, a direct Iceberg writer) is one more module in ``delivery/`` and one more
branch in ``ddbtrail.delivery.targets.sink_from_env``, with no change to capture.

The contract is at-least-once: ``send`` either takes a row or names its source in
``DeliveryReport.failed_sources``; it never drops one silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable


class EncodedRow(NamedTuple):  # a tuple: capture makes one per row on the hot path
    """One row as bytes (newline-terminated) with the batch position of its source record."""

    data: bytes
    source: int
    partition: tuple[str, str]


@dataclass(slots=True)
class DeliveryReport:
    """What a delivery did: counts for metrics, and which source records did not make it.

    ``records_sent`` counts the target's own records (a Firehose record may hold several
    rows); ``billed_units`` is the target's billing unit (0 where none applies).
    """

    calls: int = 0
    records_sent: int = 0
    rows_sent: int = 0
    bytes_sent: int = 0
    billed_units: int = 0
    retried_entries: int = 0
    throttled_calls: int = 0
    failed_sources: set[int] = field(default_factory=set)
    last_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed_sources


@runtime_checkable
class Sink(Protocol):
    """A delivery target for change rows."""

    @property
    def name(self) -> str:
        """How errors and logs name the target (a delivery stream name)."""
        ...

    @property
    def max_row_bytes(self) -> int:
        """The largest row ``send`` takes; capture spills a larger one to S3 first."""
        ...

    def send(self, rows: Sequence[EncodedRow], *,
             deadline: Callable[[], float] | None = None) -> DeliveryReport:
        """Deliver rows, retrying as the target needs; report what could not be delivered.

        ``deadline`` returns the seconds left (Lambda's remaining time): no retry starts
        that could not finish in time.
        """
        ...

    def flush(self) -> object:
        """Make every row ``send`` accepted durable (before a checkpoint covers it).

        Raises DeliveryFailed when it cannot; a no-op for a target that holds what it
        accepts (Firehose).
        """
        ...
