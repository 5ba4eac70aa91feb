"""Helpers every encoder shares: JSON pointer tokens, text and set members checked, bytes
of base64 text, short renderings of bad values for messages."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from ddbtrail.core.exceptions import InvalidValue


def pointer_token(name: str) -> str:
    """Escape one attribute name for a JSON pointer (RFC 6901)."""
    if "~" in name or "/" in name:
        return name.replace("~", "~0").replace("/", "~1")
    return name


def _text(value: str, path: str, what: str) -> str:
    """``value`` if it can be stored as UTF-8, as DynamoDB stores strings."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidValue(f"{path}: {what} holds a lone surrogate "
                               f"({value[exc.start]!r} at offset {exc.start}), which "
                               "DynamoDB cannot store as UTF-8") from None
    return value


def _set_members(value: object, tag: str, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidValue(f"{path}: {tag} value must be a list")
    if not value:
        raise InvalidValue(f"{path}: {tag} value must not be empty")
    return value


def _duplicate(members: list[Any], key: Callable[[Any], Any] | None = None) -> Any | None:
    """The first member equal to an earlier one (by ``key``), or None."""
    seen: set[Any] = set()
    for m in members:
        k = m if key is None else key(m)
        if k in seen:
            return m
        seen.add(k)
    return None


def _check_unique(members: list[Any], tag: str, path: str,
                  key: Callable[[Any], Any] | None = None) -> None:
    dup = _duplicate(members, key)
    if dup is not None:
        raise InvalidValue(f"{path}: {tag} holds {_short(dup)} twice; the members of a "
                           "DynamoDB set are unique")


def _bytes_of(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
