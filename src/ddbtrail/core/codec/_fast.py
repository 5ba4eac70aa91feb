"""The fast path: plain JSON through orjson for the common shapes; ``_Slow`` hands anything
unusual to the exact encoder."""

from __future__ import annotations

import binascii
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from ddbtrail.core.codec._compare import same_value
from ddbtrail.core.codec._json import _STDLIB_JSON, orjson
from ddbtrail.core.codec._numbers import (
    _SHORT_PLAIN,
    MAX_DIGITS,
    Hints,
    _number_problem,
    binary_text,
)
from ddbtrail.core.codec._values import _duplicate, pointer_token
from ddbtrail.core.exceptions import InvalidValue


def _fast_keys(keys: Any, hints: Hints) -> tuple[str, str] | None:
    """(keys text, item_key) through orjson for S keys, B keys as base64 text and plain
    integer N keys (the common case, where both are the same text when the names are in
    order), else None. A B key's hint goes into ``hints`` only when this succeeds."""
    if keys.__class__ is not dict:
        return None
    plain: dict[str, Any] = {}
    binary: list[str] = []
    try:
        for name, value in keys.items():
            if value.__class__ is not dict:
                return None
            (tag,) = value  # ValueError unless exactly one tag
            raw = value[tag]
            if raw.__class__ is not str:
                return None
            if tag == "S":
                plain[name] = raw
            elif tag == "N" and _plain_integer(raw):
                plain[name] = orjson.Fragment(raw)  # a plain integer is its canonical spelling
            elif tag == "B":
                _fast_bytes(raw)  # valid base64: the text is the value's canonical form
                plain[name] = raw
                binary.append(name)
            else:
                return None
        text = orjson.dumps(plain).decode()
        if len(plain) > 1 and list(plain) != sorted(plain):
            key = orjson.dumps(dict(sorted(plain.items()))).decode()
        else:
            key = text
    except (_Slow, TypeError, ValueError):  # no tag or several, a name not str, bad base64
        return None  # the exact path names the problem
    for name in binary:
        hints["/keys/" + pointer_token(name)] = "B"
    return text, key


def _fast_pair(old: Any, new: Any) -> tuple[str, str, Hints, list[str]] | None:
    """(old text, new text, hints, changed) through orjson, or None to take the exact
    path. An old attribute reuses the new one's plain value only when it is provably the
    same typed value: == where the validated new value holds only str (S, N, B and the
    sets); for maps and lists, == when the new image holds no nested BOOL or NULL, else
    identical orjson bytes (True == 1, but "true" != "1")."""
    if old.__class__ is not dict or new.__class__ is not dict:
        return None
    hints: Hints = {}
    try:
        tally = next(_NESTED_BOOLS)
        plain_new = _plain_map(new, "/new_image", hints, _fragment)
        exact_nested = next(_NESTED_BOOLS) == tally + 1
        # Hints below the top level (a set inside a map) must be copied for equal values;
        # a snapshot, as the copies go into the same dict.
        new_hints = dict(hints) if hints and any(p.count("/") > 2 for p in hints) else None
        plain_old: dict[str, Any] = {}
        unequal: dict[str, Any] = {}  # old attributes walked after the loop, in one call
        missing = 0  # old attributes the new image lacks
        new_get = new.get
        for k, v in old.items():
            nv = new_get(k)
            if v == nv:
                (tag,) = nv  # validated by the walk: one tag
                if tag in {"S", "N"}:
                    plain_old[k] = plain_new[k]
                    continue
                if tag in {"M", "L"}:
                    if exact_nested or orjson.dumps(v) == orjson.dumps(nv):
                        plain_old[k] = plain_new[k]
                        if new_hints is not None:
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
            elif nv is None:
                missing += 1
            plain_old[k] = None  # keeps the old image's order; set below
            unequal[k] = v
        changed: list[str] = []
        if unequal:
            for k, pv in _plain_map(unequal, "/old_image", hints, _fragment).items():
                plain_old[k] = pv
                nv = new_get(k)
                if nv is None or _differs(unequal[k], nv):
                    changed.append(k)
        if len(new) > len(old) - missing:  # attributes only the new image has
            changed += [k for k in new if k not in old]
        changed.sort()
        return _orjson_text(plain_old), _orjson_text(plain_new), hints, changed
    except (_Slow, TypeError, ValueError):
        return None


