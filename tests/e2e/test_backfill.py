"""Backfill end to end: items that predate the stream become SNAPSHOT rows, so as-of sees them."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.capture.backfill import backfill
from ddbtrail.core import codec
from ddbtrail.core.exceptions import DeliveryFailed
from ddbtrail.delivery.firehose import FirehoseSink
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups
from ddbtrail.query.duck import connect
from ddbtrail.query.restore import row_item
from tests.cli import exit_code
from tests.e2e.jobs_workload import assert_same_items, create_table, scan, workload

pytestmark = pytest.mark.e2e


def as_of(lake: Lake, table: str, at_ms: int) -> dict[str, dict[str, Any]]:
    out = {}
    for row in lookups.table_as_of(lake, table, at_ms):
        item = row_item(row)
        assert item is not None
        out[row["item_key"]] = item
    return out


def test_backfill_makes_as_of_correct_for_items_that_predate_the_stream(
        moto_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ddb, url = moto_server.client("dynamodb"), moto_server.endpoint_url
    lake_dir = str(tmp_path / "lake")
    table = create_table(ddb, stream=None)
    rng = random.Random(7)
    workload(ddb, table, rng, 60, keys=20)  # history nobody captured
    ddb.update_table(TableName=table, StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    assert exit_code(["backfill", "--table", table, "--lake", lake_dir, "--segments", "3",
                    "--max-rcu", "1000", "--endpoint-url", url]) == 0
    assert "snapshot" in capsys.readouterr().out
    after_backfill = scan(ddb, table)
    time.sleep(1.1)  # the next changes fall in a later second than the snapshot
    workload(ddb, table, rng, 30, keys=20)  # some items change after the backfill
    assert exit_code(["capture", "--table", table, "--lake", lake_dir, "--endpoint-url", url,
                    "--once"]) == 0
    lake = Lake.open(lake_dir)
    now = int(time.time() * 1000) + 1000
    assert_same_items(as_of(lake, table, now), scan(ddb, table))
    untouched = [k for k, v in scan(ddb, table).items() if after_backfill.get(k) == v]
    assert untouched, "the workload should leave some items unchanged since the backfill"
    con = connect(lake, table_name=table)
    actions = dict(con.execute("SELECT action, count(*) FROM changes GROUP BY 1").fetchall())
    assert actions["SNAPSHOT"] == len(after_backfill)


def test_an_interrupted_backfill_resumes_and_dedups(moto_server: Any, tmp_path: Path) -> None:
    ddb = moto_server.client("dynamodb")
    table = create_table(ddb, stream=None)
    for i in range(40):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"p{i}"}, "sk": {"N": str(i)},
                                            "big": {"N": "12345678901234567890123456789012345678"},
                                            "bin": {"B": bytes([i, 0, 255])}})
    lake = Lake.open(str(tmp_path / "lake"))

    class Flaky(LocalDeliveryStream):
        """Accepts a few calls, then refuses everything (a Firehose outage)."""

        calls_left = 3

        def put_record_batch(self, **kwargs: Any) -> dict[str, Any]:
            Flaky.calls_left -= 1
            if Flaky.calls_left < 0:
                n = len(kwargs["Records"])
                return {"FailedPutCount": n, "RequestResponses": [
                    {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "down"}] * n}
            return super().put_record_batch(**kwargs)

    flaky = Flaky(lake, fmt="jsonl")
    with pytest.raises(DeliveryFailed, match="rerun to resume"):
        backfill(dynamodb=ddb, sink=FirehoseSink(flaky, flaky.name, sleep=lambda s: None),
                 lake=lake, table=table, segments=2, page_limit=4, sleep=lambda s: None)
    flaky.close()
    first_id = lake.read_bytes(lake.state_path("backfill", table, "run.json"))
    assert first_id is not None and b'"running"' in first_id

    with LocalDeliveryStream(lake, fmt="jsonl") as stream:
        report = backfill(dynamodb=ddb, sink=stream, lake=lake, table=table, segments=5,
                          page_limit=4)
    assert report.resumed and report.segments == 2  # the run's own segment count
    con = connect(lake, table_name=table)
    ids, distinct, snaps = con.execute(
        "SELECT count(*), count(DISTINCT event_id), count(DISTINCT snapshot_id) FROM changes"
    ).fetchone()
    assert distinct == 40 and snaps == 1 and ids >= 40
    state = as_of(lake, table, int(time.time() * 1000) + 1000)
    assert_same_items(state, scan(ddb, table))
    key = codec.item_key({"pk": {"S": "p3"}, "sk": {"N": "3"}})
    assert state[key]["bin"] == {"B": bytes([3, 0, 255])}


def test_a_finished_backfill_is_not_repeated_without_new(
        moto_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ddb = moto_server.client("dynamodb")
    table = create_table(ddb, stream=None)
    for i in range(5):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"p{i}"}, "sk": {"N": str(i)}})
    lake_dir = str(tmp_path / "lake")
    args = ["backfill", "--table", table, "--lake", lake_dir, "--format", "jsonl",
            "--endpoint-url", moto_server.endpoint_url, "--region", moto_server.region]

    def snapshots() -> int:
        con = connect(Lake.open(lake_dir), table_name=table)
        try:
            return int(con.execute("SELECT count(DISTINCT snapshot_id) FROM changes")
                       .fetchone()[0])
        finally:
            con.close()

    assert exit_code(args) == 0
    first = capsys.readouterr().out
    assert f"of {table}: 5 items" in first
    # A rerun says the snapshot is finished and scans nothing.
    assert exit_code(args) == 0
    again = capsys.readouterr().out
    assert "finished at" in again and "(5 items); nothing to do" in again
    assert "--new" in again
    assert snapshots() == 1
    # --new is the explicit way to a second snapshot.
    assert exit_code([*args, "--new"]) == 0
    assert f"of {table}: 5 items" in capsys.readouterr().out
    assert snapshots() == 2
