"""The codec keeps values lossless: digits, bytes, set vs list, empty strings, nesting."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddbtrail.core import codec
from ddbtrail.core.exceptions import InvalidValue
from tests.strategies import attribute_names, dynamo_numbers, items, values


@settings(max_examples=300, deadline=None)
@given(items)
def test_plain_json_plus_hints_rebuild_the_exact_typed_item(item: dict) -> None:
    text, hints = codec.encode_item(item, "/new_image")
    json.loads(text)  # plain JSON that any engine can read
    back = codec.decode_item(text, codec.hints_under(hints, "/new_image"))
    assert back == item


@settings(max_examples=100, deadline=None)
@given(items)
def test_binary_round_trips_to_the_same_bytes_for_boto3(item: dict) -> None:
    text, hints = codec.encode_item(item)
    as_bytes = codec.decode_item(text, hints, binary_as_bytes=True)
    # Re-encoding the bytes form gives the same plain text: no double encoding.
    assert codec.encode_item(as_bytes) == (text, hints)


@settings(max_examples=200, deadline=None)
@given(dynamo_numbers())
def test_numbers_keep_every_digit(number: str) -> None:
    text, _ = codec.encode_item({"n": {"N": number}})
    assert json.loads(text, parse_float=Decimal, parse_int=Decimal)["n"] == Decimal(number)
    assert codec.decode_item(text)["n"] == {"N": number}


@pytest.mark.parametrize("number", [
    "110111111111111110000000000000000000000",  # boto3's TypeDeserializer raises on it
    "12345678901234567890123456789012345678",  # 38 significant digits
    "1E+100", "-1E-130", "9.9999999999999999999999999999999999999E+125", "0", "-0.5",
])
def test_known_hard_numbers_are_written_verbatim(number: str) -> None:
    text, _ = codec.encode_item({"n": {"N": number}})
    assert text == '{"n":' + number + "}"


def test_an_exponent_spelling_is_kept_as_given() -> None:
    assert codec.encode_item({"n": {"N": "1e5"}})[0] == '{"n":1e5}'


# Values DynamoDB refuses (or never writes) are errors, never rewritten into other text.
@pytest.mark.parametrize(("value", "message"), [
    ({"N": " 12 "}, "/a: ' 12 ' is not a number as DynamoDB writes it"),
    ({"N": "+12"}, "/a: '+12' is not a number as DynamoDB writes it"),
    ({"N": "007"}, "/a: '007' is not a number as DynamoDB writes it"),
    ({"N": "7."}, "/a: '7.' is not a number as DynamoDB writes it"),
    ({"N": ".5"}, "/a: '.5' is not a number as DynamoDB writes it"),
    ({"N": "1_000"}, "/a: '1_000' is not a number as DynamoDB writes it"),
    ({"N": "1e130"}, "/a: '1e130' is out of range"),
    ({"N": "1E+126"}, "/a: '1E+126' is out of range"),
    ({"N": "-1E+126"}, "/a: '-1E+126' is out of range"),
    ({"N": "9.9E-131"}, "/a: '9.9E-131' is out of range"),
    ({"N": "1" * 39}, "has 39 significant digits; DynamoDB keeps at most 38"),
    ({"N": "0." + "1" * 39}, "has 39 significant digits"),
    ({"N": 10**39 + 1}, "has 40 significant digits"),
    ({"SS": ["a", "b", "a"]}, "/a: SS holds 'a' twice"),
    ({"NS": ["1", "2", "1.0"]}, "/a: NS holds '1.0' twice"),
    ({"BS": ["AAE=", "AAI=", "AAE="]}, "/a: BS holds 'AAE=' twice"),
    ({"S": "x\ud800y"}, "/a: the S value holds a lone surrogate"),
    ({"SS": ["ok", "\udfff"]}, "/a: an SS member holds a lone surrogate"),
    ({"M": {"\ud83d": {"S": "x"}}}, "/a/\ud83d: the attribute name holds a lone surrogate"),
    ({"L": [{"N": "1E-131"}]}, "/a/0: '1E-131' is out of range"),
])
def test_values_dynamodb_refuses_are_invalid_and_named(value: dict, message: str) -> None:
    with pytest.raises(InvalidValue) as info:
        codec.encode_item({"a": value})
    assert message in str(info.value)
    # Neither fast path lets it through (they defer to the exact encoder, which names it).
    with pytest.raises(codec._Slow):
        codec._stdlib_text({"a": value}, "", {})
    if codec.FAST_JSON:
        with pytest.raises(codec._Slow):
            codec._orjson_text(codec._plain_map({"a": value}, "", {}, codec._fragment))


@pytest.mark.parametrize("number", [
    "1E-130", "-1E-130", "1E+125", "9.9999999999999999999999999999999999999E+125",
    "0.00000000000000000000000000000000000000000000000001", "1" + "0" * 125,
    "0E+999", "-0", "1.500", "100000000000000000000000000000000000000000",
])
def test_numbers_at_dynamodbs_limits_are_kept_verbatim(number: str) -> None:
    assert codec.encode_item({"n": {"N": number}})[0] == '{"n":' + number + "}"


def test_an_integer_json_number_is_accepted_exactly_and_a_float_is_refused() -> None:
    assert codec.encode_item({"n": {"N": 10}})[0] == '{"n":10}'
    with pytest.raises(InvalidValue, match=r"/n: N value 10\.5 is a JSON float"):
        codec.encode_item({"n": {"N": 10.5}})


def test_sets_stay_distinct_from_lists_and_binary_from_strings() -> None:
    blob = base64.b64encode(b"\x00\xff\x10").decode()
    item = {
        "ss": {"SS": ["a", "b"]}, "ls": {"L": [{"S": "a"}, {"S": "b"}]},
        "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [blob]},
        "b": {"B": blob}, "s": {"S": blob}, "empty": {"S": ""},
        "m": {"M": {"inner/x~y": {"B": blob}, "l": {"L": [{"NS": ["3"]}]}}},
    }
    text, hints = codec.encode_item(item, "/new_image")
    assert json.loads(text)["b"] == json.loads(text)["s"] == blob
    assert hints == {
        "/new_image/ss": "SS", "/new_image/ns": "NS", "/new_image/bs": "BS",
        "/new_image/b": "B", "/new_image/m/inner~1x~0y": "B", "/new_image/m/l/0": "NS",
    }
    assert codec.decode_item(text, codec.hints_under(hints, "/new_image")) == item


def test_bytes_from_boto3_become_the_base64_of_the_exact_bytes() -> None:
    text, hints = codec.encode_item({"b": {"B": b"\x00\x01\xfe"}})
    assert text == '{"b":"AAH+"}'
    assert codec.decode_item(text, hints, binary_as_bytes=True) == {"b": {"B": b"\x00\x01\xfe"}}


@pytest.mark.parametrize(("value", "message"), [
    ({"X": "1"}, "/a: unknown type tag 'X'"),
    ({"S": "x", "N": "1"}, "/a: expected one type tag"),
    ({"N": "abc"}, "/a: 'abc' is not a number"),
    ({"N": "NaN"}, "/a: 'NaN' is not a finite number"),
    ({"B": "not base64!"}, "/a: B value is not valid base64"),
    ({"BOOL": "true"}, "/a: BOOL value must be true or false"),
    ({"SS": []}, "/a: SS value must not be empty"),
    ({"M": {"x": {"Q": 1}}}, "/a/x: unknown type tag 'Q'"),
])
def test_invalid_values_name_their_path(value: dict, message: str) -> None:
    with pytest.raises(InvalidValue) as info:
        codec.encode_item({"a": value})
    assert message in str(info.value)


def test_item_key_is_canonical_and_distinct() -> None:
    one = codec.item_key({"sk": {"N": "1.0"}, "pk": {"S": "a"}})
    assert one == codec.item_key({"pk": {"S": "a"}, "sk": {"N": "1"}}) == '{"pk":"a","sk":1}'
    assert codec.item_key({"pk": {"S": "1"}}) != codec.item_key({"pk": {"N": "1"}})
    assert codec.item_key({"pk": {"S": 'a","sk":"b'}}) != codec.item_key(
        {"pk": {"S": "a"}, "sk": {"S": "b"}})
    assert codec.item_key_from_plain({"pk": "a", "sk": "1.00"}, {"sk": "N"}) == one


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=5),
                       st.one_of(st.text(min_size=1).map(lambda s: {"S": s}),
                                 dynamo_numbers().map(lambda n: {"N": n})),
                       min_size=1, max_size=2))
def test_item_key_is_valid_json_of_the_key_values(keys: dict) -> None:
    parsed = json.loads(codec.item_key(keys), parse_float=Decimal, parse_int=Decimal)
    assert list(parsed) == sorted(keys)
    for name, typed in keys.items():
        expected = typed["S"] if "S" in typed else Decimal(typed["N"])
        assert parsed[name] == expected


def test_changed_attributes_ignore_set_order_and_number_spelling() -> None:
    old = {"a": {"SS": ["x", "y"]}, "n": {"N": "1.0"}, "gone": {"S": "g"}, "same": {"S": "s"}}
    new = {"a": {"SS": ["y", "x"]}, "n": {"N": "1"}, "added": {"BOOL": True},
           "same": {"S": "s"}}
    assert codec.changed_attributes(old, new) == ["added", "gone"]


@settings(max_examples=400, deadline=None)
@given(items, st.booleans())
def test_fast_path_equals_the_exact_encoder(item: dict, ascii_only: bool) -> None:
    enc = codec._Encoder(ascii_only=ascii_only)
    enc.item(item, "/r")
    assert codec.encode_item(item, "/r", ascii_only=ascii_only) == ("".join(enc.out), enc.hints)


@pytest.mark.parametrize("bad", [
    {"a": {"S": {"S": "y"}}},
    {"a": {"BOOL": {"BOOL": True}}},
    {"a": {"S": "x", "M": {"b": {"S": "y"}}}},
    {"a": {"NS": [{"S": "1"}]}},
    {"a": {"N": {"N": "1"}}},
    {"a": {"NULL": {"NULL": True}}},
    {"a": {"M": {"b": {"S": "y"}}, "L": []}},
])
def test_malformed_nesting_is_rejected_not_reinterpreted(bad: dict) -> None:
    with pytest.raises(InvalidValue):
        codec.encode_item(bad)


@settings(max_examples=300, deadline=None)
@given(items)
def test_orjson_and_the_standard_library_write_identical_text_and_hints(item: dict) -> None:
    if not codec.FAST_JSON:
        pytest.skip("orjson is not installed")
    fast_hints: dict = {}
    fast = codec._orjson_text(codec._plain_map(item, "/r", fast_hints, codec._fragment))
    std_hints: dict = {}
    try:
        std = codec._stdlib_text(item, "/r", std_hints)
    except codec._Slow:  # e.g. a name holding the number marker: the exact path writes it
        exact = codec._Encoder(ascii_only=False)
        exact.item(item, "/r")
        std, std_hints = "".join(exact.out), exact.hints
    assert std == fast
    assert std_hints == fast_hints


def test_a_string_that_looks_like_the_number_marker_is_written_exactly() -> None:
    item = {"a": {"S": "\x00"}, "b": {"N": "1"}, "c": {"S": "\x001\x00"},
            "d": {"S": '"\x00'}}
    exact = codec._Encoder(ascii_only=False)
    exact.item(item, "")
    with pytest.raises(codec._Slow):  # the marker counts disagree: the exact path writes it
        codec._stdlib_text(item, "", {})
    assert codec.encode_item(item)[0] == "".join(exact.out)


@st.composite
def image_pairs(draw: st.DrawFn) -> tuple[dict, dict]:
    """An old image and a new one sharing some attributes (equal values, or equal under
    DynamoDB but spelled or ordered differently), changing, adding and removing others."""
    old = draw(items)
    new = {}
    for name, value in old.items():
        choice = draw(st.sampled_from(["same", "copy", "changed", "removed", "reordered"]))
        if choice == "same":
            new[name] = value
        elif choice == "copy":
            new[name] = json.loads(json.dumps(value))  # equal, distinct objects
        elif choice == "changed":
            new[name] = draw(values)
        elif choice == "reordered" and "SS" in value:
            new[name] = {"SS": list(reversed(value["SS"]))}
    new.update(draw(st.dictionaries(attribute_names, values, max_size=2)))
    return old, new


@settings(max_examples=300, deadline=None)
@given(image_pairs(), st.dictionaries(st.sampled_from(["pk", "sk", "id"]), st.one_of(
    st.text(min_size=1, max_size=5).map(lambda s: {"S": s}),
    dynamo_numbers().map(lambda n: {"N": n})), min_size=1, max_size=2))
def test_encode_change_equals_encoding_each_image_on_its_own(pair: tuple, keys: dict) -> None:
    old, new = pair
    got = codec.encode_change(keys, old, new)
    keys_text, key_hints = codec.encode_item(keys, "/keys")
    old_text, old_hints = codec.encode_item(old, "/old_image")
    new_text, new_hints = codec.encode_item(new, "/new_image")
    assert got.keys == keys_text
    assert got.item_key == codec.item_key(keys)
    assert (got.old_image, got.new_image) == (old_text, new_text)
    assert got.type_hints == codec.hints_json({**key_hints, **old_hints, **new_hints})
    assert got.changed == codec.changed_attributes(old, new)


def test_an_old_value_equal_in_python_but_not_in_dynamodb_is_still_refused() -> None:
    """True == 1 in Python: an old {"BOOL": 1} next to a new {"BOOL": true} is invalid."""
    for old_value, new_value in [({"BOOL": 1}, {"BOOL": True}), ({"NULL": 1.0}, {"NULL": True}),
                                 ({"M": {"b": {"BOOL": 0}}}, {"M": {"b": {"BOOL": False}}}),
                                 ({"L": [{"NULL": 1}]}, {"L": [{"NULL": True}]})]:
        with pytest.raises(InvalidValue, match="/old_image/a"):
            codec.encode_change({"pk": {"S": "k"}}, {"a": old_value}, {"a": new_value})
