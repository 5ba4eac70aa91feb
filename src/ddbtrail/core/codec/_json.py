"""The JSON backend: orjson when installed (the fast path), else the standard library,
writing identical bytes."""

from __future__ import annotations

import json
from typing import Any, Final

# --------------------------------------------------------------------------- JSON backend

try:  # the fast path; without it the standard library writes identical bytes
    import orjson as orjson  # noqa: PLC0414 - re-exported to the other codec modules
except ImportError:  # pragma: no cover - the fallback is tested in a subprocess
    orjson = None  # type: ignore[assignment]

#: True when orjson is importable (the Lambda asset ships it for its architecture).
FAST_JSON: Final = orjson is not None

_STDLIB_JSON: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                       allow_nan=False)


def fast_dumps(value: Any) -> bytes | None:
    """Compact JSON bytes from orjson, or None without orjson or for what it refuses
    (integers beyond 64 bits, lone surrogates): the caller then uses the standard
    library, which writes the same bytes for everything orjson accepts."""
    if orjson is None:
        return None
    try:
        return orjson.dumps(value)
    except TypeError:
        return None


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is: orjson, or the same bytes from json."""
    if orjson is not None:
        return orjson.dumps(value).decode()
    return _STDLIB_JSON.encode(value)
