"""The stream runner: lineage, Lambda event shape, checkpoints, bisect, partial responses,
expired iterators, trimmed data, and the flush-before-checkpoint invariant."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from ddbtrail.capture.runner import (
    CheckpointStore,
    RunnerSettings,
    Shard,
    StreamRunner,
    lineage_order,
    ready_shards,
)
from ddbtrail.capture.runner.pipeline import capture_processor
from ddbtrail.core.exceptions import DeliveryFailed, LakeError
from ddbtrail.core.flatten import flatten_record
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.files import Lake

pytestmark = pytest.mark.integration

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"


def client_error(code: str, op: str = "GetRecords") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, op)


def stream_record(seq: int, *, key: int | None = None) -> dict[str, Any]:
    """A record as boto3's GetRecords returns it (datetime, bytes)."""
    k = {"Id": {"N": str(seq if key is None else key)}}
    return {
        "eventID": f"ev{seq}", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
            "Keys": k, "NewImage": {**k, "b": {"B": b"\x00\xff"}},
            "SequenceNumber": str(seq), "SizeBytes": 20, "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


class FakeStreams:
    """DynamoDB Streams with chosen shards: ``{shard_id: (parent, [seqs], closed)}``.

    Iterators are ``shard|index`` strings; a closed shard's last page has no
    NextShardIterator. DescribeStream pages two shards at a time.
    """

    def __init__(self, shards: dict[str, tuple[str | None, list[int], bool]]) -> None:
        self.shards = shards
        self.calls: list[tuple[str, Any]] = []
        self.fail_iterator: Callable[[dict[str, Any]], ClientError | None] = lambda kw: None

    def describe_stream(self, **kw: Any) -> dict[str, Any]:
        ids = list(self.shards)
        start = ids.index(kw["ExclusiveStartShardId"]) + 1 if "ExclusiveStartShardId" in kw else 0
        page = ids[start:start + 2]
        out = []
        for sid in page:
            parent, seqs, closed = self.shards[sid]
            rng: dict[str, str] = {"StartingSequenceNumber": str(seqs[0] if seqs else 0)}
            if closed:
                rng["EndingSequenceNumber"] = str(seqs[-1] if seqs else 0)
            shard: dict[str, Any] = {"ShardId": sid, "SequenceNumberRange": rng}
            if parent:
                shard["ParentShardId"] = parent
            out.append(shard)
        desc: dict[str, Any] = {"Shards": out}
        if start + 2 < len(ids):
            desc["LastEvaluatedShardId"] = page[-1]
        return {"StreamDescription": desc}

    def get_shard_iterator(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("iterator", kw))
        err = self.fail_iterator(kw)
        if err is not None:
            raise err
        sid = kw["ShardId"]
        seqs = self.shards[sid][1]
        if kw["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER":
            after = int(kw["SequenceNumber"])
            index = next((i for i, s in enumerate(seqs) if s > after), len(seqs))
        elif kw["ShardIteratorType"] == "LATEST":
            index = len(seqs)
        else:
            index = 0
        return {"ShardIterator": f"{sid}|{index}"}

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.calls.append(("records", ShardIterator))
        sid, index_text = ShardIterator.split("|")
        index = int(index_text)
        _, seqs, closed = self.shards[sid]
        page = seqs[index:index + Limit]
        nxt = index + len(page)
        out: dict[str, Any] = {"Records": [stream_record(s) for s in page]}
        if not (closed and nxt >= len(seqs)):
            out["NextShardIterator"] = f"{sid}|{nxt}"
        return out


class Recorder:
    """A processor that records every event and answers as told."""

    def __init__(self, answer: Callable[[list[str]], Any] | None = None) -> None:
        self.events: list[list[str]] = []
        self.answer = answer or (lambda seqs: {"batchItemFailures": []})

    def __call__(self, event: dict[str, Any]) -> Any:
        seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.events.append(seqs)
        return self.answer(seqs)

    @property
    def seen(self) -> list[int]:
        return [int(s) for e in self.events for s in e]


def no_sleep(_: float) -> None:
    return None


def runner(client: Any, processor: Any, lake: Lake, arn: str = ARN,
           **settings: Any) -> StreamRunner:
    settings.setdefault("poll_interval", 0)
    # These tests state Lambda's own mapping defaults (ddbtrail deploys other ones).
    settings.setdefault("batch_size", 100)
    settings.setdefault("max_retry_attempts", -1)
    settings.setdefault("bisect_on_error", False)
    return StreamRunner(client, arn, processor, CheckpointStore(lake, "test"),
                        RunnerSettings(**settings), sleep=no_sleep)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.open(str(tmp_path / "lake"))


def checkpoint(lake: Lake, shard: str, name: str = "test") -> dict[str, Any]:
    raw = lake.read_bytes(lake.state_path("checkpoints", name, f"{shard}.json"))
    assert raw is not None, f"no checkpoint for {shard}"
    return dict(json.loads(raw))


# --------------------------------------------------------------------------- lineage


def test_lineage_order_puts_parents_before_children() -> None:
    shards = [
        Shard("child-b", "parent", "300"), Shard("grandchild", "child-a", "500"),
        Shard("parent", None, "100", "200"), Shard("child-a", "parent", "250", "400"),
        Shard("orphan", "trimmed-away", "50"),
    ]
    order = [s.shard_id for s in lineage_order(shards)]
    assert order.index("parent") < order.index("child-a") < order.index("grandchild")
    assert order.index("parent") < order.index("child-b")
    assert order[0] == "orphan"  # its parent is gone, and it starts lowest
    ready = [s.shard_id for s in ready_shards(lineage_order(shards), done=set())]
    assert ready == ["orphan", "parent"]
    ready = [s.shard_id for s in ready_shards(lineage_order(shards), done={"parent"})]
    assert ready == ["orphan", "child-a", "child-b"]


def test_runner_reads_parents_to_their_end_before_children(lake: Lake) -> None:
    fake = FakeStreams({
        # Listed children first: the runner must not trust DescribeStream's order.
        "c1": ("p", [30, 31, 32], True),
        "c2": ("p", [40, 41], False),
        "g": ("c1", [50, 51], False),
        "p": (None, [10, 11, 12, 13, 14], True),
        "o": ("gone", [5, 6], False),
    })
    rec = Recorder()
    stats = runner(fake, rec, lake, batch_size=2).run(once=True)
    seen = rec.seen
    assert sorted(seen) == [5, 6, 10, 11, 12, 13, 14, 30, 31, 32, 40, 41, 50, 51]
    assert max(seen.index(s) for s in (10, 11, 12, 13, 14)) < min(
        seen.index(s) for s in (30, 31, 32, 40, 41))
    assert max(seen.index(s) for s in (30, 31, 32)) < min(seen.index(s) for s in (50, 51))
    assert all(len(e) <= 2 for e in rec.events)
    # Closed shards read to their end are done; open ones keep their position.
    assert checkpoint(lake, "p") == {**checkpoint(lake, "p"), "done": True,
                                     "sequence_number": "14"}
    assert checkpoint(lake, "c1")["done"] is True
    assert checkpoint(lake, "c2")["done"] is False
    assert checkpoint(lake, "c2")["sequence_number"] == "41"
    assert stats.shards_done == 2
    # A second run reads nothing again, and does not even ask for done shards.
    fake.calls.clear()
    rec2 = Recorder()
    runner(fake, rec2, lake, batch_size=2).run(once=True)
    assert rec2.events == []
    assert not any(kw["ShardId"] in ("p", "c1") for kind, kw in fake.calls if kind == "iterator")


# --------------------------------------------------------------------------- moto


def make_table(moto_server: Any, name: str) -> tuple[Any, str]:
    ddb = moto_server.client("dynamodb")
    desc = ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return ddb, desc["TableDescription"]["LatestStreamArn"]


def put_items(ddb: Any, table: str, start: int, count: int) -> None:
    for i in range(start, start + count):
        ddb.put_item(TableName=table, Item={
            "pk": {"S": f"p{i}"}, "sk": {"N": str(i)}, "bin": {"B": bytes([i % 256, 0, 255])},
            "bs": {"BS": [b"\x01", bytes([i % 256])]},
            "m": {"M": {"inner": {"B": b"\xfe"}, "l": {"L": [{"B": b"\x00"}]}}},
        })


def test_moto_events_have_lambdas_shape_and_resume_from_checkpoints(
        moto_server: Any, lake: Lake) -> None:
    table = f"runner-{uuid.uuid4().hex[:8]}"
    ddb, arn = make_table(moto_server, table)
    streams = moto_server.client("dynamodbstreams")
    put_items(ddb, table, 0, 7)
    rec = Recorder()
    events: list[dict[str, Any]] = []

    def keep(event: dict[str, Any]) -> Any:
        events.append(json.loads(json.dumps(event)))  # must be plain JSON, as Lambda's
        return rec(event)

    runner(streams, keep, lake, arn, batch_size=3).run(once=True)
    assert [len(e) for e in rec.events] == [3, 3, 1]
    first = events[0]["Records"][0]
    assert first["eventSourceARN"] == arn
    ddb_part = first["dynamodb"]
    assert isinstance(ddb_part["ApproximateCreationDateTime"], int | float)
    assert ddb_part["NewImage"]["bin"] == {"B": base64.b64encode(b"\x00\x00\xff").decode()}
    assert ddb_part["NewImage"]["bs"]["BS"] == [base64.b64encode(b"\x01").decode(),
                                                base64.b64encode(b"\x00").decode()]
    assert ddb_part["NewImage"]["m"]["M"]["l"]["L"][0] == {"B": "AA=="}
    row = flatten_record(first, ingested_at_ms=0)
    assert row["table_name"] == table
    assert json.loads(row["new_image"])["bin"] == base64.b64encode(b"\x00\x00\xff").decode()
    seqs = [int(s) for e in rec.events for s in e]
    assert seqs == sorted(seqs)

    # New changes after a restart: only they are read.
    put_items(ddb, table, 7, 4)
    rec2 = Recorder()
    runner(streams, rec2, lake, arn, batch_size=100).run(once=True)
    assert len(rec2.seen) == 4
    assert min(rec2.seen) > max(seqs)


def test_crash_mid_run_resumes_after_the_last_checkpoint(moto_server: Any, lake: Lake) -> None:
    table = f"crash-{uuid.uuid4().hex[:8]}"
    ddb, arn = make_table(moto_server, table)
    streams = moto_server.client("dynamodbstreams")
    put_items(ddb, table, 0, 10)

    class Crash(BaseException):
        pass

    def crash_on_third(seqs: list[str]) -> Any:
        if len(rec.events) == 3:
            raise Crash
        return None

    rec = Recorder(crash_on_third)
    with pytest.raises(Crash):
        runner(streams, rec, lake, arn, batch_size=2, checkpoint_interval=0).run(once=True)
    done_before = [int(s) for e in rec.events[:2] for s in e]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    assert int(checkpoint(lake, shard)["sequence_number"]) == max(done_before)

    rec2 = Recorder()
    runner(streams, rec2, lake, arn, batch_size=2).run(once=True)
    all_seqs = sorted(set(done_before) | set(rec2.seen))
    assert len(all_seqs) == 10
    assert min(rec2.seen) == max(done_before) + 1  # resumes right after the checkpoint


def test_expired_iterator_is_reacquired_after_the_last_record_read(
        moto_server: Any, lake: Lake) -> None:
    table = f"expired-{uuid.uuid4().hex[:8]}"
    ddb, arn = make_table(moto_server, table)
    real = moto_server.client("dynamodbstreams")
    put_items(ddb, table, 0, 6)

    class Expiring:
        """Real moto streams whose second GetRecords call finds its iterator expired."""

        def __init__(self) -> None:
            self.get_calls = 0
            self.acquired: list[dict[str, Any]] = []

        def describe_stream(self, **kw: Any) -> Any:
            return real.describe_stream(**kw)

        def get_shard_iterator(self, **kw: Any) -> Any:
            self.acquired.append(kw)
            return real.get_shard_iterator(**kw)

        def get_records(self, **kw: Any) -> Any:
            self.get_calls += 1
            if self.get_calls == 2:
                raise client_error("ExpiredIteratorException")
            return real.get_records(**kw)

    client = Expiring()
    rec = Recorder()
    stats = runner(client, rec, lake, arn, batch_size=2).run(once=True)
    assert stats.expired_iterators == 1
    assert len(rec.seen) == 6
    assert len(set(rec.seen)) == 6  # nothing read twice, nothing skipped
    assert client.acquired[1]["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert int(client.acquired[1]["SequenceNumber"]) == rec.seen[1]


# --------------------------------------------------------------------------- trimmed


def test_trimmed_checkpoint_warns_naming_the_shard_and_continues_from_trim_horizon(
        lake: Lake) -> None:
    fake = FakeStreams({"s1": (None, [500, 501, 502], False)})
    store = CheckpointStore(lake, "test")
    from ddbtrail.capture.runner import Checkpoint

    store.save(Checkpoint(ARN, "s1", "100"))  # older than anything left in the shard
    fake.fail_iterator = lambda kw: (client_error("TrimmedDataAccessException",
                                                  "GetShardIterator")
                                     if kw.get("SequenceNumber") == "100" else None)
    rec = Recorder()
    stats = runner(fake, rec, lake, batch_size=10).run(once=True)
    assert rec.seen == [500, 501, 502]
    assert stats.trimmed == ["s1"]
    assert any("shard s1" in w and "trimmed" in w for w in stats.warnings)


# --------------------------------------------------------------------------- failures


def test_partial_batch_response_checkpoints_before_the_lowest_failure(lake: Lake) -> None:
    fake = FakeStreams({"s1": (None, list(range(1, 9)), False)})
    positions: list[str | None] = []

    def answer(seqs: list[str]) -> Any:
        positions.append(r._states["s1"].position)
        if len(positions) == 1:
            # Two failures reported; the lowest (4) decides.
            return {"batchItemFailures": [{"itemIdentifier": "6"}, {"itemIdentifier": "4"}]}
        return {"batchItemFailures": []}

    rec = Recorder(answer)
    r = runner(fake, rec, lake, batch_size=8)
    r.run(once=True)
    assert positions == [None, "3"]  # the position moved to just before the failure
    assert rec.events[0] == [str(i) for i in range(1, 9)]
    assert rec.events[1] == [str(i) for i in range(4, 9)]  # retried from the lowest failure
    assert checkpoint(lake, "s1")["sequence_number"] == "8"


@pytest.mark.parametrize("bad", [
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": "999"}]},
    {"batchItemFailures": [{"wrongKey": "3"}]},
    "not a response",
])
def test_invalid_partial_response_fails_the_whole_batch(lake: Lake, bad: Any) -> None:
    fake = FakeStreams({"s1": (None, [1, 2, 3], False)})
    answers = [bad]
    rec = Recorder(lambda seqs: answers.pop() if answers else None)
    r = runner(fake, rec, lake, batch_size=3)
    r.run(once=True)
    assert rec.events == [["1", "2", "3"], ["1", "2", "3"]]
    assert r.stats.retries == 1


def test_bisect_isolates_a_poison_record_and_sends_it_to_the_failure_file(lake: Lake) -> None:
    fake = FakeStreams({"s1": (None, list(range(1, 9)), False)})

    def answer(seqs: list[str]) -> Any:
        if "6" in seqs:
            raise ValueError("poison record 6")
        return None

    rec = Recorder(answer)
    stats = runner(fake, rec, lake, batch_size=8, bisect_on_error=True,
                   max_retry_attempts=2).run(once=True)
    ok = [s for e in rec.events if "6" not in e for s in e]
    assert sorted(int(s) for s in ok) == [1, 2, 3, 4, 5, 7, 8]
    assert len(ok) == 7  # every good record processed exactly once
    assert [e for e in rec.events if "6" in e][-3:] == [["6"]] * 3  # 1 try + 2 retries
    assert stats.bisects == 3  # 8 -> 4 -> 2 -> 1
    assert stats.failed_records == 1
    [path] = stats.failure_files
    info = json.loads(lake.read_bytes(path) or b"")
    batch = info["DDBStreamBatchInfo"]
    assert batch["startSequenceNumber"] == batch["endSequenceNumber"] == "6"
    assert batch["batchSize"] == 1
    assert batch["streamArn"] == ARN
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert "poison record 6" in info["error"]
    assert checkpoint(lake, "s1")["sequence_number"] == "8"


def test_without_bisect_the_whole_batch_is_retried_then_kept(lake: Lake) -> None:
    fake = FakeStreams({"s1": (None, [1, 2, 3], False)})
    rec = Recorder(lambda seqs: (_ for _ in ()).throw(RuntimeError("down")))
    stats = runner(fake, rec, lake, batch_size=3, max_retry_attempts=1).run(once=True)
    assert rec.events == [["1", "2", "3"]] * 2
    assert stats.failed_records == 3


# --------------------------------------------------------------------------- durability


class FlakyLake(Lake):
    def set_broken(self, broken: bool) -> None:
        object.__setattr__(self, "broken", broken)

    def write_atomic(self, path: str, data: bytes) -> None:
        if getattr(self, "broken", False) and "/table_name=" in path:
            raise LakeError(f"lake {self.uri}: cannot write {path} (disk full)")
        super().write_atomic(path, data)


def lake_event_ids(lake: Lake) -> list[str]:
    return [e for f in lake.data_files() for e in pq.read_table(f.path).column(
        "event_id").to_pylist()]


def test_delivery_is_flushed_before_any_checkpoint(lake: Lake) -> None:
    fake = FakeStreams({"s1": (None, list(range(1, 6)), False)})
    order: list[str] = []
    delivery = LocalDeliveryStream(lake, name="d", buffer_seconds=3600)
    store = CheckpointStore(lake, "test")
    original_save = store.save

    def flush() -> int:
        order.append(f"flush({delivery.pending_rows} pending)")
        return delivery.flush()

    def save(cp: Any) -> None:
        order.append(f"save({cp.sequence_number}, {delivery.pending_rows} pending)")
        original_save(cp)

    store.save = save  # type: ignore[method-assign]
    r = StreamRunner(fake, ARN, capture_processor(delivery, "t"), store,
                     RunnerSettings(batch_size=2, checkpoint_interval=0, poll_interval=0),
                     before_checkpoint=flush, sleep=no_sleep)
    r.run(once=True)
    assert order[0] == "flush(2 pending)"
    assert order[1] == "save(2, 0 pending)"
    assert all(not o.startswith("save") or o.endswith(" 0 pending)") for o in order)
    assert sorted(lake_event_ids(lake)) == [f"ev{i}" for i in range(1, 6)]


def test_failed_flush_writes_no_checkpoint_and_a_restart_loses_nothing(tmp_path: Path) -> None:
    base = Lake.open(str(tmp_path / "lake"))
    lake = FlakyLake(base.uri, base.fs, base.root)
    lake.set_broken(True)
    fake = FakeStreams({"s1": (None, list(range(1, 8)), False)})

    def run_once() -> None:
        delivery = LocalDeliveryStream(lake, name="d", buffer_seconds=3600)
        r = StreamRunner(fake, ARN, capture_processor(delivery, "t"), CheckpointStore(lake, "c"),
                         RunnerSettings(batch_size=3, poll_interval=0),
                         before_checkpoint=delivery.flush, sleep=no_sleep)
        r.run(once=True)

    with pytest.raises(DeliveryFailed, match="stay buffered"):
        run_once()
    assert lake.read_bytes(lake.state_path("checkpoints", "c", "s1.json")) is None
    assert lake.data_files() == []
    # The process dies with rows in memory; the restart reads them again from the stream.
    lake.set_broken(False)
    run_once()
    assert sorted(lake_event_ids(lake)) == sorted(f"ev{i}" for i in range(1, 8))
    assert checkpoint(lake, "s1", "c")["sequence_number"] == "7"


def test_checkpoint_of_another_stream_is_ignored(lake: Lake) -> None:
    from ddbtrail.capture.runner import Checkpoint

    store = CheckpointStore(lake, "test")
    store.save(Checkpoint("arn:other", "s1", "2"))
    fake = FakeStreams({"s1": (None, [1, 2, 3], False)})
    rec = Recorder()
    runner(fake, rec, lake, batch_size=10).run(once=True)
    assert rec.seen == [1, 2, 3]


def test_corrupt_checkpoint_is_one_clear_error(lake: Lake) -> None:
    lake.write_atomic(lake.state_path("checkpoints", "test", "s1.json"), b"{not json")
    fake = FakeStreams({"s1": (None, [1], False)})
    with pytest.raises(LakeError, match=r"checkpoint .*s1\.json is not valid"):
        runner(fake, Recorder(), lake).run(once=True)


# --------------------------------------------------------------------------- JSON client


def test_json_client_builds_the_same_lambda_events_as_boto3(moto_server: Any, lake: Lake) -> None:
    from ddbtrail.capture.runner.jsonclient import JsonStreamsClient

    table = f"json-{uuid.uuid4().hex[:8]}"
    ddb, arn = make_table(moto_server, table)
    put_items(ddb, table, 0, 5)
    ddb.delete_item(TableName=table, Key={"pk": {"S": "p1"}, "sk": {"N": "1"}})
    boto_client = moto_server.client("dynamodbstreams")
    json_client = JsonStreamsClient.like(boto_client)
    by_client: list[list[dict[str, Any]]] = []
    for i, client in enumerate((boto_client, json_client)):
        records: list[dict[str, Any]] = []
        store_lake = Lake.open(f"{lake.uri}-{i}")
        runner(client, lambda e, out=records: out.extend(e["Records"]), store_lake, arn,
               batch_size=4).run(once=True)
        by_client.append(records)
    from_boto, from_json = by_client
    assert len(from_boto) == len(from_json) == 6
    for a, b in zip(from_boto, from_json, strict=True):
        ta = a["dynamodb"].pop("ApproximateCreationDateTime")
        tb = b["dynamodb"].pop("ApproximateCreationDateTime")
        assert abs(ta - tb) < 0.001
        assert a == b


def test_json_client_raises_service_error_codes(moto_server: Any) -> None:
    from ddbtrail.capture.runner import describe_shards
    from ddbtrail.capture.runner.jsonclient import JsonStreamsClient
    from ddbtrail.core.exceptions import StreamNotEnabled

    client = JsonStreamsClient.like(moto_server.client("dynamodbstreams"))
    missing = "arn:aws:dynamodb:us-east-1:123456789012:table/nope-x/stream/2024-01-01T00:00:00"
    with pytest.raises(ClientError) as exc:
        client.describe_stream(StreamArn=missing)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(StreamNotEnabled, match="does not exist"):
        describe_shards(client, missing)




def test_latest_applies_only_to_shards_open_at_start(lake: Lake) -> None:
    """As in Lambda, LATEST is where reading starts on the shards open when the run began;
    a child shard that appears later is read from TRIM_HORIZON, so nothing is skipped."""
    fake = FakeStreams({"parent": (None, [1, 2], False)})
    r = runner(fake, Recorder(), lake, starting_position="LATEST")
    r._refresh_shards()
    fake.shards = {"parent": (None, [1, 2, 3], True), "child": ("parent", [4, 5], False)}
    r._refresh_shards()  # as a long run does periodically
    for sid in ("parent", "child"):
        r._acquire(r._states[sid], after=None)
    kinds = [(kw["ShardId"], kw["ShardIteratorType"]) for op, kw in fake.calls if op == "iterator"]
    assert kinds == [("parent", "LATEST"), ("child", "TRIM_HORIZON")]
