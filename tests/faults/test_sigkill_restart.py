"""``ddbtrail capture`` killed with SIGKILL at random points and restarted, until drained.

The CLI runs as a separate process against the moto server's endpoint. Writes keep coming
between kills; kills land before start-up, mid-batch, mid-flush or mid-checkpoint, at
random. A checkpoint is only written after the rows it covers are in the lake, so a kill
can only cause re-reads (duplicates), never gaps; a final ``--once`` run drains the stream.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.lake.files import Lake
from tests.faults.figures import record, seed
from tests.faults.ledger import Ledger, make_table, verify

pytestmark = pytest.mark.integration

CLI = "import sys; from ddbtrail.cli import main; main(sys.argv[1:])"


def capture_cmd(table: str, lake: Path, endpoint: str, fmt: str, *extra: str) -> list[str]:
    return [sys.executable, "-c", CLI, "capture", "--table", table, "--lake", str(lake),
            "--endpoint-url", endpoint, "--region", "us-east-1", "--format", fmt,
            "--batch-size", "15", "--checkpoint-interval", "0.2", *extra]


def newest_state_change(lake: Path) -> float:
    """Latest mtime of any checkpoint or data file (0 when none): progress made."""
    return max((p.stat().st_mtime for p in lake.rglob("*") if p.is_file()), default=0.0)


def last_sequence_number(streams: Any, arn: str) -> int:
    """The stream's last SequenceNumber (moto has one shard)."""
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    last = 0
    while it:
        page = streams.get_records(ShardIterator=it, Limit=1000)
        if not page["Records"]:
            break
        last = int(page["Records"][-1]["dynamodb"]["SequenceNumber"])
        it = page.get("NextShardIterator")
    return last


def checkpointed(lake: Path) -> int:
    """The sequence number the capture's checkpoint covers (0 when none)."""
    files = list((lake / "_ddbtrail" / "checkpoints").rglob("*.json"))
    return max((int(json.loads(f.read_text())["sequence_number"] or 0) for f in files),
               default=0)


def test_sigkill_at_random_points_then_restart_loses_nothing(
        moto_server: Any, tmp_path: Path) -> None:
    rng = random.Random(seed(5001))
    ddb, table, arn = make_table(moto_server, "kill")
    streams = moto_server.client("dynamodbstreams")
    ledger = Ledger(ddb, table, rng)
    lake_dir = tmp_path / "lake"
    kills = runs = interrupted = 0
    for round_no in range(4):
        ledger.write(rng.randrange(150, 250))
        fmt = ("parquet", "jsonl")[round_no % 2]  # a lake may mix both
        log = (tmp_path / f"run{round_no}.log").open("wb")
        started = time.time()
        proc = subprocess.Popen(capture_cmd(table, lake_dir, moto_server.endpoint_url, fmt),
                                stdout=log, stderr=subprocess.STDOUT)
        runs += 1
        if rng.random() < 0.25:
            time.sleep(rng.uniform(0.1, 2.0))  # may land during start-up
        else:
            deadline = started + 60
            while newest_state_change(lake_dir) < started and time.time() < deadline \
                    and proc.poll() is None:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.6))  # mid-run: batches, flushes, checkpoints
        assert proc.poll() is None, (tmp_path / f"run{round_no}.log").read_text()
        proc.kill()  # SIGKILL: no handler, no flush, no final checkpoint
        proc.wait()
        log.close()
        kills += 1
        interrupted += checkpointed(lake_dir) < last_sequence_number(streams, arn)

    ledger.write(40)
    final = subprocess.run(capture_cmd(table, lake_dir, moto_server.endpoint_url, "parquet",
                                       "--once"),
                           capture_output=True, text=True, timeout=300, check=False)
    runs += 1
    assert final.returncode == 0, final.stderr
    assert f"of {table} into" in final.stdout

    v = verify(Lake.open(str(lake_dir)), ledger)
    record("capture process killed with SIGKILL and restarted", runs=runs, faults=kills,
           written=v.written, lost=v.lost, duplicates_delivered=v.duplicates_delivered,
           duplicates_after_dedup=v.duplicates_after_dedup)
    print(f"kills that interrupted work: {interrupted} of {kills}")
    assert interrupted > 0  # some kills stopped the capture with work still to do
    assert v.lost == 0
    assert v.out_of_order == 0
    assert v.events == v.written
    assert v.duplicates_after_dedup == 0
    assert v.disagreeing_copies == 0
