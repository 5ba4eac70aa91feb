"""Typed items -> plain JSON text plus type hints, exactly (the reference path every other
path must match)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from ddbtrail.core.codec._fast import _GIVE_UP, _fragment, _orjson_text, _plain_map, _stdlib_text
from ddbtrail.core.codec._json import orjson
from ddbtrail.core.codec._numbers import Hints, binary_text, number_text
from ddbtrail.core.codec._values import (
    _bytes_of,
    _check_unique,
    _set_members,
    _short,
    _text,
    pointer_token,
)
from ddbtrail.core.exceptions import InvalidValue

# --------------------------------------------------------------------------- encode


class _Encoder:
    """The exact encoder: writes plain JSON for typed values into a list of string parts.

    The reference for the fast path (which must give the same text and hints or defer to
    this) and the source of every error message.
    """

    __slots__ = ("ascii", "enc_str", "hints", "out")

    def __init__(self, *, ascii_only: bool) -> None:
        self.out: list[str] = []
        self.hints: Hints = {}
        self.ascii = ascii_only
        self.enc_str: Callable[[str], str] = (
            encode_basestring_ascii if ascii_only else encode_basestring
        )

    def item(self, item: Mapping[str, Any], path: str) -> None:
        if not isinstance(item, Mapping):
            raise InvalidValue(f"{path or '/'}: expected a map of attributes, "
                               f"got {type(item).__name__}")
        out = self.out
        out.append("{")
        first = True
        for name, value in item.items():
            if not isinstance(name, str):
                raise InvalidValue(f"{path or '/'}: attribute name {name!r} is not a string")
            _text(name, path + "/" + pointer_token(name), "the attribute name")
            if first:
                first = False
            else:
                out.append(",")
            out.append(self.enc_str(name))
            out.append(":")
            self.value(value, path + "/" + pointer_token(name))
        out.append("}")

    def value(self, value: Any, path: str) -> None:
        if type(value) is not dict or len(value) != 1:
            raise InvalidValue(f"{path}: expected one type tag such as {{\"S\": ...}}, "
                               f"got {_short(value)}")
        ((tag, raw),) = value.items()
        out = self.out
        if tag == "S":
            if not isinstance(raw, str):
                raise InvalidValue(f"{path}: S value must be a string")
            out.append(self.enc_str(_text(raw, path, "the S value")))
        elif tag == "N":
            out.append(number_text(raw, path))
        elif tag == "M":
            self.item(raw, path)
        elif tag == "L":
            if not isinstance(raw, list):
                raise InvalidValue(f"{path}: L value must be a list")
            out.append("[")
            for i, member in enumerate(raw):
                if i:
                    out.append(",")
                self.value(member, f"{path}/{i}")
            out.append("]")
        elif tag == "BOOL":
            if not isinstance(raw, bool):
                raise InvalidValue(f"{path}: BOOL value must be true or false")
            out.append("true" if raw else "false")
        elif tag == "NULL":
            if raw is not True:
                raise InvalidValue(f"{path}: NULL value must be true")
            out.append("null")
        elif tag == "B":
            out.append('"' + binary_text(raw, path) + '"')
            self.hints[path] = "B"
        elif tag == "SS":
            members = _set_members(raw, tag, path)
            for m in members:
                if not isinstance(m, str):
                    raise InvalidValue(f"{path}: SS members must be strings")
                _text(m, path, "an SS member")
            _check_unique(members, tag, path)
            out.append("[" + ",".join(map(self.enc_str, members)) + "]")
            self.hints[path] = "SS"
        elif tag == "NS":
            members = _set_members(raw, tag, path)
            texts = [number_text(m, path) for m in members]
            _check_unique(texts, tag, path, Decimal)
            out.append("[" + ",".join(texts) + "]")
            self.hints[path] = "NS"
        elif tag == "BS":
            members = _set_members(raw, tag, path)
            texts = [binary_text(m, path) for m in members]
            _check_unique(texts, tag, path, _bytes_of)
            out.append("[" + ",".join('"' + t + '"' for t in texts) + "]")
            self.hints[path] = "BS"
        else:
            raise InvalidValue(f"{path}: unknown type tag {tag!r}")


def encode_item(item: Mapping[str, Any], root: str = "", *,
                ascii_only: bool = False) -> tuple[str, Hints]:
    """A typed item -> (plain JSON text, type hints under ``root``).

    ``root`` prefixes every hint's pointer, e.g. ``/new_image``. B values may be base64
    text (stream events) or bytes (boto3). Raises InvalidValue naming the bad path for
    any value DynamoDB itself would refuse.
    """
    hints: Hints = {}
    if not ascii_only:  # ASCII-only text is for rare callers: the exact encoder writes it
        try:
            if orjson is not None:
                return _orjson_text(_plain_map(item, root, hints, _fragment)), hints
            return _stdlib_text(item, root, hints), hints
        except _GIVE_UP:
            pass
    enc = _Encoder(ascii_only=ascii_only)
    enc.item(item, root)
    return "".join(enc.out), enc.hints


def _encode_into(item: Mapping[str, Any], root: str, hints: Hints) -> str:
    """``encode_item`` adding its hints to ``hints`` (a fast path that gives up part way
    may have added some: the exact encoder then adds the same ones, with the same types)."""
    try:
        if orjson is not None:
            return _orjson_text(_plain_map(item, root, hints, _fragment))
        return _stdlib_text(item, root, hints)
    except _GIVE_UP:
        enc = _Encoder(ascii_only=False)
        enc.item(item, root)
        hints.update(enc.hints)
        return "".join(enc.out)
