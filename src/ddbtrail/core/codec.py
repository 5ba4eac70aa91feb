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
import itertools
import json
import re
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, InvalidOperation
from json.encoder import encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Final, NamedTuple

from ddbtrail.core.exceptions import InvalidValue

TypedValue = dict[str, Any]
TypedItem = dict[str, TypedValue]
Hints = dict[str, str]

HINTED_TYPES: Final = frozenset({"B", "SS", "NS", "BS"})
ALL_TYPES: Final = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})

class JsonNumber(str):
    """The exact text of a number read from plain JSON (so it is never a float)."""

    __slots__ = ()


# --------------------------------------------------------------------------- JSON backend

try:  # the fast path; without it the standard library writes identical bytes
    import orjson
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


# --------------------------------------------------------------------------- numbers

# DynamoDB's rules for N: up to 38 significant digits, magnitude from 1E-130 to
# 9.9999999999999999999999999999999999999E+125, or zero. Streams spell numbers as JSON
# number literals; any other spelling (" 12 ", "+12", "007", "7.", "1_000") did not come
# from DynamoDB and is refused, never rewritten: the lake keeps the text it was given.
MAX_DIGITS: Final = 38
MIN_EXPONENT: Final = -130
MAX_EXPONENT: Final = 125
_JSON_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# No exponent and at most 38 characters: at most 38 digits, magnitude 1E-36 to 1E+38, so
# inside DynamoDB's range without any arithmetic. Almost every real number takes this test.
_SHORT_PLAIN: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?").fullmatch
_RANGE_TEXT: Final = ("DynamoDB's range is 1E-130 to 9.9999999999999999999999999999999999999E+125 "
                      "in magnitude")


def _number_problem(text: str) -> str | None:
    """Why ``text`` is not an N value DynamoDB could have written, or None if it is."""
    if len(text) <= MAX_DIGITS and _SHORT_PLAIN(text):
        return None
    if not _JSON_NUMBER.fullmatch(text):
        try:
            dec = Decimal(text)
        except InvalidOperation:
            return f"{text!r} is not a number"
        if not dec.is_finite():
            return f"{text!r} is not a finite number"
        return f"{text!r} is not a number as DynamoDB writes it (a JSON number literal)"
    dec = Decimal(text)
    if dec.is_zero():
        return None
    # Decimal drops leading zeros; trailing zeros are not significant either.
    significant = len(bytes(dec.as_tuple().digits).rstrip(b"\0"))
    if significant > MAX_DIGITS:
        return (f"{_short(text)} has {significant} significant digits; DynamoDB keeps at most "
                f"{MAX_DIGITS}")
    if not MIN_EXPONENT <= dec.adjusted() <= MAX_EXPONENT:
        return f"{_short(text)} is out of range: {_RANGE_TEXT}"
    return None


def number_text(value: object, path: str = "") -> str:
    """The JSON literal for a DynamoDB N value: the value's own text, every digit kept.

    Accepts the stream's string form, and an int (some hand-written events carry
    ``"N": 10``). Refuses a float (its digits may already be gone) and any number
    DynamoDB would refuse or would never write (see ``MAX_DIGITS``); InvalidValue names
    ``path``.
    """
    if isinstance(value, str):
        problem = _number_problem(value)
        if problem is not None:
            raise InvalidValue(f"{path or 'value'}: {problem}")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        problem = _number_problem(text)
        if problem is not None:
            raise InvalidValue(f"{path or 'value'}: {problem}")
        return text
    if isinstance(value, float):
        raise InvalidValue(
            f"{path or 'value'}: N value {value!r} is a JSON float, not a string; "
            "its exact digits are unknown"
        )
    raise InvalidValue(f"{path or 'value'}: N value must be a string, got {type(value).__name__}")


# Wide enough for any DynamoDB number, so normalize() never rounds.
_EXACT: Final = Context(prec=200, Emax=999_999, Emin=-999_999)


def canonical_number(text: str) -> str:
    """One spelling per numeric value (``1.0``, ``1`` and ``1E0`` all give ``1``).

    Used for item keys, where DynamoDB treats equal numbers as the same key.
    """
    text = number_text(text)
    if text.isdigit():
        return text  # a valid unsigned integer has no leading zero: already canonical
    dec = Decimal(text).normalize(_EXACT)
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


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


class EncodedChange(NamedTuple):
    """The codec's columns of one change row, and its changed attributes."""

    keys: str
    item_key: str
    old_image: str | None
    new_image: str | None
    type_hints: str | None
    # Top-level attributes added, removed or changed (sorted) when both images are given.
    changed: list[str] | None


