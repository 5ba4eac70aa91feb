"""A batch retried "forever" (MaximumRetryAttempts -1, Lambda's default) must not crash the runner.

Found by the S3 write-fault test: after 1,024 failed attempts an uncapped backoff
``retry_base_delay * 2 ** (attempts - 1)`` overflows a float and the runner would die with
OverflowError (with the CLI's 30 s cap, about 8.5 hours into a stuck batch).
"""

from __future__ import annotations

from typing import Any

from ddbtrail.capture.runner import CheckpointStore, RunnerSettings, StreamRunner
from ddbtrail.lake.files import Lake
from tests.faults.conftest import no_sleep

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"


class OneRecordStream:
    """One open shard holding one record."""

    def describe_stream(self, **_: Any) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [
            {"ShardId": "s1", "SequenceNumberRange": {"StartingSequenceNumber": "1"}}]}}

    def get_shard_iterator(self, **kw: Any) -> dict[str, Any]:
        return {"ShardIterator": "end" if kw.get("SequenceNumber") == "1" else "start"}

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        records = [] if ShardIterator == "end" else [{
            "eventID": "e1", "eventName": "INSERT",
            "dynamodb": {"Keys": {"pk": {"S": "a"}}, "SequenceNumber": "1"}}]
        return {"Records": records, "NextShardIterator": "end"}


def test_a_batch_retried_forever_does_not_crash_the_runner(tmp_path: Any) -> None:
    calls = 0

    def fails_1100_times(event: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls <= 1100:
            raise RuntimeError("downstream unavailable")
        return {"batchItemFailures": []}

    runner = StreamRunner(OneRecordStream(), ARN, fails_1100_times,
                          CheckpointStore(Lake.open(str(tmp_path / "lake")), "t"),
                          RunnerSettings(max_retry_attempts=-1, poll_interval=0,
                                         retry_base_delay=0.001, retry_max_delay=0.001),
                          sleep=no_sleep)
    stats = runner.run(once=True)
    assert calls == 1101
    assert stats.records == 1
