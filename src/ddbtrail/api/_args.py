"""Arguments as the API takes them: instants, item keys and settings from the environment.

Every function here raises InvalidArgument naming the parameter (``at``, ``key``), never
a command-line option; the CLI maps the name to its option.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from ddbtrail.core.exceptions import InvalidArgument
from ddbtrail.core.timefmt import INSTANT_FORMS, parse_instant

# An instant: ISO-8601 text, a date, "now", a datetime (naive is UTC) or epoch milliseconds.
Instant = str | datetime | date | int
# A key value: plain (str, int, Decimal, bytes) or typed ({"S": "x"}, {"N": "1"}, {"B": ...}).
KeyValue = str | int | Decimal | bytes | Mapping[str, Any]

KEY_TYPES: Final = ("S", "N", "B")


def setting(explicit: str | None, *env_names: str) -> str | None:
    """The explicit value, else the first environment variable set, else None."""
    if explicit is not None:
        return explicit
    return next((v for name in env_names if (v := os.environ.get(name))), None)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def instant_ms(value: Instant, param: str, *, now: int | None = None) -> int:
    """Epoch milliseconds of an instant argument; InvalidArgument naming ``param``.
    ``now``: the caller's clock reading for ``"now"`` (so it is never after it)."""
    if isinstance(value, bool):
        raise InvalidArgument(param, value, f"expected {INSTANT_FORMS}")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(when.timestamp() * 1000)
    if isinstance(value, date):
        return instant_ms(value.isoformat(), param)
    if isinstance(value, str):
        try:
            return parse_instant(value, what=param,
                                 now_ms=None if now is None else lambda: now)
        except InvalidArgument as exc:
            raise InvalidArgument(param, value, exc.reason) from None
    raise InvalidArgument(param, repr(value), f"expected {INSTANT_FORMS}")


def not_future(at_ms: int, value: Instant, param: str, *, now: int | None = None) -> None:
    """InvalidArgument for an instant after now: no change has happened there yet."""
    if at_ms > (now_ms() if now is None else now):
        raise InvalidArgument(param, value if isinstance(value, str | int) else str(value),
                              "in the future; the lake holds changes that have happened")


def key_text(name: str, value: KeyValue) -> tuple[str, str | None]:
    """(text, type tag or None when plain text leaves the type to the table) of one key
    value; InvalidArgument naming ``key`` for a value no key attribute can hold."""
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in KEY_TYPES:
            raise InvalidArgument("key", f"{name}={value!r}",
                                  "a typed key value is one of {'S': ...}, {'N': ...}, "
                                  "{'B': ...}")
        ((tag, raw),) = value.items()
        if tag == "B" and isinstance(raw, bytes | bytearray):
            return base64.b64encode(raw).decode(), "B"
        return str(raw), tag
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal | bytes):
        raise InvalidArgument("key", f"{name}={value!r}",
                              "a key value is a str, int, Decimal or bytes")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode(), "B"
    # Plain text and numbers take the table's key type, so {"order_id": "1"} works too.
    return str(value), None
