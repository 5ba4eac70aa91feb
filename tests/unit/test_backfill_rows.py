"""SNAPSHOT rows: deterministic ids, ordering against stream changes, exact values."""

from __future__ import annotations

import json

from ddbtrail.capture.backfill import snapshot_event_id, snapshot_row
from ddbtrail.core.codec import decode_item, hints_under
from ddbtrail.core.flatten import flatten_record
from ddbtrail.core.row import COLUMN_NAMES

ITEM = {"pk": {"S": "a"}, "sk": {"N": "1"}, "b": {"B": b"\x00\xff"},
        "n": {"N": "110111111111111110000000000000000000000"}, "ss": {"SS": ["x"]}}


def row(requested_ms: int = 1_700_000_000_750, snapshot_id: str = "s1") -> dict[str, object]:
    return snapshot_row(ITEM, key_names=["pk", "sk"], table_name="t", snapshot_id=snapshot_id,
                        requested_ms=requested_ms, ingested_ms=requested_ms + 5,
                        region="us-east-1")


def test_snapshot_row_has_every_column_and_rebuilds_the_item_exactly() -> None:
    r = row()
    assert set(r) == set(COLUMN_NAMES)
    assert r["action"] == "SNAPSHOT" and r["snapshot_id"] == "s1"
    assert r["event_source"] == "ddbtrail:backfill"
    hints = hints_under(json.loads(str(r["type_hints"])), "/new_image")
    assert decode_item(str(r["new_image"]), hints, binary_as_bytes=True) == ITEM


def test_event_id_is_deterministic_per_snapshot_and_item() -> None:
    assert row()["event_id"] == row(requested_ms=1_800_000_000_000)["event_id"]
    assert row()["event_id"] != row(snapshot_id="s2")["event_id"]
    assert row()["event_id"] == snapshot_event_id("s1", '{"pk":"a","sk":1}')


def _order(r: dict[str, object]) -> tuple[int, str]:
    seq = str(r["sequence_number"])
    return len(seq), seq


def test_snapshot_sorts_before_stream_changes_and_after_older_snapshots() -> None:
    change = flatten_record({
        "eventID": "e1", "eventName": "MODIFY", "eventSourceARN":
        "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
        "dynamodb": {"Keys": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                     "NewImage": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                     "SequenceNumber": "100000000000000000000", "ApproximateCreationDateTime": 1},
    }, ingested_at_ms=0)
    older, newer = row(1_700_000_000_000), row(1_700_000_100_000)
    assert _order(older) < _order(newer) < _order(change)


def test_timestamp_is_the_request_second_so_same_second_changes_win() -> None:
    r = row(requested_ms=1_700_000_000_750)
    assert r["timestamp"] == 1_700_000_000_000
    assert r["dt"] == "2023-11-14"
