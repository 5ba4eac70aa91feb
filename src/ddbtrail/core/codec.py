"""DynamoDB typed values <-> plain JSON text, lossless both ways.

Plain JSON is what people and SQL engines read: ``{"Id": 101, "Name": "x"}``. It keeps
every digit of a number (the number's own text is written as the JSON literal, never
through float or Decimal arithmetic), and binary as the base64 of its exact bytes.

What plain JSON cannot say on its own (B looks like S; SS, NS and BS look like L) goes
into *type hints*: a dict of JSON pointer (RFC 6901) -> ``B | SS | NS | BS``. Plain text
plus hints rebuild the exact typed item.

boto3's TypeDeserializer is not used on purpose: it raises ``decimal.Rounded`` on valid
numbers such as 110111111111111110000000000000000000000.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, InvalidOperation
from json.encoder import encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Final

from ddbtrail.core.exceptions import InvalidValue

TypedValue = dict[str, Any]
TypedItem = dict[str, TypedValue]
Hints = dict[str, str]

HINTED_TYPES: Final = frozenset({"B", "SS", "NS", "BS"})
ALL_TYPES: Final = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})

# Wide enough for any DynamoDB number, so normalize() never rounds.
_EXACT: Final = Context(prec=200, Emax=999_999, Emin=-999_999)
# A JSON number literal; anything else that Decimal accepts is normalised first.
_JSON_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


class JsonNumber(str):
    """The exact text of a number read from plain JSON (so it is never a float)."""

    __slots__ = ()


# --------------------------------------------------------------------------- numbers


def number_text(value: object, path: str = "") -> str:
    """The JSON literal for a DynamoDB N value, keeping every digit.

    Accepts the stream's string form, and an int (some hand-written events carry
    ``"N": 10``). A float is refused: its digits may already be gone.
    """
    if isinstance(value, str):
        if _JSON_NUMBER.match(value):
            return value
        try:
            dec = Decimal(value)
        except InvalidOperation:
            raise InvalidValue(f"{path or 'value'}: {value!r} is not a number") from None
        if not dec.is_finite():
            raise InvalidValue(f"{path or 'value'}: {value!r} is not a finite number")
        return str(dec)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        raise InvalidValue(
            f"{path or 'value'}: N value {value!r} is a JSON float, not a string; "
            "its exact digits are unknown"
        )
    raise InvalidValue(f"{path or 'value'}: N value must be a string, got {type(value).__name__}")


def canonical_number(text: str) -> str:
    """One spelling per numeric value (``1.0``, ``1`` and ``1E0`` all give ``1``).

    Used for item keys, where DynamoDB treats equal numbers as the same key.
    """
    dec = Decimal(number_text(text)).normalize(_EXACT)
    if dec.is_zero():
        return "0"
    if -40 <= dec.adjusted() <= 40:
        return f"{dec:f}"
    return f"{dec:E}"


# --------------------------------------------------------------------------- binary


def binary_text(value: object, path: str = "") -> str:
    """Base64 text of a B value: bytes from boto3, or base64 text from a stream event."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, str):
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidValue(f"{path or 'value'}: B value is not valid base64") from None
        return value
    raise InvalidValue(f"{path or 'value'}: B value must be base64 text or bytes, "
                       f"got {type(value).__name__}")


# --------------------------------------------------------------------------- encode


def pointer_token(name: str) -> str:
    """Escape one attribute name for a JSON pointer (RFC 6901)."""
    if "~" in name or "/" in name:
        return name.replace("~", "~0").replace("/", "~1")
    return name