def _differs(old: Any, new: Any) -> bool:
    """Whether an old value differs from an unequal (!=) new one as DynamoDB compares
    them, both validated by the walk. Unequal S, BOOL, NULL and B values differ, so do
    canonical numbers and sets of different sizes (members are unique); the rest is
    same_value's."""
    (tag,) = old
    raw = old[tag]
    new_raw = new.get(tag)  # None when the types differ
    if new_raw is None or tag in _DIFFER_WHEN_UNEQUAL:
        return True
    if tag == "N":
        if _canonical_number(raw) and _canonical_number(new_raw):
            return True
    elif tag in _SETS and len(raw) != len(new_raw):
        return True
    return not same_value(old, new)


_DIFFER_WHEN_UNEQUAL: Final = frozenset({"S", "BOOL", "NULL", "B"})
_SETS: Final = frozenset({"SS", "NS", "BS"})


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


def _plain_integer(n: str) -> bool:
    """An unsigned integer without a leading zero, at most 38 digits: the commonest number,
    valid and in its one canonical spelling; no regex."""
    return len(n) <= MAX_DIGITS and n.isdigit() and n.isascii() and (
        n[0] != "0" or len(n) == 1)


def _valid_number(n: Any) -> bool:
    if n.__class__ is not str:
        return False
    if _plain_integer(n) or (len(n) <= MAX_DIGITS and _SHORT_PLAIN(n) is not None):
        return True
    return _number_problem(n) is None


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
        (tag,) = v  # ValueError unless exactly one tag (cheaper than unpacking items())
        raw = v[tag]
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
        (tag,) = v  # ValueError unless exactly one tag (cheaper than unpacking items())
        raw = v[tag]
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
        # Canonical members are valid, and distinct as text, distinct as values: the
        # common set needs neither the full check nor Decimal.
        distinct = _distinct_numbers(raw)
        if frag is _fragment:  # orjson: the set is one fragment, its members' own text
            if not distinct:
                for m in raw:
                    if not _valid_number(m):
                        raise _Slow
            members: Any = orjson.Fragment("[" + ",".join(raw) + "]")
        else:
            members = [frag(m) for m in raw]  # validates
        if not distinct and _duplicate(raw, Decimal) is not None:
            raise _Slow
        hints[_path_text(path)] = "NS"
        return members
    if tag == "BS":
        # Base64 text as is, boto3's bytes encoded; decoding checks the text, and the
        # members' bytes must be unique.
        texts = [m if m.__class__ is str else _fast_binary(m) for m in raw]
        if len({_fast_bytes(t) for t in texts}) != len(texts):
            raise _Slow
        hints[_path_text(path)] = "BS"
        return texts
    raise _Slow


def _canonical_number(text: Any) -> bool:
    """True when N text is a plain decimal in the one spelling of its value (no exponent,
    no leading zero, no trailing fractional zero, not -0): two such texts are equal
    numbers exactly when they are equal texts, so no Decimal is needed."""
    if text.__class__ is not str or len(text) > MAX_DIGITS:
        return False
    if text.isdigit():
        return _plain_integer(text)
    return text != "-0" and _SHORT_PLAIN(text) is not None and (
        "." not in text or text[-1] != "0")


def _distinct_numbers(texts: list[str]) -> bool:
    """True when N texts are provably distinct values without Decimal (any member may be
    unchecked: the canonical test comes first, so set() only sees str)."""
    return all(map(_canonical_number, texts)) and len(set(texts)) == len(texts)


def _fast_binary(raw: Any) -> str:
    """Base64 text of a B value: a stream's text checked as is, boto3's bytes encoded."""
    if raw.__class__ is str:
        _fast_bytes(raw)
        return raw  # type: ignore[no-any-return]
    try:
        return binary_text(raw)
    except InvalidValue:
        raise _Slow from None


def _fast_bytes(text: Any) -> bytes:
    """The bytes of base64 text, as ``base64.b64decode(text, validate=True)`` gives them
    (which is this call since Python 3.11, without the wrapper); _Slow for anything it
    refuses, and for bytes (only stream text comes here)."""
    if text.__class__ is not str:
        raise _Slow
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _Slow from None
