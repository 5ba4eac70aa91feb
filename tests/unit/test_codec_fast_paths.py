"""The codec's fast paths agree with the exact encoder on every value they take (issue 28):
B keys, base64 checked without base64.b64decode, number sets told apart without Decimal,
changed attributes found without same_value, and the capture bench's workload shapes."""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.capture_bench import SHAPES, VIEW_TYPES, make_event
from ddbtrail.core import codec
from ddbtrail.core.codec._fast import _canonical_number, _fast_bytes
from ddbtrail.core.exceptions import InvalidValue
from tests.strategies import binaries, dynamo_numbers

pytestmark = pytest.mark.skipif(not codec.FAST_JSON, reason="the fast path needs orjson")

# Spellings of few values: equal numbers written differently, and their neighbours.
SPELLINGS = ["0", "-0", "0.0", "1", "1.0", "1.00", "10", "1E1", "1e+1", "2.5", "2.50",
             "-2.5", "25E-1", "0.25", "100", "1E2", "99999999999999999999999999999999999999"]
numbers = st.one_of(st.sampled_from(SPELLINGS), dynamo_numbers())
# Base64 look-alikes: valid text, bad padding, other alphabets, whitespace, non-ASCII.
base64ish = st.one_of(binaries, st.text(alphabet="AQZaz09+/=-_ \n\u00e9", max_size=10))


def exact(item: dict, root: str) -> tuple[str, dict]:
    enc = codec._Encoder(ascii_only=False)
    enc.item(item, root)
    return "".join(enc.out), enc.hints


@settings(max_examples=500, deadline=None)
@given(base64ish)
def test_the_base64_check_accepts_and_decodes_exactly_what_b64decode_does(text: str) -> None:
    try:
        want = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        with pytest.raises(codec._Slow):
            _fast_bytes(text)
    else:
        assert _fast_bytes(text) == want


@settings(max_examples=500, deadline=None)
@given(numbers, numbers)
def test_canonical_numbers_are_equal_exactly_when_their_text_is(a: str, b: str) -> None:
    if _canonical_number(a) and _canonical_number(b):
        assert (a == b) == (Decimal(a) == Decimal(b))


def test_canonical_spellings_are_told_apart_from_the_others() -> None:
    assert [n for n in SPELLINGS if _canonical_number(n)] == [
        "0", "1", "10", "2.5", "-2.5", "0.25", "100", "99999999999999999999999999999999999999"]


@settings(max_examples=400, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=4))
def test_a_number_set_is_written_or_refused_as_the_exact_encoder_does(members: list) -> None:
    item = {"ns": {"NS": members}}
    try:
        want = exact(item, "/r")
    except InvalidValue:
        with pytest.raises(codec._Slow):
            codec._plain_map(item, "/r", {}, codec._fragment)
    else:
        hints: dict = {}
        got = codec._orjson_text(codec._plain_map(item, "/r", hints, codec._fragment))
        assert (got, hints) == want


@settings(max_examples=300, deadline=None)
@given(st.lists(base64ish, min_size=1, max_size=4))
def test_a_binary_set_is_written_or_refused_as_the_exact_encoder_does(members: list) -> None:
    item = {"bs": {"BS": members}, "b": {"B": members[0]}}
    try:
        want = exact(item, "/r")
    except InvalidValue as exc:
        with pytest.raises(InvalidValue, match=str(exc).split(":")[0]):
            codec.encode_item(item, "/r")
    else:
        assert codec.encode_item(item, "/r") == want


key_values = st.one_of(
    st.text(min_size=1, max_size=6).map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    base64ish.map(lambda b: {"B": b}),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["pk", "sk", "a/b", "id"]), key_values,
                       min_size=1, max_size=2))
def test_keys_of_every_key_type_give_the_exact_text_item_key_and_hints(keys: dict) -> None:
    try:
        want_text, want_hints = exact(keys, "/keys")
        want_key = codec.item_key(keys)
    except InvalidValue as exc:
        with pytest.raises(InvalidValue, match=str(exc).split(":")[0]):
            codec.encode_change(keys, None, None)
        return
    got = codec.encode_change(keys, None, None)
    assert (got.keys, got.item_key) == (want_text, want_key)
    assert got.type_hints == codec.hints_json(want_hints)


def test_binary_keys_take_the_fast_path() -> None:
    hints: dict = {}
    keys = {"pk": {"S": "a"}, "sk": {"B": "AAEC"}}
    assert codec._fast_keys(keys, hints) == ('{"pk":"a","sk":"AAEC"}',) * 2
    assert hints == {"/keys/sk": "B"}
    assert codec._fast_keys({"sk": {"B": "AAE"}}, hints) is None  # bad padding: exact path


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), numbers, min_size=1),
       st.dictionaries(st.sampled_from(["a", "b", "c"]), numbers, min_size=1))
