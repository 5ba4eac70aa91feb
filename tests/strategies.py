"""Hypothesis strategies for DynamoDB typed values of every type, nested."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st


@st.composite
def dynamo_numbers(draw: st.DrawFn) -> str:
    """Number text as DynamoDB sends it: up to 38 significant digits, exponent -130..+125."""
    digits = draw(st.integers(min_value=1, max_value=38))
    mantissa = draw(st.integers(min_value=0, max_value=10**digits - 1))
    if mantissa == 0:
        return "0"
    sign = draw(st.sampled_from(["", "-"]))
    span = len(str(mantissa))
    # value = mantissa * 10**exp, keeping the magnitude within DynamoDB's range
    exp = draw(st.integers(min_value=-130 - span + 1, max_value=125 - span + 1))
    style = draw(st.sampled_from(["plain", "sci"]))
    dec = Decimal(f"{sign}{mantissa}E{exp}")
    return f"{dec:f}" if style == "plain" and -60 < exp < 60 else str(dec)


# Names equal to type tags or with JSON-pointer metacharacters are the tricky ones.
attribute_names = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "a/b", "~"]),
)
strings = st.text(max_size=20)  # empty strings are legal in DynamoDB (non-key)
binaries = st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode())


def _unique(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(elements, min_size=1, max_size=5, unique=True)


scalars = st.one_of(
    strings.map(lambda s: {"S": s}),
    dynamo_numbers().map(lambda n: {"N": n}),
    binaries.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    _unique(st.text(max_size=8)).map(lambda v: {"SS": v}),
    st.lists(dynamo_numbers(), min_size=1, max_size=5,
             unique_by=lambda n: Decimal(n)).map(lambda v: {"NS": v}),
    _unique(binaries).map(lambda v: {"BS": v}),
)

values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda v: {"L": v}),
        st.dictionaries(attribute_names, children, max_size=4).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)

items = st.dictionaries(attribute_names, values, min_size=1, max_size=6)