def encode_change(keys: Mapping[str, Any], old: Mapping[str, Any] | None,
                  new: Mapping[str, Any] | None) -> EncodedChange:
    """Keys and both images with their hints under ``/keys``, ``/old_image`` and
    ``/new_image``, and the changed attributes. Raises InvalidValue naming the first
    bad path.

    With both images, the new one is walked and the old one's attributes that are
    exactly equal to the new ones reuse their plain values: each value is read once,
    and the comparison is the changed-attribute set.
    """
    hints: Hints = {}
    fast_keys = _fast_keys(keys) if orjson is not None else None
    if fast_keys is not None:
        keys_text, key = fast_keys
    else:
        keys_text = _encode_into(keys, "/keys", hints)
        key = item_key(keys)
    changed = None
    old_text: str | None
    new_text: str | None
    if old is not None and new is not None:
        pair = _fast_pair(old, new) if orjson is not None else None
        if pair is not None:
            old_text, new_text, pair_hints, changed = pair
            hints.update(pair_hints)
        else:
            old_text = _encode_into(old, "/old_image", hints)
            new_text = _encode_into(new, "/new_image", hints)
            changed = changed_attributes(old, new)
    else:
        old_text = None if old is None else _encode_into(old, "/old_image", hints)
        new_text = None if new is None else _encode_into(new, "/new_image", hints)
    return EncodedChange(keys_text, key, old_text, new_text, hints_json(hints), changed)


def _fast_keys(keys: Any) -> tuple[str, str] | None:
    """(keys text, item_key) through orjson for S keys and plain integer N keys (the
    common case, where both are the same text when the names are in order), else None."""
    if keys.__class__ is not dict:
        return None
    plain: dict[str, Any] = {}
    try:
        for name, value in keys.items():
            if value.__class__ is not dict:
                return None
            ((tag, raw),) = value.items()  # ValueError unless exactly one tag
            if tag == "S" and raw.__class__ is str:
                plain[name] = raw
            elif tag == "N" and raw.__class__ is str and raw.isascii() and raw.isdigit() and (
                    len(raw) <= MAX_DIGITS and (raw[0] != "0" or raw == "0")):
                plain[name] = _fragment(raw)  # a plain integer is its own canonical spelling
            else:
                return None
        text = orjson.dumps(plain).decode()
        if len(plain) == 1 or list(plain) == sorted(plain):
            return text, text
        return text, orjson.dumps(dict(sorted(plain.items()))).decode()
    except (TypeError, ValueError):  # no tag or several, a name not str, a lone surrogate
        return None  # the exact path names the problem


def _fast_pair(old: Any, new: Any) -> tuple[str, str, Hints, list[str]] | None:
    """(old text, new text, hints, changed) through orjson, or None to take the exact
    path. An old attribute reuses the new one's plain value only when it is provably the
    same typed value: == where the validated new value holds only str (S, N, B and the
    sets); for maps and lists, == when the new image holds no nested BOOL or NULL, else
    identical orjson bytes (True == 1, but "true" != "1")."""
    if old.__class__ is not dict or new.__class__ is not dict:
        return None
    frag = _fragment
    new_hints: Hints = {}
    try:
        tally = next(_NESTED_BOOLS)
        plain_new = _plain_map(new, "/new_image", new_hints, frag)
        exact_nested = next(_NESTED_BOOLS) == tally + 1
        hints = dict(new_hints)
        # Hints below the top level (a set inside a map) must be copied for equal values.
        nested_hints = any(path.count("/") > 2 for path in new_hints)
        plain_old: dict[str, Any] = {}
        changed: list[str] = []
        for k, v in old.items():
            nv = new.get(k)
            if nv is not None and v == nv:
                (tag,) = nv  # validated by the walk: one tag
                if tag in {"S", "N"}:
                    plain_old[k] = plain_new[k]
                    continue
                if tag in {"M", "L"}:
                    if exact_nested or orjson.dumps(v) == orjson.dumps(nv):
                        plain_old[k] = plain_new[k]
                        if nested_hints:
                            _copy_nested_hints(new_hints, hints, pointer_token(k))
                        continue
                elif tag == "BOOL":  # equal, but True == 1: check the old value's type
                    if v["BOOL"].__class__ is not bool:
                        raise _Slow
                    plain_old[k] = v["BOOL"]
                    continue
                elif tag == "NULL":
                    if v["NULL"] is not True:
                        raise _Slow
                    plain_old[k] = None
                    continue
                else:  # B and the sets hold only str or bytes: == was exact
                    plain_old[k] = plain_new[k]
                    hints["/old_image/" + pointer_token(k)] = tag
                    continue
            plain_old[k] = _plain_map({k: v}, "/old_image", hints, frag)[k]
            if nv is None or not same_value(v, nv):
                changed.append(k)
        changed += [k for k in new if k not in old]
        changed.sort()
        return _orjson_text(plain_old), _orjson_text(plain_new), hints, changed
    except (_Slow, TypeError, ValueError):
        return None


