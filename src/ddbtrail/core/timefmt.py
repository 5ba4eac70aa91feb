"""Time formats: ISO-8601 text for rows and checkpoints, and the one parser of instants."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Final

from ddbtrail.core.exceptions import QueryError

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=4096)  # a batch shares one ingest time and few event seconds
def iso_ms(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.250Z``."""
    secs, ms = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ms:03d}Z"


def iso_s(when: float | datetime) -> str:
    """ISO-8601 UTC to the second, e.g. ``2024-05-01T12:00:00Z`` (Lambda's on-failure
    record format). ``when`` is epoch seconds (fraction dropped) or a datetime; an aware
    datetime is converted to UTC, a naive one is taken as UTC."""
    if isinstance(when, datetime):
        if when.tzinfo is not None:
            when = when.astimezone(UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def parse_timestamp(text: str, *, what: str = "timestamp") -> int:
    """ISO-8601 text -> epoch milliseconds (a value without an offset is UTC).

    Raises QueryError naming ``what``.
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise QueryError(f"{what}: {text!r} is not an ISO-8601 timestamp "
                         "(e.g. 2024-05-01T12:00:00Z)") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # Integer arithmetic: floats would misplace some milliseconds.
    return (when - _EPOCH) // timedelta(milliseconds=1)
