"""Canonical item keys: the ``item_key`` of a change, from typed or plain key values; the
hints column."""

from __future__ import annotations

from collections.abc import Mapping
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from ddbtrail.core.codec._fast import _plain_integer, _Slow
from ddbtrail.core.codec._json import _STDLIB_JSON, orjson
from ddbtrail.core.codec._numbers import (
    TypedValue,
    binary_text,
    canonical_number,
    number_text,
)
from ddbtrail.core.codec._values import pointer_token
from ddbtrail.core.exceptions import InvalidValue

# --------------------------------------------------------------------------- keys


def item_key(keys: Mapping[str, Any]) -> str:
    """Canonical key string: compact JSON of the key attributes, names sorted.

    Identical for every change of one item (numbers are canonicalised, because DynamoDB
    treats 1 and 1.0 as the same key) and distinct for distinct items of one table.
    """
    if orjson is not None:
        try:
            return _fast_item_key(keys)
        except _Slow:
            pass
    parts = []
    for name in sorted(keys):
        value = keys[name]
        if type(value) is not dict or len(value) != 1:
            raise InvalidValue(f"/keys/{pointer_token(name)}: expected one type tag")
        ((tag, raw),) = value.items()
        if tag == "S":
            if not isinstance(raw, str):
                raise InvalidValue(f"/keys/{pointer_token(name)}: S value must be a string")
            text = encode_basestring(raw)
        elif tag == "N":
            text = canonical_number(number_text(raw, f"/keys/{name}"))
        elif tag == "B":
            text = '"' + binary_text(raw, f"/keys/{name}") + '"'
        else:
            raise InvalidValue(f"/keys/{pointer_token(name)}: key attributes are S, N or B, "
                               f"not {tag}")
        parts.append(encode_basestring(name) + ":" + text)
    return "{" + ",".join(parts) + "}"


def _fast_item_key(keys: Mapping[str, Any]) -> str:
    """``item_key`` through orjson (same bytes); _Slow for anything unusual."""
    if keys.__class__ is not dict:
        raise _Slow
    plain: dict[str, Any] = {}
    for name in sorted(keys):
        value = keys[name]
        if value.__class__ is not dict or len(value) != 1:
            raise _Slow
        ((tag, raw),) = value.items()
        if tag == "S" and raw.__class__ is str:
            plain[name] = raw
        elif tag == "N" and raw.__class__ is str and _plain_integer(raw):
            plain[name] = orjson.Fragment(raw)  # a plain integer is its canonical spelling
        else:
            raise _Slow
    try:
        return orjson.dumps(plain).decode()
    except TypeError:
        raise _Slow from None


def item_key_from_plain(values: Mapping[str, str], types: Mapping[str, str]) -> str:
    """Build ``item_key`` from key values as text (``{"Id": "101"}``) and the key types.

    InvalidValue names the attribute whose value does not fit its type."""
    typed: dict[str, TypedValue] = {}
    for name, text in values.items():
        tag = types.get(name, "S")
        if tag == "B":
            typed[name] = {"B": text}
        elif tag == "N":
            typed[name] = {"N": number_text(text, name)}
        else:
            typed[name] = {"S": text}
    return item_key(typed)


def hints_json(hints: Mapping[str, str]) -> str | None:
    """The ``type_hints`` column: compact JSON, or None when there are no hints."""
    if not hints:
        return None
    if orjson is not None:  # orjson sorts by UTF-8 bytes: the same order as code points
        return orjson.dumps(hints, option=orjson.OPT_SORT_KEYS).decode()
    return _STDLIB_JSON.encode(dict(sorted(hints.items())))