def _copy_nested_hints(new_hints: Hints, hints: Hints, token: str) -> None:
    """Copy the hints inside new_image's attribute ``token`` to old_image's."""
    prefix = "/new_image/" + token + "/"
    for path, hint in new_hints.items():
        if path.startswith(prefix):
            hints["/old_image/" + path[len("/new_image/"):]] = hint


# The fast path: one walk turns typed values into plain Python values (numbers as raw
# JSON fragments, hints collected on the way), then one C call writes the text. Anything
# unusual raises _Slow and takes the exact encoder, which also writes the error message.
# Both paths accept exactly the same values and write the same bytes.


class _Slow(Exception):
    """The fast path does not apply; use the exact encoder."""


# Counts the BOOL and NULL values the walk meets below an image's top level. == cannot tell
# True from 1, so _fast_pair reuses an equal nested old value unchecked only when nothing
# counted during the new image's walk. next() is atomic: another thread's count can only
# make the check run.
_NESTED_BOOLS: Final = itertools.count()


# What makes the fast path give up: _Slow, or the ValueError of unpacking a typed value
# that has no tag or several.
_GIVE_UP: Final = (_Slow, ValueError)


def _orjson_text(plain: dict[str, Any]) -> str:
    try:
        return orjson.dumps(plain).decode()
    except TypeError:  # lone surrogates, names not str, too deep: the exact encoder says
        raise _Slow from None


# The standard library cannot write raw number text, so the walk marks each number as a
# string "\0<digits>\0"; json writes that as "\u0000<digits>\u0000", and the markers are
# removed with str.replace. Counts prove no user string held a marker.
_MARK_OPEN: Final = '"\\u0000'
_MARK_CLOSE: Final = '\\u0000"'


class _Marker:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, text: Any) -> str:
        if not _valid_number(text):
            raise _Slow
        self.count += 1
        return "\0" + str(text) + "\0"


def _stdlib_text(item: Any, root: str, hints: Hints) -> str:
    mark = _Marker()
    try:
        plain = _plain_map(item, root, hints, mark)
    except ValueError:
        raise _Slow from None
    if not _names_are_str(plain):  # json would write 1 for a name 1; orjson refuses it
        raise _Slow
    try:
        text = _STDLIB_JSON.encode(plain)
    except (TypeError, ValueError, RecursionError):
        raise _Slow from None
    if mark.count:
        if text.count(_MARK_OPEN) != mark.count or text.count(_MARK_CLOSE) != mark.count:
            raise _Slow
        text = text.replace(_MARK_OPEN, "").replace(_MARK_CLOSE, "")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the exact encoder names it
            raise _Slow from None
    return text


# Paths are built only when a hint or an error needs one: the walk passes (parent, key)
# pairs, and _path_text joins them.
_Path = str | tuple[Any, str | int]


def _names_are_str(value: Any) -> bool:
    if value.__class__ is dict:
        return all(k.__class__ is str and _names_are_str(v) for k, v in value.items())
    if value.__class__ is list:
        return all(_names_are_str(v) for v in value)
    return True


def _path_text(path: _Path) -> str:
    if path.__class__ is tuple and path[0].__class__ is str and path[1].__class__ is str:
        return path[0] + "/" + pointer_token(path[1])  # a top-level attribute: most hints
    keys: list[str | int] = []
    while not isinstance(path, str):
        path, key = path
        keys.append(key)
    for key in reversed(keys):
        path = f"{path}/{key}" if isinstance(key, int) else path + "/" + pointer_token(key)
    return path


def _valid_number(n: Any) -> bool:
    return n.__class__ is str and (
        (len(n) <= MAX_DIGITS and _SHORT_PLAIN(n) is not None) or _number_problem(n) is None)


# Number text -> its orjson.Fragment, for numbers already validated: quantities, prices
# and flags repeat, and a hit skips both the check and the allocation. Bounded.
_FRAGMENTS: dict[str, Any] = {}
_MAX_FRAGMENTS: Final = 4096


