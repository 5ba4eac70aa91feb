"""A shard split and expired iterators, against a ground-truth log.

moto keeps one shard per stream. ``SplitStreams`` presents the real records of that shard
as DynamoDB does after splits: a parent (closed) whose records come first, two children
that take the later records by item key (so one item's later changes all sit in one
child), and a grandchild under one child. DescribeStream lists children before parents
and pages two shards at a time. Each GetRecords call may also find its iterator expired.
The runner must read every parent to its end before its children, so each item's changes
reach the capture in sequence-number order, and lose nothing across a crash and restart.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ddbtrail.capture.runner import CheckpointStore, RunnerSettings, StreamRunner
from ddbtrail.capture.runner.pipeline import capture_processor
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.files import Lake
from tests.faults.conftest import no_sleep
from tests.faults.figures import record, seed
from tests.faults.ledger import Ledger, make_table, verify

pytestmark = pytest.mark.integration


def expired() -> ClientError:
    return ClientError({"Error": {"Code": "ExpiredIteratorException",
                                  "Message": "Iterator expired"}}, "GetRecords")


class SplitStreams:
    """The real records of moto's one shard, presented as a split lineage (see module doc)."""

    def __init__(self, real: Any, arn: str, rng: random.Random, *, split_at: float = 0.3,
                 second_split_at: float = 0.65, expire: float = 0.0) -> None:
        self.real = real
        self.arn = arn
        self.rng = rng
        self.split_at = split_at
        self.second_split_at = second_split_at
        self.expire = expire
        self.expired = 0
        self.served: list[tuple[str, str, int]] = []  # (shard, item pk, sequence number)
        self._layout: dict[str, tuple[str | None, list[dict[str, Any]], bool]] | None = None

    def _all_records(self) -> list[dict[str, Any]]:
        shard = self.real.describe_stream(StreamArn=self.arn)["StreamDescription"][
            "Shards"][0]["ShardId"]
        it = self.real.get_shard_iterator(StreamArn=self.arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out: list[dict[str, Any]] = []
        while it:
            page = self.real.get_records(ShardIterator=it, Limit=1000)
            if not page["Records"]:
                break
            out.extend(page["Records"])
            it = page.get("NextShardIterator")
        return out

    def layout(self) -> dict[str, tuple[str | None, list[dict[str, Any]], bool]]:
        """shard id -> (parent, records, closed); children listed first on purpose.

        Read once: the writes are all made before the runner starts."""
        if self._layout is not None:
            return self._layout
        records = self._all_records()
        first = int(len(records) * self.split_at)
        second = int(len(records) * self.second_split_at)

        def even(r: dict[str, Any]) -> bool:
            return int(r["dynamodb"]["Keys"]["pk"]["S"][-3:]) % 2 == 0

        later = list(enumerate(records))[first:]
        self._layout = {
            "shard-3-grandchild": ("shard-2-even", [r for i, r in later
                                                    if even(r) and i >= second], False),
            "shard-2-odd": ("shard-1-parent", [r for _, r in later if not even(r)], False),
            "shard-2-even": ("shard-1-parent", [r for i, r in later
                                                if even(r) and i < second], True),
            "shard-1-parent": (None, records[:first], True),
        }
        return self._layout

    def describe_stream(self, **kw: Any) -> dict[str, Any]:
        layout = self.layout()
        ids = list(layout)
        start = ids.index(kw["ExclusiveStartShardId"]) + 1 if "ExclusiveStartShardId" in kw else 0
        shards = []
        for sid in ids[start:start + 2]:
            parent, recs, closed = layout[sid]
            seqs = [r["dynamodb"]["SequenceNumber"] for r in recs] or ["0"]
            rng = {"StartingSequenceNumber": seqs[0]}
            if closed:
                rng["EndingSequenceNumber"] = seqs[-1]
            shards.append({"ShardId": sid, "SequenceNumberRange": rng,
                           **({"ParentShardId": parent} if parent else {})})
        desc: dict[str, Any] = {"Shards": shards, "StreamArn": self.arn}
        if start + 2 < len(ids):
            desc["LastEvaluatedShardId"] = ids[start + 1]
        return {"StreamDescription": desc}

    def get_shard_iterator(self, **kw: Any) -> dict[str, Any]:
        sid = kw["ShardId"]
        recs = self.layout()[sid][1]
        kind = kw["ShardIteratorType"]
        if kind == "AFTER_SEQUENCE_NUMBER":
            after = int(kw["SequenceNumber"])
            index = next((i for i, r in enumerate(recs)
                          if int(r["dynamodb"]["SequenceNumber"]) > after), len(recs))
        elif kind == "LATEST":
            index = len(recs)
        else:
            index = 0
        return {"ShardIterator": f"{sid}|{index}"}

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        if self.rng.random() < self.expire:
            self.expired += 1
            raise expired()
        sid, index_text = ShardIterator.split("|")
        index = int(index_text)
        _, recs, closed = self.layout()[sid]
        page = recs[index:index + Limit]
        for r in page:
            self.served.append((sid, r["dynamodb"]["Keys"]["pk"]["S"],
                                int(r["dynamodb"]["SequenceNumber"])))
        nxt = index + len(page)
        out: dict[str, Any] = {"Records": page}
        if not (closed and nxt >= len(recs)):
            out["NextShardIterator"] = f"{sid}|{nxt}"
        return out


class Crash(BaseException):
    """The process dies (not an error the runner handles)."""


def run(streams: Any, arn: str, table: str, lake: Lake, *, crash_after: int | None = None,
        handed: list[str] | None = None) -> None:
    """One runner process; ``crash_after`` invocations kills it; ``handed`` logs each record
    (its item key) in the order the capture received it."""
    delivery = LocalDeliveryStream(lake, name="split", buffer_seconds=3600)
    capture = capture_processor(delivery, table)
    calls = 0

    def process(event: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        if crash_after is not None and calls > crash_after:
            raise Crash
        if handed is not None:
            handed.extend(f"{r['dynamodb']['Keys']['pk']['S']}@"
                          f"{r['dynamodb']['SequenceNumber']}" for r in event["Records"])
        return capture(event)

    runner = StreamRunner(streams, arn, process, CheckpointStore(lake, "split"),
                          RunnerSettings(batch_size=7, checkpoint_interval=0, poll_interval=0),
                          before_checkpoint=delivery.flush, sleep=no_sleep)
    runner.run(once=True)
    delivery.close()


def test_shard_split_with_expiring_iterators_and_a_crash_loses_and_reorders_nothing(
        moto_server: Any, lake: Lake) -> None:
    rng = random.Random(seed(3001))
    ddb, table, arn = make_table(moto_server, "split")
    ledger = Ledger(ddb, table, rng)
    ledger.write(240)
    streams = SplitStreams(moto_server.client("dynamodbstreams"), arn, rng, expire=0.2)
    handed: list[str] = []
    with pytest.raises(Crash):
        run(streams, arn, table, lake, crash_after=int(240 / 7 / 2), handed=handed)
    run(streams, arn, table, lake, handed=handed)

    # Per item, the capture first received its changes in sequence-number order.
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for entry in handed:
        if entry not in seen:
            seen.add(entry)
            pk, seq = entry.split("@")
            first_seen[pk].append(int(seq))
    assert all(seqs == sorted(seqs) for seqs in first_seen.values())
    # Every parent record was served before any of its children's.
    order = [sid for sid, _, _ in streams.served]
    last_parent = max(i for i, s in enumerate(order) if s == "shard-1-parent")
    assert last_parent < min(i for i, s in enumerate(order) if s != "shard-1-parent")
    assert max(i for i, s in enumerate(order) if s == "shard-2-even") < min(
        i for i, s in enumerate(order) if s == "shard-3-grandchild")
    assert {s for s, _, _ in streams.served} == set(streams.layout())

    v = verify(lake, ledger)
    record("shard split (parent, 2 children, grandchild) with expiring iterators and a crash",
           # faults: expired iterators, the two splits, the crash
           runs=2, faults=streams.expired + 2 + 1, written=v.written, lost=v.lost,
           duplicates_delivered=v.duplicates_delivered,
           duplicates_after_dedup=v.duplicates_after_dedup)
    assert streams.expired > 0
    assert v.lost == 0
    assert v.out_of_order == 0
    assert v.events == v.written
    assert v.duplicates_after_dedup == 0
    assert v.disagreeing_copies == 0


class Expiring:
    """moto's real stream, where each GetRecords call may find its iterator expired, before
    or after the service answered (the answer is then lost)."""

    def __init__(self, real: Any, rng: random.Random, p: float) -> None:
        self.real = real
        self.rng = rng
        self.p = p
        self.expired = 0

    def describe_stream(self, **kw: Any) -> Any:
        return self.real.describe_stream(**kw)

    def get_shard_iterator(self, **kw: Any) -> Any:
        return self.real.get_shard_iterator(**kw)

    def get_records(self, **kw: Any) -> Any:
        before = self.rng.random() < self.p
        if not before:
            answer = self.real.get_records(**kw)
        if before or self.rng.random() < self.p / 2:
            self.expired += 1
            raise expired()
        return answer


def test_expired_iterators_at_random_lose_nothing(moto_server: Any, lake: Lake) -> None:
    rng = random.Random(seed(3002))
    ddb, table, arn = make_table(moto_server, "expiry")
    ledger = Ledger(ddb, table, rng)
    streams = Expiring(moto_server.client("dynamodbstreams"), rng, p=0.3)
    runs = 0
    for _ in range(3):
        ledger.write(100)
        run(streams, arn, table, lake)
        runs += 1
    v = verify(lake, ledger)
    record("expired iterators at random GetRecords calls", runs=runs, faults=streams.expired,
           written=v.written, lost=v.lost, duplicates_delivered=v.duplicates_delivered,
           duplicates_after_dedup=v.duplicates_after_dedup)
    assert streams.expired > 0
    assert v.lost == 0
    assert v.out_of_order == 0
    assert v.events == v.written
    assert v.duplicates_delivered == 0  # re-acquired after the last record read: no re-reads
    assert v.duplicates_after_dedup == 0
