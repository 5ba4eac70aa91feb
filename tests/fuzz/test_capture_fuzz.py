"""Fuzzing the capture handler's path (``capture_batch``) with bad records among good ones.

Every bad record must give one clear error naming it (its eventID, or that it has none),
be isolated (quarantined when a bucket is set, else reported in batchItemFailures from the
first one), and every good record of the batch must still be delivered.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.core.redact import RedactionPolicy
from ddbtrail.delivery.firehose import FirehoseSink
from tests.faults.figures import record
from tests.fuzz.badinput import (
    bad_record,
    expected_name,
    good_record,
    kinds,
    sequence_of,
)
from tests.strategies import items
from tests.stubs import StubFirehose

TRIED = {"batches": 0, "bad": 0}


def firehose(stub: StubFirehose, **options: Any) -> FirehoseSink:
    """The stub as a Firehose sink that does not sleep between retries."""
    return FirehoseSink(stub, "fuzz", sleep=lambda _: None, **options)


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Any:
    yield
    record("bad input: capture_batch (hypothesis)", runs=TRIED["batches"],
           bad_inputs=TRIED["bad"])


class FakeS3:
    """put_object into a dict; a second put to one key would overwrite (and is counted)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.puts += 1
        self.objects[Key] = Body
        return {}


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Any], set[str], list[Any]]:
    """A batch mixing good and bad records: (records, good eventIDs, bad records)."""
    layout = draw(st.lists(st.one_of(st.none(), kinds), min_size=1, max_size=25))
    records: list[Any] = []
    good: set[str] = set()
    bad: list[Any] = []
    for i, kind in enumerate(layout):
        if kind is None:
            records.append(good_record(i, draw(items)))
            good.add(f"good-{i}")
        else:
            rec = bad_record(kind, i)
            records.append(rec)
            bad.append(rec)
    return records, good, bad


def delivered_ids(stub: StubFirehose) -> list[str]:
    return [json.loads(line)["event_id"] for line in stub.rows()]


SETTINGS = CaptureSettings()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_bad_records_are_quarantined_and_the_rest_is_delivered(
        batch: tuple[list[Any], set[str], list[Any]]) -> None:
    records, good, bad = batch
    TRIED["batches"] += 1
    TRIED["bad"] += len(bad)
    stub, s3 = StubFirehose(), FakeS3()
    settings_ = CaptureSettings(spill_bucket="spill")
    result = capture_batch({"Records": records}, sink=firehose(stub), settings=settings_, s3=s3,
                           now_ms=1714564900000)

    assert sorted(delivered_ids(stub)) == sorted(good)
    assert not result.failed
    assert result.quarantined == len(bad) == len(result.malformed)
    # One object per bad record: none overwrote another.
    assert len(s3.objects) == s3.puts == len(bad)
    messages = [str(e) for e in result.malformed]
    for rec, message in zip(bad, messages, strict=True):
        assert message.startswith(expected_name(rec)), message
        assert "\n" not in message and len(message) < 600
    bodies = [json.loads(b) for b in s3.objects.values()]
    assert sorted(b["error"] for b in bodies) == sorted(messages)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_without_a_bucket_the_first_bad_record_is_reported_and_good_ones_delivered(
        batch: tuple[list[Any], set[str], list[Any]]) -> None:
    records, good, bad = batch
    TRIED["batches"] += 1
    TRIED["bad"] += len(bad)
    stub = StubFirehose()
    result = capture_batch({"Records": records}, sink=firehose(stub), settings=SETTINGS,
                           now_ms=1714564900000)
    assert sorted(delivered_ids(stub)) == sorted(good)
    failures = result.response()["batchItemFailures"]
    if bad:
        # Lambda retries from the first bad record (an empty identifier: the whole batch).
        assert failures == [{"itemIdentifier": sequence_of(bad[0])}]
        assert [str(e).split(":")[0] + ":" for e in result.malformed] == [
            expected_name(r) for r in bad]
    else:
        assert failures == []


POLICY = RedactionPolicy.from_mapping(
    {"*": {"S": "hmac", "email": "hmac", "M": "drop", "/L/x": "drop", "pk": "drop"}},
    b"fuzz key")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_under_a_redaction_policy_bad_records_are_isolated_without_their_values(
        batch: tuple[list[Any], set[str], list[Any]]) -> None:
    records, good, bad = batch
    TRIED["batches"] += 1
    TRIED["bad"] += len(bad)
    stub, s3 = StubFirehose(), FakeS3()
    settings_ = CaptureSettings(spill_bucket="spill", redaction=POLICY)
    result = capture_batch({"Records": records}, sink=firehose(stub), settings=settings_, s3=s3,
                           now_ms=1714564900000)
    assert sorted(delivered_ids(stub)) == sorted(good)
    assert result.quarantined == len(bad) == len(s3.objects)
    for body in s3.objects.values():
        kept = json.loads(body)["record"]
        if isinstance(kept, dict):
            assert not {"NewImage", "OldImage", "Keys"} & set(kept.get("dynamodb") or {})
            assert "kinesis" not in kept
    for line in stub.rows():
        row = json.loads(line)
        assert "item-" not in row["item_key"]  # the key attribute is HMAC'd
        image = json.loads(row["new_image"])
        assert "M" not in image and "pk" not in image
        assert all(str(image[k]).startswith("hmac:") for k in ("S", "email") if k in image)


def test_under_a_redaction_policy_a_bad_value_is_not_quoted_in_quarantine_or_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    """Codec errors quote the value at fault; a policy withholds it, keeping its place."""
    secret = "alice@example.com"
    records = [good_record(1, {"email": {"S": secret, "N": "1"}}),  # redacted attribute
               good_record(2, {"note": {"N": secret}}),  # any attribute of a bad record
               good_record(3, {"email": {"S": secret}})]
    stub, s3 = StubFirehose(), FakeS3()
    with caplog.at_level("ERROR", logger="ddbtrail"):
        result = capture_batch({"Records": records}, sink=firehose(stub), s3=s3,
                               settings=CaptureSettings(spill_bucket="q",
                                                        redaction=POLICY), now_ms=1714564900000)
    assert result.quarantined == 2 and delivered_ids(stub) == ["good-3"]
    written = b"".join(s3.objects.values()) + b"".join(stub.accepted)
    logged = " ".join(str(getattr(r, "error", "")) + r.getMessage() for r in caplog.records)
    assert secret.encode() not in written and secret not in logged
    errors = sorted(json.loads(b)["error"] for b in s3.objects.values())
    assert errors[1] == ("record good-2: /new_image/note: invalid value (details withheld: "
                         "redaction policy active)")
    assert errors[0].startswith("record good-1: /")