def _fragment(text: Any) -> Any:
    """The raw JSON fragment of a valid N text (orjson path); _Slow if not valid."""
    frag = _FRAGMENTS.get(text) if text.__class__ is str else None
    if frag is None:
        if not _valid_number(text):
            raise _Slow
        frag = orjson.Fragment(text)
        if len(_FRAGMENTS) >= _MAX_FRAGMENTS:
            _FRAGMENTS.clear()
        _FRAGMENTS[text] = frag
    return frag


def _plain_map(m: Any, path: _Path, hints: Hints, frag: Callable[[str], Any]) -> dict[str, Any]:
    if m.__class__ is not dict:
        raise _Slow
    out: dict[str, Any] = {}
    for k, v in m.items():
        if v.__class__ is not dict:
            raise _Slow
        ((tag, raw),) = v.items()  # ValueError unless exactly one tag
        if tag == "S":
            if raw.__class__ is not str:
                raise _Slow
            out[k] = raw
        elif tag == "N":
            out[k] = frag(raw)  # validates
        elif tag == "M":
            out[k] = _plain_map(raw, (path, k), hints, frag)
        elif tag == "L":
            out[k] = _plain_list(raw, (path, k), hints, frag)
        elif tag == "BOOL":
            if raw.__class__ is not bool:
                raise _Slow
            if path.__class__ is not str:
                next(_NESTED_BOOLS)
            out[k] = raw
        elif tag == "NULL":
            if raw is not True:
                raise _Slow
            if path.__class__ is not str:
                next(_NESTED_BOOLS)
            out[k] = None
        else:
            out[k] = _plain_rest(tag, raw, (path, k), hints, frag)
    return out


def _plain_list(items: Any, path: _Path, hints: Hints, frag: Callable[[str], Any]) -> list[Any]:
    if items.__class__ is not list:
        raise _Slow
    out: list[Any] = []
    append = out.append
    for i, v in enumerate(items):
        if v.__class__ is not dict:
            raise _Slow
        ((tag, raw),) = v.items()  # ValueError unless exactly one tag
        if tag == "S":
            if raw.__class__ is not str:
                raise _Slow
            append(raw)
        elif tag == "N":
            append(frag(raw))  # validates
        elif tag == "M":
            append(_plain_map(raw, (path, i), hints, frag))
        elif tag == "L":
            append(_plain_list(raw, (path, i), hints, frag))
        elif tag == "BOOL":
            if raw.__class__ is not bool:
                raise _Slow
            next(_NESTED_BOOLS)
            append(raw)
        elif tag == "NULL":
            if raw is not True:
                raise _Slow
            next(_NESTED_BOOLS)
            append(None)
        else:
            append(_plain_rest(tag, raw, (path, i), hints, frag))
    return out


def _plain_rest(tag: str, raw: Any, path: _Path, hints: Hints,
                frag: Callable[[str], Any]) -> Any:
    """B and the sets (the callers handle S, N, M, L, BOOL and NULL inline)."""
    if tag == "B":
        hints[_path_text(path)] = "B"
        return _fast_binary(raw)
    if raw.__class__ is not list or not raw:
        raise _Slow
    if tag == "SS":
        for m in raw:
            if m.__class__ is not str:
                raise _Slow
        if len(set(raw)) != len(raw):
            raise _Slow
        hints[_path_text(path)] = "SS"
        return raw
    if tag == "NS":
        members = [frag(m) for m in raw]  # validates
        if _duplicate(raw, Decimal) is not None:
            raise _Slow
        hints[_path_text(path)] = "NS"
        return members
    if tag == "BS":
        texts = [_fast_binary(m) for m in raw]
        try:
            if _duplicate(texts, _bytes_of) is not None:
                raise _Slow
        except (binascii.Error, ValueError):
            raise _Slow from None
        hints[_path_text(path)] = "BS"
        return texts
    raise _Slow


def _fast_binary(raw: Any) -> str:
    try:
        return binary_text(raw)
    except InvalidValue:
        raise _Slow from None


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
    # Equal typed values (compared in C) are the common case; only unequal ones present in
    # both images need same_value, which ignores set order and number spelling.
    changed = [n for n, v in new.items() if n not in old or (
        old[n] != v and not same_value(old[n], v))]
    changed += [n for n in old if n not in new]
    changed.sort()
    return changed


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
        elif tag == "N" and raw.__class__ is str and raw.isdigit() and (
                len(raw) <= MAX_DIGITS and (raw[0] != "0" or raw == "0")):
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
