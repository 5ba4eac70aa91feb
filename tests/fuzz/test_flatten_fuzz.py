"""Fuzzing ``ddbtrail.core.flatten``: arbitrary JSON, mutated records, and DynamoDB's limits.

``flatten_records`` must never raise for a record: each input gives either a row that the
delivery stream and Parquet accept, or a MalformedRecord naming it. Values at DynamoDB's
limits (38 digits, 1E+125, 1E-130, 32 levels, 400 KB items) must come back exactly.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.core import codec
from ddbtrail.core.flatten import flatten_records, row_bytes
from ddbtrail.core.row import COLUMNS
from ddbtrail.delivery.firehose import MAX_RECORD_BYTES, FirehoseSink
from ddbtrail.delivery.local import parquet_bytes
from tests.faults.figures import record
from tests.fuzz.badinput import bad_record, good_record, kinds, nested
from tests.fuzz.test_capture_fuzz import FakeS3
from tests.strategies import dynamo_numbers, items
from tests.stubs import StubFirehose

TRIED = {"runs": 0, "bad": 0}
NOW = 1714564900000
_DT = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def firehose(stub: StubFirehose, **options: Any) -> FirehoseSink:
    """The stub as a Firehose sink that does not sleep between retries."""
    return FirehoseSink(stub, "fuzz", sleep=lambda _: None, **options)


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Any:
    yield
    record("bad input: flatten_records and limits (hypothesis)", runs=TRIED["runs"],
           bad_inputs=TRIED["bad"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=15,
)


def assert_deliverable(row: dict[str, Any]) -> None:
    """What Firehose's conversion and the lake need of every row."""
    for col in COLUMNS:
        if not col.nullable:
            assert row[col.name] is not None, col.name
    assert _DT.match(row["dt"])
    assert row["sequence_number"].isascii() and row["sequence_number"].isdigit()
    assert row_bytes(row).endswith(b"\n")
    parquet_bytes([row])  # raises if a value does not fit its column type


