"""The cost model prices what the synthesised stack deploys: its inputs are read from the
template (``ddbtrail.deployment``), and they are the configuration's."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Any

import pytest

from ddbtrail.cli import main
from ddbtrail.core.exceptions import ConfigError
from ddbtrail.cost import Workload, estimate
from ddbtrail.deployment import (
    COMPACTION_FUNCTION,
    COMPACTION_SCHEDULE,
    PATH_KEY,
    defaults,
    from_template,
)
from infra import constants as C
from infra.config import load_config
from infra.constructs.maintenance import Maintenance

# The same context as tests/infra/test_infra_iceberg.py, so the synth is shared.
ICEBERG = {"format": "iceberg", "tables": "orders"}
BIG_BUFFER = {"format": "jsonl", "buffer_size_mb": "128", "buffer_interval_seconds": "600",
              "batch_size": "200"}
WORK = Workload(changes_per_day=1_000_000, avg_item_kb=1, lookups_per_day=1_000)


@pytest.fixture(scope="module")
def default(synth_once: Any) -> Any:
    synth = synth_once("default", {})
    assert synth.returncode == 0, synth.stderr
    return synth


def test_the_model_reads_the_default_stack_as_its_config_sets_it(default: Any) -> None:
    cfg = load_config({})
    d = from_template(default.template)
    assert (d.format, d.buffer_mb, d.buffer_interval_s) == (
        cfg.format, cfg.buffer_mb, cfg.buffer_interval_seconds)
    assert (d.batch_size, d.capture_memory_mb, d.packs_rows, d.tables) == (
        cfg.batch_size, cfg.lambda_memory_mb, cfg.packs_rows, len(cfg.all_tables))
    assert d.capture_arm64 == (C.LAMBDA_ARCHITECTURE == "arm64")
    hour = inspect.signature(Maintenance.__init__).parameters["hour_utc"].default
    minute = inspect.signature(Maintenance.__init__).parameters["minute"].default
    assert d.maintenance.expression == f"cron({minute} {hour} * * ? *)"
    assert d.maintenance.runs_per_day == 1
    assert d.evidence is cfg.evidence and d.cloudtrail is False


def test_without_a_template_the_model_uses_what_the_default_stack_deploys(default: Any) -> None:
    read = from_template(default.template)
    assumed = defaults(read.format)
    for name in ("format", "buffer_mb", "buffer_interval_s", "packs_rows", "batch_size",
                 "capture_memory_mb", "capture_arm64", "tables", "maintenance", "evidence",
                 "cloudtrail"):
        assert getattr(assumed, name) == getattr(read, name), name
    assert assumed.compaction == read.compaction


def test_the_default_stack_prices_its_compaction_and_raw_partitions(default: Any) -> None:
    d = from_template(default.template)
    est = estimate(WORK, deployment=d)
    by = {line.component: line for line in est.lines}
    athena = by["Athena lookups"]
    assert "raw" in athena.basis and ("stack", "format parquet") in athena.sources
    assert d.compaction is not None and d.compaction.engine == "lambda"
    assert d.compaction.schedule is not None
    assert d.compaction.schedule.expression == C.COMPACTION_SCHEDULE
    assert d.compaction.memory_mb == C.COMPACTION_MEMORY_MB
    line = by["Compaction (Lambda, Step Functions)"]
    assert line.ddbtrail > 0
    assert ("stack", f"{d.compaction.memory_mb} MB") in line.sources


def test_another_context_changes_what_the_model_reads(default: Any, synth_once: Any) -> None:
    big = synth_once("cost-jsonl-buffer", BIG_BUFFER)
    assert big.returncode == 0, big.stderr
    d = from_template(big.template)
    assert (d.format, d.buffer_mb, d.buffer_interval_s, d.batch_size, d.packs_rows) == (
        "jsonl", 128, 600, 200, True)
    jsonl = Workload(changes_per_day=1_000_000, avg_item_kb=1, format="jsonl")
    # A flush every 600 s writes half the objects of the default 300 s.
    assert estimate(jsonl, deployment=d).figures["firehose_objects_month"] == pytest.approx(
        estimate(jsonl).figures["firehose_objects_month"] / 2)
    ice = synth_once("iceberg", ICEBERG)
    assert ice.returncode == 0, ice.stderr
    d = from_template(ice.template)
    assert d.format == "iceberg" and d.compaction is not None
    assert d.compaction.engine == "glue"
    by = {x.component for x in estimate(Workload(changes_per_day=10_000, avg_item_kb=1,
                                                 format="iceberg"), deployment=d).lines}
    assert "Glue table optimizers" in by and "Firehose format conversion" not in by


def _at_path(template: dict[str, Any], path: str) -> str:
    """The logical id of the one resource whose ``aws:cdk:path`` ends with ``path``."""
    (logical_id,) = [k for k, r in template["Resources"].items()
                     if r.get("Metadata", {}).get(PATH_KEY, "").endswith(f"/{path}/Resource")]
    return logical_id


def _compaction_changed(template: dict[str, Any]) -> dict[str, Any]:
    """The default template with its compaction run at 02:00 UTC on 2,048 MB for 600 s."""
    out = copy.deepcopy(template)
    res = out["Resources"]
    res[_at_path(out, COMPACTION_SCHEDULE)]["Properties"]["ScheduleExpression"] = (
        "cron(0 2 * * ? *)")
    res[_at_path(out, COMPACTION_FUNCTION)]["Properties"].update(MemorySize=2048, Timeout=600)
    return out


def test_compaction_and_evidence_are_read_and_priced_from_the_template(default: Any) -> None:
    d = from_template(_compaction_changed(default.template))
    assert d.compaction is not None and d.compaction.schedule is not None
    assert (d.compaction.engine, d.compaction.memory_mb, d.compaction.timeout_s) == (
        "lambda", 2048, 600)
    assert d.compaction.schedule.lag_hours == 2 and d.evidence
    est = estimate(WORK, deployment=d)
    by = {line.component: line for line in est.lines}
    compaction = by["Compaction (Lambda, Step Functions)"]
    assert compaction.ddbtrail > 0
    assert {("stack", "2048 MB"), ("stack", "timeout 600 s")} <= set(compaction.sources)
    assert by["Evidence (receipts, signed digests)"].ddbtrail > 0
    # Compacted two hours after a day closes: far fewer raw bytes than never compacted.
    never = estimate(WORK, deployment=dataclasses.replace(d, compaction=None))
    assert est.figures["lookup_scanned_mb"] < never.figures["lookup_scanned_mb"] / 5


def test_a_compaction_schedule_without_its_function_is_named(default: Any) -> None:
    broken = copy.deepcopy(default.template)
    del broken["Resources"][_at_path(broken, COMPACTION_FUNCTION)]
    with pytest.raises(ConfigError, match="Compaction/PartitionFunction"):
        from_template(broken)


def test_cli_prices_the_template_it_is_given(default: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = default.outdir / "ddbtrail.template.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "--template", str(path), "--changes-per-day", "1000000",
              "--avg-item-kb", "1", "--lookups-per-day", "100", "--memory-mb", "1024"])
    assert exit_info.value.code in (0, None)
    out = " ".join(capsys.readouterr().out.split())
    # Rich folds the long path across lines.
    assert f"readfrom{path}" in out.replace(" ", "")
    assert "stack:" in out and "given:" in out and "stack default" not in out
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "--template", str(path), "--format", "jsonl",
              "--changes-per-day", "10", "--avg-item-kb", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--format" in err[0] and "deploys parquet" in err[0]
