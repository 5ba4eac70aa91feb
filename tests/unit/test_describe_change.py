"""what_changed: the orjson path of ``describe_change`` says exactly what the exact path says.

History parses every row's images to describe them; orjson parses them where the changed
values' numbers survive it, and the standard library (numbers kept as their text) does the
rest. Both must give the same line for every image, numbers spelled any way DynamoDB or a
lake writer could spell them.
"""

from __future__ import annotations

import itertools
from typing import Any
from unittest import mock

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ddbtrail.core import codec
from ddbtrail.query.lookups import describe_change, describe_changes, plain_text

NUMBERS = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.sampled_from(["0", "-0", "1.50", "1.5", "1e3", "1E3", "-0.0", "100", "1.0",
                     "18446744073709551616", "9223372036854775807"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
).map(codec.JsonNumber)
LEAVES = st.one_of(NUMBERS, st.text(max_size=50), st.booleans(), st.none())
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
NAMES = st.sampled_from(["a", "b", "status", "n", "doc", "weird name", "é"])
IMAGES = st.dictionaries(NAMES, VALUES, min_size=1, max_size=6)


def _exact(row: dict[str, Any]) -> str:
    with mock.patch.object(codec, "orjson", None):
        return describe_change(row)


def _modify(old: dict[str, Any], new: dict[str, Any], extra: list[str]) -> dict[str, Any]:
    changed = sorted({n for n in {*old, *new} if plain_text(old.get(n)) !=
                      plain_text(new.get(n)) or n not in old or n not in new} | set(extra))
    return {"action": "MODIFY", "ttl_delete": False, "old_image": plain_text(old),
            "new_image": plain_text(new), "changed_attributes": changed}


@settings(max_examples=400, deadline=None)
@given(old=IMAGES, new=IMAGES, extra=st.lists(NAMES, max_size=2))
def test_the_orjson_path_says_what_the_exact_path_says(old: dict[str, Any],
                                                       new: dict[str, Any],
                                                       extra: list[str]) -> None:
    row = _modify(old, new, extra)
    assert describe_change(row) == _exact(row)


@settings(max_examples=100, deadline=None)
@given(images=st.lists(IMAGES, min_size=2, max_size=6))
def test_a_history_is_described_row_by_row(images: list[dict[str, Any]]) -> None:
    # Each change's old image is the one before's new image, as in a real history.
    rows = [{"action": "INSERT", "ttl_delete": False, "old_image": None,
             "new_image": plain_text(images[0]), "changed_attributes": sorted(images[0])}]
    rows += [_modify(a, b, []) for a, b in itertools.pairwise(images)]
    rows.append({"action": "REMOVE", "ttl_delete": True, "old_image": rows[-1]["new_image"],
                 "new_image": None, "changed_attributes": None})
    assert describe_changes(pa.Table.from_pylist(rows)).to_pylist() == [
        _exact(r) for r in rows]


def test_numbers_that_orjson_would_respell_are_told_apart() -> None:
    row = {"action": "MODIFY", "old_image": '{"price":1.50,"n":-0,"big":18446744073709551616}',
           "new_image": '{"price":1.5,"n":0,"big":18446744073709551617}',
           "changed_attributes": ["price", "n", "big"]}
    assert describe_change(row) == ("price: 1.50 -> 1.5; n: -0 -> 0; "
                                    "big: 18446744073709551616 -> 18446744073709551617")
