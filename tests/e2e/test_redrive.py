"""Redrive end to end on moto: forced failures -> real on-failure messages in SQS (direct and
through SNS) -> ``ddbtrail redrive`` -> the lake holds every change; a trimmed range stays."""

from __future__ import annotations

import importlib.util
import itertools
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ddbtrail.capture.redrive import on_failure_sender
from ddbtrail.capture.runner import CheckpointStore, RunnerSettings, StreamRunner
from ddbtrail.capture.runner.pipeline import capture_processor, checkpoint_name
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.files import Lake
from tests.cli import exit_code
from tests.e2e.jobs_workload import create_table

pytestmark = pytest.mark.e2e

EVENTS = Path(__file__).resolve().parents[1] / "events"
POISON = {"k07", "k33"}  # their INSERTs fail every attempt: batches 0-9 and 30-39 fail


def stream_records(streams: Any, arn: str) -> list[dict[str, Any]]:
    """Every record of the (single-shard, moto) stream, in order: the ground truth."""
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out: list[dict[str, Any]] = []
    while True:
        page = streams.get_records(ShardIterator=it, Limit=1000)
        if not page["Records"]:
            return out
        out.extend(page["Records"])
        it = page["NextShardIterator"]


def lake_event_ids(lake: Lake, table: str, paths: set[str] | None = None) -> list[str]:
    ids: list[str] = []
    for f in lake.data_files(table):
        if paths is None or f.path in paths:
            ids.extend(pq.read_table(f.path, columns=["event_id"]).column(0).to_pylist())
    return ids


