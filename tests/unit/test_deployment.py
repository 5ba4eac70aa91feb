"""The deployment reader (schedules, missing resources) and how the cost model prices the
layout, compaction and evidence it reports. tests/infra/test_cost_template.py reads real
synthesised templates."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from ddbtrail.cli import main
from ddbtrail.core.exceptions import ConfigError
from ddbtrail.cost import (
    Workload,
    estimate,
    lookup_bytes_compacted,
    lookup_bytes_raw,
    measured_inputs,
)
from ddbtrail.deployment import Compaction, defaults, from_template, parse_schedule

WORK = Workload(changes_per_day=1_000_000, avg_item_kb=1, lookups_per_day=1_000)


@pytest.mark.parametrize(("expression", "tz", "runs", "lag"), [
    ("cron(30 1 * * ? *)", "Etc/UTC", 1, 1.5),
    ("cron(0/15 * * * ? *)", None, 96, 0.0),
    ("cron(5 3,15 * * ? *)", None, 2, 3 + 5 / 60),
    ("cron(0 2-4 * * ? *)", None, 3, 2.0),
    ("rate(6 hours)", None, 4, 3.0),
    ("rate(1 day)", None, 1, 12.0),
    # 02:00 in Paris in January is 01:00 UTC.
    ("cron(0 2 * * ? *)", "Europe/Paris", 1, 1.0),
])
def test_schedules_become_runs_per_day_and_the_wait_after_a_day_closes(
        expression: str, tz: str | None, runs: float, lag: float) -> None:
    s = parse_schedule(expression, tz)
    assert s.runs_per_day == runs
    assert s.lag_hours == pytest.approx(lag)


@pytest.mark.parametrize("expression", [
    "cron(0 1 ? * MON *)", "cron(0 1 1 * ? *)", "at(2026-01-01T00:00:00)", "cron(0 25 * * ? *)",
])
def test_a_schedule_the_model_cannot_price_is_named(expression: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expression)):
        parse_schedule(expression)


def test_a_template_without_what_the_model_needs_is_named() -> None:
    with pytest.raises(ConfigError, match="no Resources"):
        from_template({"Resources": {}}, source="t.json")
    bare = {"Resources": {"S": {"Type": "AWS::KinesisFirehose::DeliveryStream"}}}
    with pytest.raises(ConfigError, match="aws:cdk:path"):
        from_template(bare, source="t.json")
    stream = {"Type": "AWS::KinesisFirehose::DeliveryStream", "Properties": {
        "ExtendedS3DestinationConfiguration": {"BufferingHints": {"SizeInMBs": 64}}},
        "Metadata": {"aws:cdk:path": "s/Delivery/Stream"}}
    fn = {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 512}}
    mapping = {"Type": "AWS::Lambda::EventSourceMapping",
               "Properties": {"FunctionName": {"Ref": "Fn"}, "BatchSize": 100},
               "Metadata": {"aws:cdk:path": "s/OrdersCapture/Mapping"}}
    with pytest.raises(ConfigError, match="no capture"):
        from_template({"Resources": {"S": stream}})
    with pytest.raises(ConfigError, match=r"t\.json: no Maintenance/Schedule"):
        from_template({"Resources": {"S": stream, "Fn": fn, "M": mapping}}, source="t.json")


def test_lookups_read_raw_partitions_until_compaction_reaches_them() -> None:
    m = measured_inputs()
    base = defaults("parquet")
    assert base.compaction is not None and base.compaction.schedule is not None
    never = dataclasses.replace(base, compaction=None)
    late = dataclasses.replace(base, compaction=dataclasses.replace(
        base.compaction, schedule=parse_schedule("cron(0 12 * * ? *)")))
    scans = {name: estimate(WORK, deployment=d).figures["lookup_scanned_mb"] * 2**20
             for name, d in (("base", base), ("never", never), ("late", late))}
    stored_row = estimate(WORK).figures["row_bytes"] * m["parquet_ratio"]
    # Never compacted: today's half partition and all 29 closed ones, read raw.
    assert scans["never"] == pytest.approx(lookup_bytes_raw(1_000_000, stored_row, 29.5, m))
    # Compacted at 12:00: on average half a closed day is still raw besides today's.
    assert scans["late"] == pytest.approx(
        lookup_bytes_raw(1_000_000, stored_row, 1.0, m)
        + lookup_bytes_compacted(1_000_000, stored_row, 28.5, m))
    assert scans["base"] < scans["late"] < scans["never"]


def test_lambda_compaction_is_priced_from_memory_and_flags_a_partition_too_big() -> None:
    base = defaults("parquet")
    assert base.compaction is not None
    small = dataclasses.replace(base, compaction=dataclasses.replace(
        base.compaction, memory_mb=512, timeout_s=60))
    by = {x.component: x for x in estimate(WORK, deployment=small).lines}
    line = by["Compaction (Lambda, Step Functions)"]
    assert "timeout" in line.basis and "more than the function's 512 MB" in line.basis
    # At 512 MB Lambda has under a third of a vCPU: the same work takes longer, and costs
    # about as much (GB-seconds of CPU-bound work do not depend on memory below 1,769 MB).
    big = estimate(WORK, deployment=base).figures
    low = estimate(WORK, deployment=small).figures
    assert low["compaction_seconds_per_partition"] > 3 * big["compaction_seconds_per_partition"]
    assert {label for label, _ in line.sources} == {"stack default", "measured", "assumed"}


def test_evidence_is_priced_only_when_deployed() -> None:
    base = dataclasses.replace(defaults("parquet"), evidence=False)  # -c evidence=false
    assert not any(x.component.startswith("Evidence")
                   for x in estimate(WORK, deployment=base).lines)
    assert any(x.component.startswith("Evidence") for x in estimate(WORK).lines)  # default
    on = estimate(WORK, deployment=dataclasses.replace(base, evidence=True))
    (line,) = [x for x in on.lines if x.component.startswith("Evidence")]
    assert line.ddbtrail > 1  # the signing key alone is $1 a month


def test_glue_compaction_has_no_schedule_and_uses_the_assumed_lag() -> None:
    d = defaults("iceberg")
    assert d.compaction == Compaction("glue")
    athena = next(x for x in estimate(dataclasses.replace(WORK, format="iceberg")).lines
                  if x.component == "Athena lookups")
    assert ("assumed", "glue_compaction_lag_hours 1") in athena.sources


def test_every_line_says_where_its_figures_came_from() -> None:
    est = estimate(dataclasses.replace(WORK, memory_mb=1024))
    for line in est.lines:
        assert line.sources, line.component
        assert {label for label, _ in line.sources} <= {
            "stack default", "given", "measured", "assumed"}, line.component
    lam = est.lines[0]
    assert ("given", "1024 MB") in lam.sources and ("stack default", "batch 500") in lam.sources


@pytest.mark.parametrize(("content", "needle"), [
    (None, "does not exist"),
    ("not json", "cannot be read as JSON"),
    ("[1, 2]", "is not a CloudFormation template"),
    (json.dumps({"Resources": {"X": {"Type": "AWS::S3::Bucket"}}}), "aws:cdk:path"),
])
def test_cli_refuses_a_bad_template_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None,
        needle: str) -> None:
    path = tmp_path / "t.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "--template", str(path), "--changes-per-day", "10", "--avg-item-kb", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: --template") and needle in err[0]


def test_cli_without_a_template_says_it_uses_the_stacks_defaults(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "--changes-per-day", "1000000", "--avg-item-kb", "1"])
    assert exit_info.value.code in (0, None)
    out = " ".join(capsys.readouterr().out.split())
    assert "the stack's defaults (no template given)" in out
    assert "Compaction" in out and "stack default" in out
