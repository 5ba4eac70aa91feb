"""A backfill after a trimmed gap becomes the item's state; the stream still wins within a second.

SNAPSHOT rows carry 13-digit sequence numbers (the scan time in ms), shorter than any
stream's, so only the event time can place them after the stream changes they follow.
"""

from __future__ import annotations

import json
from pathlib import Path

from ddbtrail.capture.backfill import snapshot_row
from ddbtrail.core.flatten import flatten_record, row_json
from ddbtrail.lake.files import Lake
from ddbtrail.query.lookups import item_as_of, item_history

T0 = 1_714_564_800  # 2024-05-01T12:00:00Z, in seconds


def change(seq: int, at_s: int, status: str, name: str = "MODIFY") -> dict:
    image = {"pk": {"S": "a"}, "status": {"S": status}}
    return flatten_record({
        "eventID": f"e{seq}", "eventName": name,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
        "dynamodb": {"ApproximateCreationDateTime": at_s, "Keys": {"pk": {"S": "a"}},
                     "NewImage": image, "SequenceNumber": str(10**20 + seq),
                     "StreamViewType": "NEW_AND_OLD_IMAGES"}}, ingested_at_ms=at_s * 1000)


def write(lake_dir: Path, rows: list[dict]) -> Lake:
    lake = Lake.open(str(lake_dir))
    for row in rows:
        folder = Path(lake.partition(row["table_name"], row["dt"]))
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "rows.jsonl").open("a") as f:
            f.write(row_json(row) + "\n")
    return lake


def snapshot(at_s: int, status: str) -> dict:
    return snapshot_row({"pk": {"S": "a"}, "status": {"S": status}}, key_names=["pk"],
                        table_name="t", snapshot_id="snap1", requested_ms=at_s * 1000,
                        ingested_ms=at_s * 1000, region=None)


def test_backfill_after_a_gap_is_the_latest_state(tmp_path: Path) -> None:
    # Stream: NEW at T0; the change to PAID at T0+60 was trimmed; backfill read PAID at T0+3600.
    lake = write(tmp_path, [change(1, T0, "NEW", "INSERT"), snapshot(T0 + 3600, "PAID")])
    key = '{"pk":"a"}'
    before = item_as_of(lake, "t", key, (T0 + 1800) * 1000)
    after = item_as_of(lake, "t", key, (T0 + 7200) * 1000)
    assert before is not None and json.loads(before["item"])["status"] == "NEW"
    assert after is not None and json.loads(after["item"])["status"] == "PAID"
    assert [r["action"] for r in item_history(lake, "t", key)] == ["INSERT", "SNAPSHOT"]


def test_a_stream_change_in_the_same_second_wins_over_the_snapshot(tmp_path: Path) -> None:
    lake = write(tmp_path, [snapshot(T0, "OLD"), change(2, T0, "NEWER")])
    found = item_as_of(lake, "t", '{"pk":"a"}', (T0 + 1) * 1000)
    assert found is not None and json.loads(found["item"])["status"] == "NEWER"
