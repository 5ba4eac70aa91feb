"""Time formats: ISO-8601 text for rows and checkpoints, and the one parser of instants."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from ddbtrail.core.exceptions import InvalidArgument, QueryError

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=4096)  # a batch shares one ingest time and few event seconds
def iso_ms(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.250Z``."""
    secs, ms = divmod(epoch_ms, 1000)
    when = time.gmtime(secs)
    # %Y drops the padding of years before 1000 on glibc; ISO-8601 wants four digits.
    return f"{when.tm_year:04d}" + time.strftime("-%m-%dT%H:%M:%S", when) + f".{ms:03d}Z"


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


# What every instant option accepts; docs/cli.md and --help quote it.
INSTANT_FORMS: Final = ("an ISO-8601 instant (2024-05-01T12:00:00Z; no offset means UTC), "
                        "a date (2024-05-01, midnight UTC) or 'now'")
INSTANT_HELP: Final = "ISO-8601 instant, date (midnight UTC) or 'now'"


def parse_instant(text: str, *, what: str, now_ms: Callable[[], int] | None = None) -> int:
    """An instant argument's text -> epoch milliseconds. The one parser of every argument
    that names an instant (``at``, ``since``, ``before``, timestamp parameters).

    Accepts an ISO-8601 instant (no offset means UTC), a date (midnight UTC) or ``now``
    (any case). Raises InvalidArgument naming ``what`` and echoing ``text``.
    """
    raw = text.strip()
    if raw.lower() == "now":
        return now_ms() if now_ms is not None else time.time_ns() // 1_000_000
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument(what, text, f"expected {INSTANT_FORMS}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(milliseconds=1)
