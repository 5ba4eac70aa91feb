"""Bad stream records for fuzzing: each a mutation of a good record, tagged by kind.

``good_record(i, image)`` builds a valid DynamoDB Streams record (eventID ``good-<i>``,
SequenceNumber ``1000 + i``). ``BAD`` maps a kind to a function that turns record ``i``
into a bad one; most keep an eventID (``bad-<i>``) so the error can name it, a few take
it away (the error must then say so). ``bad_records`` is the hypothesis strategy.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any, Final

from hypothesis import strategies as st

ARN: Final = "arn:aws:dynamodb:us-east-1:123456789012:table/fuzz/stream/2024-01-01T00:00:00.000"
Record = dict[str, Any]


def good_record(i: int, image: dict[str, Any] | None = None) -> Record:
    keys = {"pk": {"S": f"item-{i}"}}
    new = {**(image or {}), **keys}
    return {
        "eventID": f"good-{i}", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "eventSourceARN": ARN,
        "dynamodb": {"ApproximateCreationDateTime": 1714564800, "Keys": keys, "NewImage": new,
                     "SequenceNumber": str(1000 + i), "SizeBytes": 50,
                     "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def nested(depth: int, leaf: dict[str, Any], tag: str = "M") -> dict[str, Any]:
    value = leaf
    for _ in range(depth):
        value = {"M": {"a": value}} if tag == "M" else {"L": [value]}
    return value


def _ddb(field: str, value: Any) -> Callable[[Record], None]:
    def mutate(r: Record) -> None:
        r["dynamodb"][field] = value
    return mutate


def _image_value(value: Any) -> Callable[[Record], None]:
    def mutate(r: Record) -> None:
        r["dynamodb"]["NewImage"]["bad"] = value
    return mutate


def _top(field: str, value: Any) -> Callable[[Record], None]:
    def mutate(r: Record) -> None:
        r[field] = value
    return mutate


def _drop(*path: str) -> Callable[[Record], None]:
    def mutate(r: Record) -> None:
        target = r
        for p in path[:-1]:
            target = target[p]
        del target[path[-1]]
    return mutate


def _kinesis(data: str) -> Callable[[Record], None]:
    def mutate(r: Record) -> None:
        r.pop("dynamodb")
        r["eventSource"] = "aws:kinesis"
        r["kinesis"] = {"data": data,
                        "sequenceNumber": "4959033827149025660855969253836157109592157598913"}
    return mutate


# kind -> mutation; the record keeps eventID bad-<i> unless the kind says "no eventID".
BAD: Final[dict[str, Callable[[Record], None]]] = {
    "missing dynamodb section": _drop("dynamodb"),
    "missing Keys": _drop("dynamodb", "Keys"),
    "missing SequenceNumber": _drop("dynamodb", "SequenceNumber"),
    "missing eventName": _drop("eventName"),
    "dynamodb is a list": _top("dynamodb", []),
    "dynamodb is a string": _top("dynamodb", "oops"),
    "eventName unknown": _top("eventName", "UPSERT"),
    "eventName is a list": _top("eventName", ["INSERT"]),
    "eventName is a map": _top("eventName", {"v": "INSERT"}),
    "Keys is a list": _ddb("Keys", [{"pk": {"S": "a"}}]),
    "Keys empty": _ddb("Keys", {}),
    "key attribute is a map": _ddb("Keys", {"pk": {"M": {}}}),
    "SequenceNumber is a number": _ddb("SequenceNumber", 1234),
    "SequenceNumber not decimal": _ddb("SequenceNumber", "12ab"),
    "SequenceNumber in non-ASCII digits": _ddb("SequenceNumber", "\u0661\u0662\u0663"),
    "SequenceNumber superscript digits": _ddb("SequenceNumber", "\u00b2\u00b3"),
    "timestamp is text": _ddb("ApproximateCreationDateTime", "yesterday"),
    "timestamp is true": _ddb("ApproximateCreationDateTime", True),
    "timestamp beyond year 9999": _ddb("ApproximateCreationDateTime", 1e20),
    "timestamp far in the past": _ddb("ApproximateCreationDateTime", -1e20),
    "timestamp infinite": _ddb("ApproximateCreationDateTime", float("inf")),
    "timestamp NaN": _ddb("ApproximateCreationDateTime", float("nan")),
    "unknown type tag": _image_value({"Z": "1"}),
    "two type tags": _image_value({"S": "a", "N": "1"}),
    "no type tag": _image_value({}),
    "value not an object": _image_value("plain"),
    "S not a string": _image_value({"S": 5}),
    "N is a float": _image_value({"N": 1.5}),
    "N not a number": _image_value({"N": "12abc"}),
    "N infinite": _image_value({"N": "Infinity"}),
    "N NaN": _image_value({"N": "NaN"}),
    "B invalid base64": _image_value({"B": "not base64!!"}),
    "BS invalid base64": _image_value({"BS": ["AA==", "%%%"]}),
    "BOOL as text": _image_value({"BOOL": "true"}),
    "NULL false": _image_value({"NULL": False}),
    "SS empty": _image_value({"SS": []}),
    "SS with a number": _image_value({"SS": ["a", 1]}),
    "NS with text": _image_value({"NS": ["1", "x"]}),
    "L not a list": _image_value({"L": {"0": {"S": "a"}}}),
    "M not a map": _image_value({"M": [1]}),
    "nested 5,000 maps deep": _image_value(nested(5000, {"S": "x"})),
    "nested 5,000 lists deep": _image_value(nested(5000, {"S": "x"}, "L")),
    "NewImage is a list": _ddb("NewImage", [1]),
    "kinesis data not base64": _kinesis("%%%"),
    "kinesis data not JSON": _kinesis(base64.b64encode(b"\xff\xfe").decode()),
    "kinesis data a JSON list": _kinesis(base64.b64encode(b"[1]").decode()),
    "table not named anywhere": _top("eventSourceARN", "arn:aws:dynamodb:us-east-1:1:table//x"),
    "no eventID": _drop("eventID"),
    "eventID is a number": _top("eventID", 42),
}
NO_EVENT_ID: Final = frozenset({"no eventID", "eventID is a number"})
NOT_A_RECORD: Final = ("null", "number", "string", "list")


def bad_record(kind: str, i: int) -> Any:
    """Record ``i`` made bad in the way ``kind`` names (or a non-object for NOT_A_RECORD)."""
    if kind in NOT_A_RECORD:
        return {"null": None, "number": i, "string": f"record {i}", "list": [i]}[kind]
    r = copy.deepcopy(good_record(i))
    r["eventID"] = f"bad-{i}"
    BAD[kind](r)
    return r


kinds = st.sampled_from([*BAD, *NOT_A_RECORD])


def expected_name(record: Any) -> str:
    """How an error must name a bad record: its eventID, or that it has none."""
    event_id = record.get("eventID") if isinstance(record, dict) else None
    if isinstance(event_id, str) and event_id:
        return f"record {event_id}:"
    return "record <no eventID>:"


def sequence_of(record: Any) -> str:
    """The itemIdentifier Lambda gets for a failed record ("" when it has no usable one)."""
    if not isinstance(record, dict):
        return ""
    ddb, kin = record.get("dynamodb"), record.get("kinesis")
    seq = ddb.get("SequenceNumber") if isinstance(ddb, dict) else None
    if seq is None and isinstance(kin, dict):
        seq = kin.get("sequenceNumber")
    return seq if isinstance(seq, str) else ""


def dumps_safe(record: Any) -> str:
    """JSON text of a record for messages (NaN and deep nesting tolerated)."""
    try:
        return json.dumps(record)[:200]
    except (ValueError, RecursionError):
        return repr(record)[:200]
