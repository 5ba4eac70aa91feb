"""The compaction state machine, run by the test interpreter of the States Language with
every Lambda call answered by the compaction handler itself, on moto's S3: it compacts the
closed partitions, retries and records a partition that fails, names those too large, and
plans again while a backlog remains."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ddbtrail.lake.compact import is_compacted
from infra.constructs.compaction import LAMBDA_INVOKE, definition
from tests.infra.asl import Interpreter, StatesError
from tests.integration.test_compaction_lambda import (
    TABLE,
    Context,
    day,
    firehose_day,
    load_handler,
    put,
    s3_lake,  # noqa: F401 (fixture)
)

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:ddbtrail-compaction"
START = "2026-12-08T00:45:00.000Z"
pytestmark = pytest.mark.integration


class Lambda:
    """``lambda:invoke`` as Step Functions makes it, answered by the handler in-process:
    the result is the Payload; an exception becomes the task's error (its type's name)."""

    def __init__(self) -> None:
        self.handler = load_handler()
        self.events: list[dict[str, Any]] = []

    def __call__(self, args: dict[str, Any]) -> dict[str, Any]:
        assert args["FunctionName"] == FUNCTION
        self.events.append(args["Payload"])
        try:
            return {"StatusCode": 200, "Payload": self.handler.handler(args["Payload"],
                                                                       Context())}
        except Exception as exc:
            raise StatesError(type(exc).__name__, json.dumps(
                {"errorMessage": str(exc), "errorType": type(exc).__name__})) from exc


def run(execution_input: dict[str, Any]) -> tuple[Interpreter, Lambda, Any]:
    invoke = Lambda()
    machine = Interpreter(definition(FUNCTION), {LAMBDA_INVOKE: invoke})
    try:
        return machine, invoke, machine.execute(execution_input, start_time=START)
    except StatesError as exc:
        return machine, invoke, exc


def test_a_run_compacts_every_closed_partition(s3_lake: dict[str, Any]) -> None:  # noqa: F811
    s3, bucket, reader = s3_lake["s3"], s3_lake["bucket"], s3_lake["reader"]
    for offset in (-2, -1, 0):
        put(s3, bucket, firehose_day(day(offset), files=4, rows_per_file=20, seed=offset))
    _, invoke, out = run({})
    assert not isinstance(out, StatesError), out
    assert [e["step"] for e in invoke.events] == ["plan", "partition", "partition"]
    for offset in (-2, -1):
        assert is_compacted(reader.data_files(TABLE, day(offset), day(offset)))
    assert len(reader.data_files(TABLE, day(0), day(0))) == 4  # today's stays open


def test_a_failing_partition_is_retried_then_fails_the_run_naming_it(
        s3_lake: dict[str, Any]) -> None:  # noqa: F811
    s3, bucket, reader = s3_lake["s3"], s3_lake["bucket"], s3_lake["reader"]
    put(s3, bucket, firehose_day(day(-2), files=3, rows_per_file=10))
    put(s3, bucket, [*firehose_day(day(-1), files=3, rows_per_file=10),
                     (f"lake/table_name={TABLE}/dt={day(-1)}/broken.parquet", b"not parquet")])
    machine, invoke, out = run({})
    assert isinstance(out, StatesError) and out.error == "CompactionFailed"
    assert f"{TABLE}/dt={day(-1)}: CompactionFailed" in out.cause
    # Retried with backoff (three times after the first call), then recorded.
    failing = [s for s in machine.steps if s.path.endswith("/CompactPartition")
               and s.retries]
    assert [len(s.retries) for s in failing] == [3]
    assert failing[0].retries == [60, 120, 240]
    assert sum(e.get("dt") == day(-1) for e in invoke.events) == 4
    # The other partition was compacted; the failing one kept every file.
    assert is_compacted(reader.data_files(TABLE, day(-2), day(-2)))
    assert len(reader.data_files(TABLE, day(-1), day(-1))) == 4


def test_a_partition_too_large_fails_the_run_without_being_read(
        s3_lake: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    put(s3_lake["s3"], s3_lake["bucket"], firehose_day(day(-1), files=3, rows_per_file=10))
    monkeypatch.setenv("MAX_PARTITION_BYTES", "1000")
    _, invoke, out = run({})
    assert isinstance(out, StatesError) and out.error == "PartitionTooLarge"
    assert f"{TABLE}/dt={day(-1)} (" in out.cause
    assert [e["step"] for e in invoke.events] == ["plan"]


def test_a_backlog_larger_than_one_plan_is_planned_again(
        s3_lake: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    s3, bucket, reader = s3_lake["s3"], s3_lake["bucket"], s3_lake["reader"]
    for offset in (-20, -3, -1):
        put(s3, bucket, firehose_day(day(offset), files=2, rows_per_file=10, seed=offset))
    monkeypatch.setenv("MAX_PARTITIONS", "1")
    _, invoke, out = run({"lookback_days": 30})
    assert not isinstance(out, StatesError), out
    assert [(e["step"], e.get("dt")) for e in invoke.events] == [
        ("plan", None), ("partition", day(-20)), ("plan", None), ("partition", day(-3)),
        ("plan", None), ("partition", day(-1))]
    assert all(e.get("lookback_days", 30) == 30 for e in invoke.events)
    assert is_compacted(reader.data_files(TABLE, day(-20), day(-20)))
