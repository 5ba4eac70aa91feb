"""A random workload with every DynamoDB type, and scans to compare tables (jobs tests)."""

from __future__ import annotations

import random
import string
import uuid
from typing import Any

from ddbtrail.core import codec

# Numbers that break float- or context-based deserializers (boto3 #2500, #4693).
HARD_NUMBERS = [
    "110111111111111110000000000000000000000",
    "12345678901234567890123456789012345678",
    "-0.000000000000000000000000000000000000012345678901234567890123456789012345678",
    "1E+125", "9.9999999999999999999999999999999999999E+125", "1E-130", "0", "-17", "3.25",
]


def _text(rng: random.Random) -> str:
    alphabet = string.ascii_letters + "é€😀\"\\/\n\t "
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def _number(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return rng.choice(HARD_NUMBERS)
    return str(rng.randint(-10**12, 10**12)) if rng.random() < 0.5 else \
        f"{rng.randint(-10**6, 10**6)}.{rng.randint(1, 999)}"


def _bytes(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randint(1, 24)))


def value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A random typed value (B as bytes, for the low-level client)."""
    kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["M", "L"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "S":
        return {"S": _text(rng)}
    if kind == "N":
        return {"N": _number(rng)}
    if kind == "B":
        return {"B": _bytes(rng)}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "SS":
        return {"SS": sorted({_text(rng) + str(i) for i in range(rng.randint(1, 4))})}
    if kind == "NS":
        members = {str(rng.randint(-999, 999) * 10**i) for i in range(rng.randint(1, 4))}
        return {"NS": sorted(members)}
    if kind == "BS":
        return {"BS": list({_bytes(rng) for _ in range(rng.randint(1, 3))})}
    if kind == "M":
        return {"M": {f"m{i}": value(rng, depth + 1) for i in range(rng.randint(0, 3))}}
    return {"L": [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]}


def every_type(rng: random.Random) -> dict[str, Any]:
    """One attribute of each type (so every item exercises all of them), plus extras."""
    item = {
        "s": {"S": _text(rng)}, "n": {"N": _number(rng)}, "b": {"B": _bytes(rng)},
        "bool": {"BOOL": True}, "null": {"NULL": True}, "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", rng.choice(HARD_NUMBERS[:2])]},
        "bs": {"BS": [b"\x00", _bytes(rng) + b"\x01"]},
        "m": {"M": {"inner": value(rng, 1)}}, "l": {"L": [value(rng, 1), value(rng, 1)]},
    }
    for i in range(rng.randint(0, 3)):
        item[f"x{i}"] = value(rng)
    return item


def create_table(client: Any, *, stream: str | None = "NEW_AND_OLD_IMAGES",
                 sk_type: str = "N", name: str | None = None) -> str:
    """A pay-per-request table keyed pk (S) + sk (``sk_type``), with a stream if asked."""
    name = name or f"t-{uuid.uuid4().hex[:10]}"
    kwargs: dict[str, Any] = {}
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": sk_type}],
        **kwargs)
    return name


def key_value(rng: random.Random, sk_type: str, i: int) -> dict[str, Any]:
    sk: dict[str, Any] = {"N": str(i)} if sk_type == "N" else {"B": bytes([i % 256, 7])}
    return {"pk": {"S": f"user#{i % 5}"}, "sk": sk}


def workload(client: Any, table: str, rng: random.Random, ops: int, *,
             keys: int = 12, sk_type: str = "N") -> None:
    """``ops`` random puts, updates and deletes over ``keys`` items."""
    for _ in range(ops):
        key = key_value(rng, sk_type, rng.randrange(keys))
        roll = rng.random()
        if roll < 0.55:
            client.put_item(TableName=table, Item={**every_type(rng), **key})
        elif roll < 0.8:
            client.update_item(
                TableName=table, Key=key,
                UpdateExpression="SET #a = :v, #n = :n",
                ExpressionAttributeNames={"#a": f"u{rng.randrange(3)}", "#n": "n"},
                ExpressionAttributeValues={":v": value(rng), ":n": {"N": _number(rng)}})
        else:
            client.delete_item(TableName=table, Key=key)


def scan(client: Any, table: str, *, drop: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Every item of a table by canonical item_key (B as bytes), minus ``drop`` attributes."""
    out: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    desc = client.describe_table(TableName=table)["Table"]
    names = [k["AttributeName"] for k in desc["KeySchema"]]
    while True:
        page = client.scan(**kwargs)
        for item in page["Items"]:
            out[codec.item_key({n: item[n] for n in names})] = {
                k: v for k, v in item.items() if k not in drop}
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_same_items(actual: dict[str, dict[str, Any]],
                      expected: dict[str, dict[str, Any]]) -> None:
    """Same item keys, and every attribute equal as DynamoDB sees it (exact numbers)."""
    assert sorted(actual) == sorted(expected)
    for key, item in expected.items():
        other = actual[key]
        assert sorted(other) == sorted(item), key
        for name, typed in item.items():
            assert codec.same_value(_b64(other[name]), _b64(typed)), (key, name, other[name], typed)


def _b64(value: Any) -> Any:
    """Typed value with bytes turned into base64 text (same_value compares text)."""
    text, hints = codec.encode_item({"v": value})
    return codec.decode_item(text, hints)["v"]