def _set_members(value: object, tag: str, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidValue(f"{path}: {tag} value must be a list")
    if not value:
        raise InvalidValue(f"{path}: {tag} value must not be empty")
    return value


class _Encoder:
    """Writes plain JSON for typed values into a list of string parts."""

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
            out.append(self.enc_str(raw))
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
            out.append("[" + ",".join(map(self.enc_str, members)) + "]")
            self.hints[path] = "SS"
        elif tag == "NS":
            members = _set_members(raw, tag, path)
            out.append("[" + ",".join(number_text(m, path) for m in members) + "]")
            self.hints[path] = "NS"
        elif tag == "BS":
            members = _set_members(raw, tag, path)
            out.append("[" + ",".join('"' + binary_text(m, path) + '"' for m in members) + "]")
            self.hints[path] = "BS"
        else:
            raise InvalidValue(f"{path}: unknown type tag {tag!r}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def encode_item(item: Mapping[str, Any], root: str = "", *,
                ascii_only: bool = False) -> tuple[str, Hints]:
    """A typed item -> (plain JSON text, type hints under ``root``).

    ``root`` prefixes every hint's pointer, e.g. ``/new_image``. B values may be base64
    text (stream events) or bytes (boto3). Raises InvalidValue naming the bad path.
    """
    try:
        return _fast_encode(item, root, ascii_only)
    except _Slow:
        enc = _Encoder(ascii_only=ascii_only)
        enc.item(item, root)
        return "".join(enc.out), enc.hints


# The fast path: json.dumps (C) of the item with containers and sets unwrapped, then the
# scalar wrappers removed by regex templates (C). It is exact because in typed JSON text a
# map's values are always objects, so '{"S":"', '{"N":"' and '{"B":"' can only be
# wrappers; counts checked against the walk prove every wrapper was converted. Anything
# unusual (bad values, non-JSON number spellings, bytes) takes the exact slow path, which
# also produces the error messages.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_WRAPPERS: Final = re.compile(
    r'\{"S":(' + _STRING + r')\}'
    r'|\{"N":"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"\}'
    r'|\{"B":("[A-Za-z0-9+/]*={0,2}")\}'
)
_NULL: Final = '{"NULL":true}'
_TRUE: Final = '{"BOOL":true}'
_FALSE: Final = '{"BOOL":false}'


_JSON: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ASCII_JSON: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class _Slow(Exception):
    """The fast path does not apply; use the exact encoder."""


class _Walk:
    __slots__ = ("bools", "hints", "nulls", "wrappers")

    def __init__(self) -> None:
        self.wrappers = 0  # S, N and B wrappers left for the regex
        self.nulls = 0
        self.bools = 0
        self.hints: Hints = {}

    def map(self, m: Any, path: str) -> dict[str, Any]:
        if type(m) is not dict:
            raise _Slow
        out = {}
        for k, v in m.items():
            if type(v) is not dict:
                raise _Slow
            if len(v) == 1 and (type(v.get("S")) is str or type(v.get("N")) is str):
                self.wrappers += 1  # {"S": str} / {"N": str}: the regex checks the spelling
                out[k] = v
            else:
                out[k] = self.other(v, path, k)
        return out

    def list(self, items: Any, path: str) -> list[Any]:
        if type(items) is not list:
            raise _Slow
        out = []
        for i, v in enumerate(items):
            if type(v) is not dict:
                raise _Slow
            if len(v) == 1 and (type(v.get("S")) is str or type(v.get("N")) is str):
                self.wrappers += 1  # {"S": str} / {"N": str}: the regex checks the spelling
                out.append(v)
            else:
                out.append(self.other(v, path, i))
        return out

    def other(self, v: dict[str, Any], parent: str, key: str | int) -> Any:
        if len(v) != 1:
            raise _Slow
        ((tag, raw),) = v.items()
        if tag == "M":
            return self.map(raw, _child(parent, key))
        if tag == "L":
            return self.list(raw, _child(parent, key))
        if tag == "BOOL" and type(raw) is bool:
            self.bools += 1
            return v
        if tag == "NULL" and raw is True:
            self.nulls += 1
            return v
        if tag == "B":
            self.hints[_child(parent, key)] = "B"
            self.wrappers += 1
            return _b64_wrapper(raw)
        if type(raw) is not list or not raw:
            raise _Slow
        if tag == "SS":
            if not all(type(m) is str for m in raw):
                raise _Slow
            self.hints[_child(parent, key)] = "SS"
            return list(raw)
        if tag == "NS":
            if not all(type(m) is str for m in raw):
                raise _Slow
            self.hints[_child(parent, key)] = "NS"
            self.wrappers += len(raw)
            return [{"N": m} for m in raw]
        if tag == "BS":
            self.hints[_child(parent, key)] = "BS"
            self.wrappers += len(raw)
            return [_b64_wrapper(m) for m in raw]
        raise _Slow