def queue_bodies(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message body now in the queue (made visible again afterwards)."""
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                               WaitTimeSeconds=1).get("Messages", [])
    if msgs:
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(msgs)])
    return [json.loads(m["Body"]) for m in msgs]


def trimmed_message(stream_arn: str) -> dict[str, Any]:
    """Lambda's real on-failure record (tests/events) for a batch 26 hours old.

    moto keeps stream records in memory and never trims them. What AWS shows for such a
    batch is simulated faithfully instead: its shard closed long ago and is no longer
    listed by DescribeStream (shards leave the stream 24 hours after they close), so no
    GetShardIterator can reach it.
    """
    record = json.loads((EVENTS / "powertools-on-failure-invocation-record.json").read_text())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 26 * 3600))
    last = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 26 * 3600 + 7))
    record["timestamp"] = last
    record["DDBStreamBatchInfo"].update(
        shardId="shardId-00000001540000000000-0badf00d", streamArn=stream_arn,
        startSequenceNumber="1000000000000000000001", endSequenceNumber="1000000000000000000003",
        approximateArrivalOfFirstRecord=stamp, approximateArrivalOfLastRecord=last, batchSize=3)
    return record


def test_redrive_delivers_exactly_the_failed_ranges_and_keeps_a_trimmed_one(
        moto_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = moto_server.endpoint_url
    ddb, streams = moto_server.client("dynamodb"), moto_server.client("dynamodbstreams")
    sqs, sns = moto_server.client("sqs"), moto_server.client("sns")
    table = create_table(ddb, sk_type="N")
    for i in range(40):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i:02d}"}, "sk": {"N": "1"},
                                            "v": {"N": str(i)}, "b": {"B": bytes([i, 0])}})
    for i in range(20):
        ddb.update_item(TableName=table, Key={"pk": {"S": f"k{i:02d}"}, "sk": {"N": "1"}},
                        UpdateExpression="SET v = :v", ExpressionAttributeValues={
                            ":v": {"N": "12345678901234567890123456789012345678"}})
    for i in range(20, 25):
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"k{i:02d}"}, "sk": {"N": "1"}})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    truth = stream_records(streams, arn)
    assert len(truth) == 65
    failed = {r["eventID"] for r in truth[0:10] + truth[30:40]}

    # The on-failure destination: one SQS queue, fed directly and through an SNS topic.
    queue = sqs.create_queue(QueueName=f"onfail-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=f"onfail-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    senders = itertools.cycle([on_failure_sender(sqs, queue), on_failure_sender(sns, topic)])

    # Capture as the event source mapping would, with a function that fails on the poison
    # records every time: after the retries, each failed batch's range goes on-failure.
    lake_dir = tmp_path / "lake"
    lake = Lake.open(str(lake_dir))
    delivery = LocalDeliveryStream(lake, name=f"ddbtrail-{table}")
    capture = capture_processor(delivery, table)

    def function(event: dict[str, Any]) -> Any:
        for r in event["Records"]:
            if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["pk"]["S"] in POISON:
                raise RuntimeError("function error (forced)")
        return capture(event)

    runner = StreamRunner(
        streams, arn, function, CheckpointStore(lake, checkpoint_name(table)),
        RunnerSettings(batch_size=10, max_retry_attempts=1, bisect_on_error=False,
                       checkpoint_interval=0, poll_interval=0),
        before_checkpoint=delivery.flush, on_failure=lambda info: next(senders)(info),
        sleep=lambda s: None)
    stats = runner.run(once=True)
    delivery.close()
    assert stats.failed_batches == 2
    before = {f.path for f in lake.data_files(table)}
    assert sorted(lake_event_ids(lake, table)) == sorted(
        r["eventID"] for r in truth if r["eventID"] not in failed)

    bodies = queue_bodies(sqs, queue)
    assert len(bodies) == 2
    assert any(b.get("Type") == "Notification" for b in bodies)  # the SNS envelope
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(trimmed_message(arn)))

    # --dry-run: lists every range with the records the stream still holds; changes nothing.
    args = ["redrive", "--queue-url", queue, "--lake", str(lake_dir), "--endpoint-url", url]
    assert exit_code([*args, "--dry-run", "--output", "json"]) == 1
    out = capsys.readouterr()
    listed = [json.loads(line) for line in out.out.splitlines()]
    assert sorted((r["status"], r["records"]) for r in listed) == [
        ("listed", 10), ("listed", 10), ("trimmed", 0)]
    assert {(r["start"], r["end"]) for r in listed if r["status"] == "listed"} == {
        (truth[0]["dynamodb"]["SequenceNumber"], truth[9]["dynamodb"]["SequenceNumber"]),
        (truth[30]["dynamodb"]["SequenceNumber"], truth[39]["dynamodb"]["SequenceNumber"])}
    assert {f.path for f in lake.data_files(table)} == before
    assert len(queue_bodies(sqs, queue)) == 3

    # The redrive: exactly the failed changes are delivered; their messages are deleted.
    assert exit_code(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "shardId-00000001540000000000-0badf00d" in err
    assert "1000000000000000000001..1000000000000000000003" in err
    assert "3 change(s)" in err and "are lost" in err and "ddbtrail backfill" in err
    new = {f.path for f in lake.data_files(table)} - before
    redriven = lake_event_ids(lake, table, new)
    assert sorted(redriven) == sorted(failed)

    # The lake now holds every change; a repeat could only be a redriven one.
    counts = Counter(lake_event_ids(lake, table))
    assert set(counts) == {r["eventID"] for r in truth}
    assert {e for e, n in counts.items() if n > 1} <= failed

    # Only the trimmed range's message is left, and a second run changes nothing else.
    left = queue_bodies(sqs, queue)
    assert [b["DDBStreamBatchInfo"]["shardId"] for b in left] == [
        "shardId-00000001540000000000-0badf00d"]
    assert exit_code(args) == 1
    assert "backfill" in capsys.readouterr().err
    assert {f.path for f in lake.data_files(table)} == before | new
    assert len(queue_bodies(sqs, queue)) == 1


HANDLER = Path(__file__).resolve().parents[2] / "handlers" / "redrive.py"


class Context:
    """The parts of LambdaContext that the handler and Powertools read."""

    function_name = "ddbtrail-redrive"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ddbtrail-redrive"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def load_handler() -> Any:
    """Import the handler as Lambda does: a fresh module, settings read from the environment."""
    spec = importlib.util.spec_from_file_location("redrive_handler_under_test", HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_and_scheduled_handler_redrive_into_firehose(
        moto_server: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = moto_server.endpoint_url
    ddb, streams = moto_server.client("dynamodb"), moto_server.client("dynamodbstreams")
    sqs, s3 = moto_server.client("sqs"), moto_server.client("s3")
    name = uuid.uuid4().hex[:8]
    table = create_table(ddb, sk_type="N")
    for i in range(12):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}, "sk": {"N": "1"}})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    truth = stream_records(streams, arn)
    s3.create_bucket(Bucket=f"lake-{name}")
    moto_server.client("firehose").create_delivery_stream(
        DeliveryStreamName=f"changes-{name}", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/fh",
                                            "BucketARN": f"arn:aws:s3:::lake-{name}"})
    queue = sqs.create_queue(QueueName=f"onfail-{name}")["QueueUrl"]
    send = on_failure_sender(sqs, queue)
    for lo, hi in ((2, 4), (7, 10)):  # two failed batches, in Lambda's record format
        record = json.loads((EVENTS / "powertools-on-failure-invocation-record.json").read_text())
        record["DDBStreamBatchInfo"].update(
            streamArn=arn, batchSize=hi - lo + 1,
            shardId=streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0][
                "ShardId"],
            startSequenceNumber=truth[lo]["dynamodb"]["SequenceNumber"],
            endSequenceNumber=truth[hi]["dynamodb"]["SequenceNumber"])
        send(record)

    # The CLI takes one message into Firehose ...
    assert exit_code(["redrive", "--queue-url", queue, "--delivery-stream", f"changes-{name}",
                    "--max-messages", "1", "--endpoint-url", url]) == 0
    assert "redrove 1 range(s)" in capsys.readouterr().out
    # ... and the scheduled Lambda handler the other.
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("QUEUE_URL", queue)
    monkeypatch.setenv("DELIVERY_STREAM_NAME", f"changes-{name}")
    handler = load_handler()
    counts = handler.handler({}, Context())
    assert (counts["RedrivenRanges"], counts["KeptMessages"]) == (1, 0)
    out = capsys.readouterr().out
    assert any('"range redriven"' in line and '"shard_id"' in line for line in out.splitlines())
    emf = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert emf[-1]["RedrivenRanges"] == [1.0]

    rows = []
    for obj in s3.list_objects_v2(Bucket=f"lake-{name}").get("Contents", []):
        body = s3.get_object(Bucket=f"lake-{name}", Key=obj["Key"])["Body"].read()
        rows += [json.loads(line) for line in body.splitlines()]
    assert sorted(r["event_id"] for r in rows) == sorted(
        r["eventID"] for r in truth[2:5] + truth[7:11])
    assert queue_bodies(sqs, queue) == []
