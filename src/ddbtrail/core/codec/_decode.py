"""Plain JSON text plus type hints -> typed items."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from ddbtrail.core.codec._numbers import Hints, JsonNumber, TypedItem, TypedValue
from ddbtrail.core.codec._values import pointer_token
from ddbtrail.core.exceptions import InvalidValue

# --------------------------------------------------------------------------- decode


def _reject_constant(name: str) -> None:
    raise InvalidValue(f"plain JSON may not hold {name}")


def parse_plain(text: str) -> Any:
    """Parse plain JSON; numbers come back as JsonNumber holding their exact text."""
    try:
        return json.loads(text, parse_int=JsonNumber, parse_float=JsonNumber,
                          parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidValue(f"not valid JSON: {exc}") from exc


def decode_item(plain: str | Mapping[str, Any], hints: Mapping[str, str] | None = None,
                root: str = "", *, binary_as_bytes: bool = False) -> TypedItem:
    """Plain JSON (text, or parsed by ``parse_plain``) + hints -> the exact typed item.

    With ``binary_as_bytes`` B and BS values are bytes, as boto3's low-level client wants
    them; otherwise base64 text as in stream events.
    """
    value = parse_plain(plain) if isinstance(plain, str) else plain
    if not isinstance(value, Mapping):
        raise InvalidValue(f"{root or '/'}: expected a JSON object")
    dec = _Decoder(hints or {}, binary_as_bytes)
    return {name: dec.value(v, root + "/" + pointer_token(name)) for name, v in value.items()}


class _Decoder:
    __slots__ = ("as_bytes", "hints")

    def __init__(self, hints: Mapping[str, str], as_bytes: bool) -> None:
        self.hints = hints
        self.as_bytes = as_bytes

    def _bin(self, text: Any, path: str) -> Any:
        if not isinstance(text, str):
            raise InvalidValue(f"{path}: hinted binary must be base64 text")
        if self.as_bytes:
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidValue(f"{path}: not valid base64") from None
        return text

    def value(self, value: Any, path: str) -> TypedValue:
        hint = self.hints.get(path) if self.hints else None
        if hint is not None:
            if hint == "B":
                return {"B": self._bin(value, path)}
            if not isinstance(value, list):
                raise InvalidValue(f"{path}: hinted {hint} must be a JSON array")
            if hint == "SS":
                return {"SS": [str(m) for m in value]}
            if hint == "NS":
                return {"NS": [str(m) for m in value]}
            if hint == "BS":
                return {"BS": [self._bin(m, path) for m in value]}
            raise InvalidValue(f"{path}: unknown type hint {hint!r}")
        if isinstance(value, JsonNumber):
            return {"N": str(value)}
        if isinstance(value, str):
            return {"S": value}
        if value is True or value is False:
            return {"BOOL": value}
        if value is None:
            return {"NULL": True}
        if isinstance(value, dict):
            return {"M": {k: self.value(v, path + "/" + pointer_token(k))
                          for k, v in value.items()}}
        if isinstance(value, list):
            return {"L": [self.value(v, f"{path}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, int | float):  # plain values built in Python, not parsed
            raise InvalidValue(f"{path}: numbers must be JsonNumber text, got {value!r}")
        raise InvalidValue(f"{path}: cannot type {type(value).__name__}")


def hints_under(hints: Mapping[str, str], root: str) -> Hints:
    """The hints below ``root`` (e.g. ``/new_image``), re-rooted at the item."""
    prefix = root + "/"
    return {p[len(root):]: t for p, t in hints.items() if p.startswith(prefix)}
