"""Redrive logic against in-memory SQS and Streams fakes that behave like the services:
message parsing (direct and SNS), range reading (pages, expiry, trimming), delete-after-
delivery, and the trimmed-range error."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ddbtrail.capture.batch import CaptureSettings
from ddbtrail.capture.redrive import (
    FailedRange,
    RedriveSettings,
    on_failure_sender,
    parse_on_failure,
    read_range,
    redrive,
)
from ddbtrail.core.backoff import RetryPolicy
from ddbtrail.core.exceptions import ConfigError, DataTrimmed, DeliveryFailed, MalformedEvent
from ddbtrail.delivery.firehose import FirehoseSink
from tests.stubs import StubFirehose

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
SHARD = "shardId-00000001700000000000-0000abcd"
BASE = 4_000_000_000_000_000_000_00  # 21 digits, like real sequence numbers


def seq(i: int) -> str:
    return str(BASE + i * 100)  # sequence numbers are increasing, not contiguous


def record(i: int) -> dict[str, Any]:
    """A boto3 GetRecords record of item Id=i (the Lambda shape is derived from it)."""
    keys = {"Id": {"N": str(i)}}
    return {
        "eventID": f"ev{i:04d}", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"ApproximateCreationDateTime": datetime.fromtimestamp(1_767_225_600 + i,
                                                                             UTC),
                     "Keys": keys, "NewImage": {**keys, "v": {"S": f"value {i}"}},
                     "SequenceNumber": seq(i), "SizeBytes": 30,
                     "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def error(code: str, op: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, op)


@dataclass
class FakeStreams:
    """One shard of ``n`` records. Records below ``trimmed_before`` (an index) are trimmed:
    AT_SEQUENCE_NUMBER there raises TrimmedDataAccessException, as the service does."""

    n: int = 50
    page: int = 7
    trimmed_before: int = 0
    expire_every: int = 0  # every Nth GetRecords call answers ExpiredIteratorException
    closed: bool = False
    listed: bool = True
    calls: int = 0
    iterators: dict[str, int] = field(default_factory=dict)

    def describe_stream(self, **kw: Any) -> dict[str, Any]:
        rng: dict[str, str] = {"StartingSequenceNumber": seq(0)}
        if self.closed:
            rng["EndingSequenceNumber"] = seq(self.n - 1)
        shards = [{"ShardId": SHARD, "SequenceNumberRange": rng}] if self.listed else []
        return {"StreamDescription": {"Shards": shards}}

    def _index(self, sequence_number: str) -> int:
        return (int(sequence_number) - BASE + 99) // 100

    def get_shard_iterator(self, *, StreamArn: str, ShardId: str, ShardIteratorType: str,
                           SequenceNumber: str | None = None) -> dict[str, str]:
        assert StreamArn == STREAM and ShardId == SHARD
        if ShardIteratorType == "TRIM_HORIZON":
            pos = self.trimmed_before
        else:
            assert SequenceNumber is not None
            pos = self._index(SequenceNumber) + (ShardIteratorType == "AFTER_SEQUENCE_NUMBER")
            if pos < self.trimmed_before:
                raise error("TrimmedDataAccessException", "GetShardIterator")
        it = f"it-{len(self.iterators)}"
        self.iterators[it] = pos
        return {"ShardIterator": it}

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.calls += 1
        if self.expire_every and self.calls % self.expire_every == 0:
            raise error("ExpiredIteratorException", "GetRecords")
        pos = self.iterators.pop(ShardIterator)
        end = min(self.n, pos + min(Limit, self.page))
        out: dict[str, Any] = {"Records": [record(i) for i in range(pos, end)]}
        if not (self.closed and end >= self.n):
            nxt = f"it-{len(self.iterators)}-{self.calls}"
            self.iterators[nxt] = end
            out["NextShardIterator"] = nxt
        return out


@dataclass
class FakeSqs:
    """A queue with visibility: received messages are hidden until deleted or released."""

    bodies: list[str] = field(default_factory=list)
    hidden: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)
    fail_deletes: bool = False

    def receive_message(self, **kw: Any) -> dict[str, Any]:
        visible = [i for i in range(len(self.bodies))
                   if i not in self.hidden and i not in self.deleted][:kw["MaxNumberOfMessages"]]
        self.hidden.update(visible)
        now_ms = str(int(time.time() * 1000) - 7_200_000)  # sent two hours ago
        return {"Messages": [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}",
                              "Body": self.bodies[i], "Attributes": {"SentTimestamp": now_ms}}
                             for i in visible]}

    def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:
        if self.fail_deletes:
            return {"Successful": [], "Failed": [{"Id": e["Id"], "Code": "X", "SenderFault": False}
                                                 for e in Entries]}
        for e in Entries:
            self.deleted.add(int(e["ReceiptHandle"][1:]))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility_batch(self, *, QueueUrl: str,
                                        Entries: list[dict[str, Any]]) -> Any:
        for e in Entries:
            assert e["VisibilityTimeout"] == 0
            self.hidden.discard(int(e["ReceiptHandle"][1:]))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    @property
    def left(self) -> list[int]:
        return [i for i in range(len(self.bodies)) if i not in self.deleted]


def on_failure(first: int, last: int, *, hours_ago: float = 1.0) -> dict[str, Any]:
    t0 = time.gmtime(time.time() - hours_ago * 3600)
    t1 = time.gmtime(time.time() - hours_ago * 3600 + 5)
    return {
        "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:f",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": "Unhandled"},
        "version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", t1),
        "DDBStreamBatchInfo": {
            "shardId": SHARD, "startSequenceNumber": seq(first), "endSequenceNumber": seq(last),
            "approximateArrivalOfFirstRecord": time.strftime("%Y-%m-%dT%H:%M:%SZ", t0),
            "approximateArrivalOfLastRecord": time.strftime("%Y-%m-%dT%H:%M:%SZ", t1),
            "batchSize": last - first + 1, "streamArn": STREAM},
    }


def rng_of(first: int, last: int, **kw: Any) -> FailedRange:
    return parse_on_failure(json.dumps(on_failure(first, last, **kw)))


def event_ids(firehose: StubFirehose) -> list[str]:
    return [json.loads(line)["event_id"] for line in firehose.rows()]


SETTINGS = CaptureSettings()


class FlushedSink(FirehoseSink):
    """The stub as a Firehose sink, with a chosen ``flush``."""

    def __init__(self, client: StubFirehose, flush: Callable[[], object] | None) -> None:
        super().__init__(client, "changes", retry=RetryPolicy(max_attempts=2, base_delay=0.001))
        self.on_flush = flush

    def flush(self) -> None:
        if self.on_flush is not None:
            self.on_flush()


def run(sqs: FakeSqs, streams: FakeStreams, firehose: StubFirehose,
        flush: Callable[[], object] | None = None, **kw: Any) -> Any:
    return redrive("https://sqs/q", sqs=sqs, streams=streams,
                   sink=FlushedSink(firehose, flush), capture=SETTINGS, wait_seconds=0, **kw)


# --------------------------------------------------------------------------- parsing


def test_parses_lambdas_sample_record(load_event: Any) -> None:
    r = parse_on_failure(json.dumps(load_event("powertools-on-failure-invocation-record.json")))
    assert (r.shard_id, r.start, r.end, r.batch_size) == (
        "shardId-00000001573689847184-864758bb", "800000000003126276362",
        "800000000003126276362", 1)
    assert r.table_name == "mytable" and r.condition == "RetryAttemptsExhausted"
    assert r.first_arrival == datetime(2019, 11, 14, 0, 13, 19, tzinfo=UTC)


def test_parses_the_same_record_inside_an_sns_envelope(load_event: Any) -> None:
    inner = load_event("powertools-on-failure-invocation-record.json")
    envelope = {"Type": "Notification", "MessageId": "x", "TopicArn": "arn:aws:sns:t",
                "Message": json.dumps(inner), "Timestamp": "2019-11-14T00:13:50.000Z"}
    assert parse_on_failure(json.dumps(envelope)) == parse_on_failure(json.dumps(inner))


@pytest.mark.parametrize(("body", "message"), [
    ("not json", "message m7: not JSON"),
    ('{"Records": []}', "message m7: not a DynamoDB Streams on-failure record"),
    ('{"KinesisBatchInfo": {}}', "Kinesis"),
    ('{"DDBStreamBatchInfo": {"shardId": "s", "streamArn": "a", "startSequenceNumber": "1"}}',
     "endSequenceNumber is missing"),
    ('{"DDBStreamBatchInfo": {"shardId": "s", "streamArn": "a", "startSequenceNumber": "9", '
     '"endSequenceNumber": "1"}}', "after endSequenceNumber"),
    ('{"DDBStreamBatchInfo": {"shardId": "s", "streamArn": "a", "startSequenceNumber": "1e5", '
     '"endSequenceNumber": "1"}}', "not a sequence number"),
])
def test_a_message_that_is_not_an_on_failure_record_is_named(body: str, message: str) -> None:
    with pytest.raises(MalformedEvent, match=message):
        parse_on_failure(body, message_id="m7")


def test_on_failure_sender_sends_only_lambdas_keys() -> None:
    sent: list[dict[str, Any]] = []

    class Client:
        def send_message(self, **kw: Any) -> None:
            sent.append({"sqs": kw["QueueUrl"], **json.loads(kw["MessageBody"])})

        def publish(self, **kw: Any) -> None:
            sent.append({"sns": kw["TopicArn"], **json.loads(kw["Message"])})

    rec = dict(on_failure(1, 2), error="local detail")
    on_failure_sender(Client(), "https://sqs/q")(rec)
    on_failure_sender(Client(), "arn:aws:sns:us-east-1:1:t")(rec)
    assert [s.get("sqs") or s.get("sns") for s in sent] == ["https://sqs/q",
                                                           "arn:aws:sns:us-east-1:1:t"]
    assert all("error" not in s and s["DDBStreamBatchInfo"] == rec["DDBStreamBatchInfo"]
               for s in sent)


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("expire_every", [0, 3])
def test_reads_exactly_the_range_across_pages_and_expired_iterators(expire_every: int) -> None:
    read = read_range(FakeStreams(expire_every=expire_every), rng_of(12, 31))
    assert read.complete and not read.trimmed
    assert [r["dynamodb"]["SequenceNumber"] for r in read.records] == [
        seq(i) for i in range(12, 32)]


def test_a_range_ending_at_a_closed_shards_end_is_complete() -> None:
    read = read_range(FakeStreams(n=20, closed=True), rng_of(15, 19))
    assert read.complete and len(read.records) == 5


def test_an_open_shard_that_never_reaches_the_end_is_incomplete_not_trimmed() -> None:
    read = read_range(FakeStreams(n=20), rng_of(15, 25))
    assert not read.complete and not read.trimmed and len(read.records) == 5


def test_trimmed_start_keeps_what_is_left_and_says_where_the_loss_ends() -> None:
    read = read_range(FakeStreams(trimmed_before=20), rng_of(10, 29))
    assert read.trimmed and not read.complete
    assert [r["eventID"] for r in read.records] == [f"ev{i:04d}" for i in range(20, 30)]
    assert read.first_retained is not None and read.first_retained["eventID"] == "ev0020"


def test_a_range_wholly_trimmed_holds_nothing() -> None:
    read = read_range(FakeStreams(trimmed_before=40), rng_of(10, 29))
    assert read.trimmed and read.records == []


def test_a_shard_no_longer_listed_is_trimmed() -> None:
    read = read_range(FakeStreams(listed=False), rng_of(1, 2))
    assert read.trimmed and "no longer in the stream" in read.reason


# --------------------------------------------------------------------------- redrive


def test_delivers_each_range_then_deletes_its_message() -> None:
    sqs = FakeSqs([json.dumps(on_failure(3, 9)), json.dumps(on_failure(40, 44))])
    firehose = StubFirehose()
    report = run(sqs, FakeStreams(), firehose)
    assert sorted(event_ids(firehose)) == [f"ev{i:04d}" for i in [*range(3, 10), *range(40, 45)]]
    assert sqs.left == [] and [o.status for o in report.outcomes] == ["redriven", "redriven"]
    m = report.metrics()
    assert (m["RedrivenRanges"], m["RedrivenRecords"], m["KeptMessages"]) == (2, 12, 0)


def test_undelivered_rows_keep_the_message_and_release_it() -> None:
    sqs = FakeSqs([json.dumps(on_failure(3, 9))])
    firehose = StubFirehose(fail_entry=lambda call, i, data: True)
    report = run(sqs, FakeStreams(), firehose)
    assert report.outcomes[0].status == "failed"
    assert isinstance(report.first_error(), DeliveryFailed)
    assert sqs.left == [0] and sqs.hidden == set()  # kept, and visible again


def test_a_failing_flush_deletes_nothing() -> None:
    sqs = FakeSqs([json.dumps(on_failure(3, 9))])

    def flush() -> None:
        raise DeliveryFailed("lake unavailable")

    with pytest.raises(DeliveryFailed, match="lake unavailable"):
        run(sqs, FakeStreams(), StubFirehose(), flush=flush)
    assert sqs.left == [0] and sqs.hidden == set()


def test_flush_comes_before_delete() -> None:
    sqs = FakeSqs([json.dumps(on_failure(3, 9))])
    seen: list[int] = []
    run(sqs, FakeStreams(), StubFirehose(), flush=lambda: seen.append(len(sqs.deleted)))
    assert seen == [0] and sqs.left == []


def test_a_trimmed_range_delivers_what_is_left_keeps_its_message_and_says_why() -> None:
    sqs = FakeSqs([json.dumps(on_failure(10, 29, hours_ago=25))])
    firehose = StubFirehose()
    report = run(sqs, FakeStreams(trimmed_before=20), firehose)
    assert sorted(event_ids(firehose)) == [f"ev{i:04d}" for i in range(20, 30)]
    assert sqs.left == [0]
    err = report.first_error()
    assert isinstance(err, DataTrimmed)
    text = str(err)
    assert f"shard {SHARD} sequence numbers {seq(10)}..{seq(29)}" in text
    assert "of table orders" in text and "past the stream's 24 h retention" in text
    assert "until 2026-01-01T00:00:20Z" in text and f"before sequence number {seq(20)}" in text
    assert "ddbtrail backfill --table orders" in text
    assert report.metrics()["TrimmedRanges"] == 1


def test_discard_trimmed_deletes_the_message_after_delivering_what_is_left() -> None:
    sqs = FakeSqs([json.dumps(on_failure(10, 29))])
    report = run(sqs, FakeStreams(trimmed_before=40), StubFirehose(), discard_trimmed=True)
    assert sqs.left == [] and report.outcomes[0].status == "discarded"
    assert "the 20 change(s) made from" in str(report.outcomes[0].error)


def test_dry_run_counts_records_and_changes_nothing() -> None:
    sqs = FakeSqs([json.dumps(on_failure(3, 9)), "garbage",
                   json.dumps(on_failure(45, 60))])
    firehose = StubFirehose()
    report = run(sqs, FakeStreams(), firehose, dry_run=True)
    assert [(o.status, o.records) for o in report.outcomes] == [
        ("listed", 7), ("unreadable", 0), ("incomplete", 5)]
    assert "message m1: not JSON" in str(report.outcomes[1].error)
    assert firehose.calls == 0 and sqs.left == [0, 1, 2] and sqs.hidden == set()


def test_max_messages_and_a_failed_delete_keep_the_rest() -> None:
    sqs = FakeSqs([json.dumps(on_failure(i, i + 1)) for i in range(0, 24, 2)], fail_deletes=True)
    report = run(sqs, FakeStreams(), StubFirehose(), max_messages=11)
    assert len(report.outcomes) == 11
    assert all(not o.deleted for o in report.outcomes)  # redriven, but the delete failed
    assert len(sqs.left) == 12 and sqs.hidden == set()


def test_settings_from_env() -> None:
    s = RedriveSettings.from_env({"QUEUE_URL": "https://q", "VISIBILITY_TIMEOUT": "360",
                                  "DISCARD_TRIMMED": "true"})
    assert (s.queue_url, s.visibility_timeout, s.discard_trimmed, s.max_messages) == (
        "https://q", 360, True, None)
    with pytest.raises(ConfigError, match="QUEUE_URL"):
        RedriveSettings.from_env({})
    with pytest.raises(ConfigError, match="VISIBILITY_TIMEOUT"):
        RedriveSettings.from_env({"QUEUE_URL": "q", "VISIBILITY_TIMEOUT": "99999"})