def test_changed_numbers_are_found_as_dynamodb_compares_them(old: dict, new: dict) -> None:
    old_item = {k: {"N": v} for k, v in old.items()}
    new_item = {k: {"N": v} for k, v in new.items()}
    got = codec.encode_change({"pk": {"S": "k"}}, old_item, new_item)
    assert got.changed == codec.changed_attributes(old_item, new_item)
    assert (got.old_image, got.new_image) == (exact(old_item, "")[0], exact(new_item, "")[0])


@pytest.mark.parametrize("view", VIEW_TYPES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_bench_shape_encodes_as_the_exact_encoder_does(shape: str, view: str) -> None:
    """The workloads the capture bench times take the fast path and write what the
    exact encoder writes (keys, both images, hints, changed attributes)."""
    for record in make_event(40, shape=shape, view=view)["Records"]:
        ddb = record["dynamodb"]
        keys, old, new = ddb["Keys"], ddb.get("OldImage"), ddb.get("NewImage")
        got = codec.encode_change(keys, old, new)
        hints: dict = {}
        want = [exact(keys, "/keys")]
        for image, root in ((old, "/old_image"), (new, "/new_image")):
            want.append(exact(image, root) if image is not None else (None, {}))
        for _, h in want:
            hints.update(h)
        assert (got.keys, got.old_image, got.new_image) == tuple(w[0] for w in want)
        assert got.item_key == codec.item_key(keys)
        assert got.type_hints == codec.hints_json(hints)
        if old is not None and new is not None:
            assert got.changed == codec.changed_attributes(old, new)


number_sets = st.lists(numbers, min_size=1, max_size=3, unique_by=lambda n: Decimal(n))
typed_values = st.one_of(
    numbers.map(lambda n: {"N": n}), number_sets.map(lambda v: {"NS": v}),
    st.lists(st.sampled_from("xyz"), min_size=1, max_size=3, unique=True).map(
        lambda v: {"SS": v}),
    st.sampled_from([{"S": "1"}, {"BOOL": True}, {"NULL": True}, {"B": "AQ=="}]))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), typed_values, min_size=1),
       st.dictionaries(st.sampled_from(["a", "b", "c"]), typed_values, min_size=1))
def test_changed_values_of_every_kind_are_found_as_dynamodb_compares_them(
        old: dict, new: dict) -> None:
    got = codec.encode_change({"pk": {"S": "k"}}, old, new)
    assert got.changed == codec.changed_attributes(old, new)
    assert (got.old_image, got.new_image) == (exact(old, "")[0], exact(new, "")[0])


@pytest.mark.parametrize("text", ["\u0661\u0662", "\uff11", "0012", "1" * 39])
def test_an_n_key_that_is_no_plain_integer_takes_the_exact_path(text: str) -> None:
    """Digits other than ASCII ones, leading zeros and 39 digits are refused (or, for
    39 digits, canonicalised) by the exact path, by item_key as by encode_change."""
    keys = {"pk": {"N": text}}
    hints: dict = {}
    assert codec._fast_keys(keys, hints) is None
    try:
        want = codec.canonical_number(text)
    except InvalidValue:
        with pytest.raises(InvalidValue):
            codec.item_key(keys)
        with pytest.raises(InvalidValue):
            codec.encode_change(keys, None, None)
    else:
        assert codec.item_key(keys) == '{"pk":' + want + "}"


nested_values = st.recursive(
    typed_values | st.sampled_from([{"BOOL": False}, {"S": "x"}, {"N": "1.0"}, {"B": "AA=="}]),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from(["m", "n"]), inner, max_size=2).map(lambda m: {"M": m}),
        st.lists(inner, max_size=2).map(lambda items: {"L": items})),
    max_leaves=4)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d/e"]), nested_values, min_size=1),
       st.dictionaries(st.sampled_from(["a", "b", "c", "d/e"]), nested_values, min_size=1),
       st.booleans())
def test_a_pair_of_images_gives_the_exact_texts_hints_and_changes(
        old: dict, new: dict, share: bool) -> None:
    """Old attributes equal to new ones (shared when ``share``), unequal ones, ones only
    one image has, nested sets, binary and booleans: the pair's texts, hints and changed
    attributes are the exact encoder's."""
    if share:  # most of an update's attributes are unchanged
        old = {**new, **{k: v for k, v in old.items() if k not in new or k == "a"}}
    got = codec.encode_change({"pk": {"S": "k"}}, old, new)
    old_text, old_hints = exact(old, "/old_image")
    new_text, new_hints = exact(new, "/new_image")
    assert (got.old_image, got.new_image) == (old_text, new_text)
    assert got.type_hints == codec.hints_json({**old_hints, **new_hints})
    assert got.changed == codec.changed_attributes(old, new)
