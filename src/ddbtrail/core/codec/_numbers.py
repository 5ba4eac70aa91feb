"""Number and binary values: DynamoDB's N rules, the exact text of a number, base64 of B;
the value types and ``JsonNumber``."""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Final

from ddbtrail.core.codec._values import _short
from ddbtrail.core.exceptions import InvalidValue

TypedValue = dict[str, Any]
TypedItem = dict[str, TypedValue]
Hints = dict[str, str]

HINTED_TYPES: Final = frozenset({"B", "SS", "NS", "BS"})
ALL_TYPES: Final = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})

class JsonNumber(str):
    """The exact text of a number read from plain JSON (so it is never a float)."""

    __slots__ = ()



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