def _child(parent: str, key: str | int) -> str:
    return f"{parent}/{key}" if isinstance(key, int) else parent + "/" + pointer_token(key)


def _b64_wrapper(raw: Any) -> dict[str, str]:
    if type(raw) is not str:
        raise _Slow
    try:
        base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise _Slow from None
    return {"B": raw}


def _fast_encode(item: Mapping[str, Any], root: str, ascii_only: bool) -> tuple[str, Hints]:
    walk = _Walk()
    plain = walk.map(item, root)
    try:
        text = (_ASCII_JSON if ascii_only else _JSON).encode(plain)
    except (TypeError, ValueError):
        raise _Slow from None
    if walk.nulls:
        if text.count(_NULL) != walk.nulls:
            raise _Slow
        text = text.replace(_NULL, "null")
    if walk.bools:
        if text.count(_TRUE) + text.count(_FALSE) != walk.bools:
            raise _Slow
        text = text.replace(_TRUE, "true").replace(_FALSE, "false")
    # split() keeps each wrapper's inner group and None for the other two; joining the
    # non-empty parts unwraps them, in C (subn with group templates is Python-level on 3.11).
    parts = _WRAPPERS.split(text)
    if (len(parts) - 1) // 4 != walk.wrappers:
        raise _Slow
    return "".join(filter(None, parts)), walk.hints


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


# --------------------------------------------------------------------------- compare


def same_value(a: Any, b: Any) -> bool:
    """Typed values equal as DynamoDB sees them: sets ignore order, numbers compare by value."""
    if a == b:
        return True
    if type(a) is not dict or type(b) is not dict or len(a) != 1 or len(b) != 1:
        return False
    ((ta, va),) = a.items()
    ((tb, vb),) = b.items()
    if ta != tb:
        return False
    try:
        if ta == "N":
            return bool(Decimal(number_text(va)) == Decimal(number_text(vb)))
        if ta in ("SS", "BS"):
            return set(map(str, va)) == set(map(str, vb))
        if ta == "NS":
            return {Decimal(number_text(x)) for x in va} == {Decimal(number_text(x)) for x in vb}
        if ta == "M":
            return va.keys() == vb.keys() and all(same_value(va[k], vb[k]) for k in va)
        if ta == "L":
            return len(va) == len(vb) and all(map(same_value, va, vb))
    except (InvalidValue, InvalidOperation, TypeError, AttributeError):
        return False
    return False


def changed_attributes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Top-level attribute names added, removed or changed, sorted."""
    names = old.keys() | new.keys()
    return sorted(n for n in names if n not in old or n not in new
                  or not same_value(old[n], new[n]))


# --------------------------------------------------------------------------- keys


def item_key(keys: Mapping[str, Any]) -> str:
    """Canonical key string: compact JSON of the key attributes, names sorted.

    Identical for every change of one item (numbers are canonicalised, because DynamoDB
    treats 1 and 1.0 as the same key) and distinct for distinct items of one table.
    """
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


def item_key_from_plain(values: Mapping[str, str], types: Mapping[str, str]) -> str:
    """Build ``item_key`` from user input such as ``--key Id=101`` and the key types."""
    typed: dict[str, TypedValue] = {}
    for name, text in values.items():
        tag = types.get(name, "S")
        if tag == "B":
            typed[name] = {"B": text}
        elif tag == "N":
            typed[name] = {"N": number_text(text, f"--key {name}")}
        else:
            typed[name] = {"S": text}
    return item_key(typed)


def hints_json(hints: Mapping[str, str]) -> str | None:
    """The ``type_hints`` column: compact JSON, or None when there are no hints."""
    if not hints:
        return None
    return json.dumps(dict(sorted(hints.items())), separators=(",", ":"), ensure_ascii=False)