def check(records: list[Any]) -> None:
    TRIED["runs"] += 1
    out = list(flatten_records(records, ingested_at_ms=NOW))
    assert [f.index for f in out] == list(range(len(records)))
    for f, rec in zip(out, records, strict=True):
        if f.row is not None:
            assert_deliverable(f.row)
            continue
        TRIED["bad"] += 1
        assert f.error is not None
        event_id = rec.get("eventID") if isinstance(rec, dict) else None
        name = event_id if isinstance(event_id, str) and event_id else "<no eventID>"
        assert str(f.error).startswith(f"record {name}: ")


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=8))
def test_arbitrary_json_records_never_raise(records: list[Any]) -> None:
    check(records)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with one to three places replaced by arbitrary JSON, or removed."""
    rec = copy.deepcopy(good_record(draw(st.integers(0, 50)), draw(items)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(rec)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = rec
        for p in path[:-1]:
            parent = parent[p]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return rec


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_records(), min_size=1, max_size=5))
def test_mutated_records_give_a_deliverable_row_or_an_error_naming_them(
        records: list[Any]) -> None:
    check(records)


@settings(max_examples=60, deadline=None)
@given(st.lists(kinds, min_size=1, max_size=10))
def test_every_kind_of_bad_record_is_named(bad_kinds: list[str]) -> None:
    check([bad_record(kind, i) for i, kind in enumerate(bad_kinds)])


# --------------------------------------------------------------------------- limits

LIMIT_NUMBERS = [
    "12345678901234567890123456789012345678",  # 38 significant digits
    "-12345678901234567890123456789012345678",
    "0.12345678901234567890123456789012345678",
    "9.9999999999999999999999999999999999999E+125",  # the largest
    "1E+125", "-1E+125", "1E-130", "-1E-130",  # the smallest magnitude
    "110111111111111110000000000000000000000",  # boto3's decimal.Rounded case
    "0",
]


def roundtrip(row: dict[str, Any], image: str) -> dict[str, Any]:
    hints = codec.hints_under(json.loads(row["type_hints"] or "{}"), f"/{image}")
    return codec.decode_item(row[image], hints)


def test_numbers_at_dynamodbs_limits_come_back_exactly() -> None:
    image = {f"n{i}": {"N": n} for i, n in enumerate(LIMIT_NUMBERS)}
    image["ns"] = {"NS": LIMIT_NUMBERS[:5]}
    rec = good_record(1, image)
    rec["dynamodb"]["Keys"] = {"pk": {"S": "item-1"}, "num": {"N": "1E-130"}}
    rec["dynamodb"]["NewImage"]["num"] = {"N": "1E-130"}
    [out] = flatten_records([rec], ingested_at_ms=NOW)
    assert out.row is not None
    assert roundtrip(out.row, "new_image") == rec["dynamodb"]["NewImage"]
    assert json.loads(out.row["item_key"]) == {"num": 1e-130, "pk": "item-1"}
    assert '"num":1E-130' in out.row["item_key"]


@settings(max_examples=100, deadline=None)
@given(st.lists(dynamo_numbers(), min_size=1, max_size=20))
def test_any_dynamodb_number_comes_back_exactly(numbers: list[str]) -> None:
    TRIED["runs"] += 1
    image = {f"n{i}": {"N": n} for i, n in enumerate(numbers)}
    [out] = flatten_records([good_record(1, image)], ingested_at_ms=NOW)
    assert out.row is not None
    back = roundtrip(out.row, "new_image")
    assert all(back[k] == v for k, v in image.items())


def test_32_levels_of_nesting_come_back_exactly() -> None:
    deep_map = nested(31, {"B": "AAEC"})
    deep_list = nested(31, {"SS": ["a", "b"]}, "L")
    rec = good_record(1, {"m": deep_map, "l": deep_list})
    [out] = flatten_records([rec], ingested_at_ms=NOW)
    assert out.row is not None
    assert roundtrip(out.row, "new_image") == rec["dynamodb"]["NewImage"]


def test_400_kb_images_fit_one_firehose_record_and_larger_rows_are_spilled() -> None:
    """Two 400 KB images (a MODIFY) make a ~800 KB row: still one Firehose record. A row
    over 1,000 KiB (escaping inflates \\u0001 six-fold) is spilled, or reported without a
    spill bucket; the rest of the batch is delivered either way."""
    big = good_record(1, {"s": {"S": "a" * 409_000}})
    big["eventName"] = "MODIFY"
    big["dynamodb"]["OldImage"] = {"pk": {"S": "item-1"}, "s": {"S": "b" * 409_000}}
    huge = good_record(2, {"s": {"S": "\u0001" * 200_000}})
    records = [good_record(0), big, huge, good_record(3)]

    stub, s3 = StubFirehose(), FakeS3()
    result = capture_batch({"Records": records}, sink=firehose(stub), s3=s3,
                           settings=CaptureSettings(spill_bucket="spill"), now_ms=NOW)
    assert not result.failed and result.spilled == 1
    rows = {json.loads(line)["event_id"]: line for line in stub.rows()}
    assert sorted(rows) == ["good-0", "good-1", "good-2", "good-3"]
    assert 800_000 < len(rows["good-1"]) <= MAX_RECORD_BYTES
    spilled = json.loads(rows["good-2"])
    assert spilled["new_image"] is None and spilled["spill_uri"].endswith("/good-2.json")
    [body] = s3.objects.values()
    assert json.loads(body)["new_image"] == json.dumps({"s": "\u0001" * 200_000,
                                                        "pk": "item-2"}, separators=(",", ":"))

    stub = StubFirehose()
    result = capture_batch({"Records": records}, sink=firehose(stub),
                           settings=CaptureSettings(), now_ms=NOW)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": "1002"}]}
    assert sorted(json.loads(line)["event_id"] for line in stub.rows()) == [
        "good-0", "good-1", "good-3"]


def test_a_batch_of_10000_records_with_bad_ones_delivers_every_good_one() -> None:
    """Lambda's largest batch: the calls stay within PutRecordBatch's limits (the stub
    refuses more than 500 records or 4 MiB per call) and bad records are quarantined."""
    bad_at = {17: "unknown type tag", 4_000: "no eventID", 4_001: "null",
              9_999: "nested 5,000 maps deep"}
    records = [bad_record(bad_at[i], i) if i in bad_at else good_record(i)
               for i in range(10_000)]
    TRIED["runs"] += 1
    TRIED["bad"] += len(bad_at)
    stub, s3 = StubFirehose(), FakeS3()
    result = capture_batch({"Records": records}, sink=firehose(stub, pack_rows=False), s3=s3,
                           settings=CaptureSettings(spill_bucket="q"), now_ms=NOW)
    assert not result.failed
    assert result.quarantined == len(s3.objects) == 4
    assert len(stub.rows()) == 10_000 - 4
    assert stub.calls == 20  # 500 records per call
