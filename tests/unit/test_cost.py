"""The cost model: billing rules, price data with sources, and the CLI table."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from ddbtrail.cli import main
from ddbtrail.cost import (
    MB,
    Workload,
    athena_billed_bytes,
    estimate,
    firehose_billed_bytes,
    measured_inputs,
    prices,
)


def _data(name: str) -> dict:
    return json.loads(resources.files("ddbtrail").joinpath("data", name).read_text())


def test_every_price_has_a_source_and_a_date() -> None:
    for name, price in _data("prices.json")["prices"].items():
        assert price["usd"] > 0, name
        assert price["source"].startswith("https://aws.amazon.com/"), name
        assert len(price["recorded"]) == 10, name


def test_every_input_says_whether_it_was_measured() -> None:
    for name, item in _data("cost_inputs.json")["inputs"].items():
        assert item["kind"] in ("measured", "assumption"), name
        assert item["source"] and item["date"], name


def test_firehose_bills_each_record_in_5kb_steps() -> None:
    assert firehose_billed_bytes(1) == 5 * 1024
    assert firehose_billed_bytes(5 * 1024) == 5 * 1024
    assert firehose_billed_bytes(5 * 1024 + 1) == 10 * 1024


def test_athena_bills_at_least_10mb_rounded_up_to_the_mb() -> None:
    assert athena_billed_bytes(1) == 10 * MB
    assert athena_billed_bytes(10 * MB + 1) == 11 * MB
    assert athena_billed_bytes(0) == 10 * MB


def test_small_rows_cost_naive_firehose_a_full_5kb_unit_each() -> None:
    # 1 KB items: a naive record is ~2.6 KiB and bills 5 KiB; packed rows bill ~their size.
    est = estimate(Workload(changes_per_day=1_000_000, avg_item_kb=1, format="jsonl"))
    line = next(x for x in est.lines if x.component == "Firehose ingestion")
    assert est.figures["naive_firehose_billed_gb"] == pytest.approx(
        30_000_000 * 5 * 1024 / 1024**3)
    assert est.figures["firehose_billed_gb"] < est.figures["naive_firehose_billed_gb"]
    assert line.naive > line.ddbtrail


def test_jsonl_has_no_format_conversion_and_scans_whole_table() -> None:
    pq = estimate(Workload(changes_per_day=100_000, avg_item_kb=2, lookups_per_day=10))
    js = estimate(Workload(changes_per_day=100_000, avg_item_kb=2, lookups_per_day=10,
                           format="jsonl"))
    assert any(x.component == "Firehose format conversion" for x in pq.lines)
    assert not any(x.component == "Firehose format conversion" for x in js.lines)
    assert js.figures["lookup_scanned_mb"] > pq.figures["lookup_scanned_mb"]


def test_lookups_scale_the_athena_line_linearly() -> None:
    one = estimate(Workload(changes_per_day=10_000, avg_item_kb=1, lookups_per_day=100))
    two = estimate(Workload(changes_per_day=10_000, avg_item_kb=1, lookups_per_day=200))
    athena = [next(x for x in e.lines if x.component == "Athena lookups") for e in (one, two)]
    assert athena[1].ddbtrail == pytest.approx(2 * athena[0].ddbtrail)
    assert athena[1].naive == pytest.approx(2 * athena[0].naive)


def test_prices_come_from_the_data_file() -> None:
    p = prices()
    doubled = {k: 2 * v for k, v in p.items()}
    w = Workload(changes_per_day=50_000, avg_item_kb=3, lookups_per_day=5)
    assert estimate(w, price=doubled).total_ddbtrail == pytest.approx(
        2 * estimate(w, price=p).total_ddbtrail)
    assert set(measured_inputs()) >= {"handler_ms_per_record", "row_overhead_bytes"}


def test_cli_prints_both_designs_per_component(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "--changes-per-day", "200000", "--avg-item-kb", "1.5",
              "--lookups-per-day", "50", "--format", "jsonl"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    for component in ("Lambda", "Firehose ingestion", "S3 storage", "S3 requests",
                      "Athena lookups", "total", "ddbtrail", "naive"):
        assert component in out


@pytest.mark.parametrize(("args", "needle"), [
    (["--changes-per-day", "10", "--avg-item-kb", "500"], "--avg-item-kb"),
    (["--changes-per-day", "10", "--avg-item-kb", "1", "--format", "orc"], "--format"),
    (["--changes-per-day", "-1", "--avg-item-kb", "1"], "--changes-per-day"),
])
def test_cli_rejects_bad_options_in_one_line(args: list[str], needle: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: ") and needle in err[0]


def test_packing_follows_the_stack_unless_asked() -> None:
    # The stack packs JSON Lines, and Parquet only with -c pack_rows=true.
    parquet = estimate(Workload(changes_per_day=1_000_000, avg_item_kb=1))
    packed = estimate(Workload(changes_per_day=1_000_000, avg_item_kb=1, pack_rows=True))
    assert parquet.figures["rows_per_firehose_record"] == 1
    assert packed.figures["rows_per_firehose_record"] > 1
    assert packed.figures["firehose_billed_gb"] < parquet.figures["firehose_billed_gb"]


def test_cloudtrail_data_events_cost_per_100k_from_the_price_data() -> None:
    w = Workload(changes_per_day=100_000, avg_item_kb=1, cloudtrail=True)
    (line,) = [x for x in estimate(w).lines if x.component == "CloudTrail data events"]
    # 3,000,000 events a month at the recorded price per 100,000.
    assert line.ddbtrail == pytest.approx(30 * prices()["cloudtrail_data_events_100k"])
    assert line.naive == line.ddbtrail
    assert not [x for x in estimate(Workload(changes_per_day=100_000, avg_item_kb=1)).lines
                if x.component == "CloudTrail data events"]


def test_iceberg_ingestion_is_billed_per_gb_without_5kb_steps() -> None:
    p = prices()
    est = estimate(Workload(changes_per_day=1_000_000, avg_item_kb=1, format="iceberg"))
    line = next(x for x in est.lines if x.component == "Firehose ingestion")
    row_gb = 30_000_000 * est.figures["row_bytes"] / 1024**3
    assert est.figures["rows_per_firehose_record"] == 1  # never packed
    assert est.figures["firehose_billed_gb"] == pytest.approx(row_gb)
    assert line.ddbtrail == pytest.approx(row_gb * p["firehose_iceberg_gb"])
    # A 2.7 KiB row rounded up to 5 KiB would bill almost twice the bytes.
    assert est.figures["firehose_billed_gb"] < est.figures["naive_firehose_billed_gb"] * 0.6


def test_iceberg_pays_glue_optimizers_instead_of_partitioning_and_conversion() -> None:
    ice = estimate(Workload(changes_per_day=500_000, avg_item_kb=2, lookups_per_day=50,
                            format="iceberg"))
    by = {x.component: x for x in ice.lines}
    assert by["Glue table optimizers"].ddbtrail > 0
    assert by["Firehose dynamic partitioning"].ddbtrail == 0
    assert "Firehose format conversion" not in by
    assert ice.figures["glue_dpu_hours_month"] > 0
    pq = estimate(Workload(changes_per_day=500_000, avg_item_kb=2, lookups_per_day=50))
    # Replaced files are kept until their snapshots expire; lookups read as compacted Hive
    # Parquet once the optimizer has compacted a closed day (after an assumed lag).
    assert ice.figures["stored_gb"] > pq.figures["stored_gb"]
    lag = pq.deployment.compaction.schedule.lag_hours  # type: ignore[union-attr]
    same_lag = estimate(ice.workload, measured={"glue_compaction_lag_hours": lag})
    assert same_lag.figures["lookup_scanned_mb"] == pytest.approx(
        pq.figures["lookup_scanned_mb"])


def test_iceberg_refuses_packed_rows(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["cost", "--changes-per-day", "10", "--avg-item-kb", "1", "--format", "iceberg",
              "--pack-rows"])
    assert exc.value.code == 2
    assert "one row per record" in capsys.readouterr().err


def test_daily_snapshots_cost_athena_scans_storage_and_transitions() -> None:
    def line(**kw: object) -> float:
        est = estimate(Workload(changes_per_day=1_000_000, avg_item_kb=1.0, **kw))  # type: ignore[arg-type]
        (found,) = [x for x in est.lines if x.component.startswith("Daily snapshots")]
        assert found.naive == 0.0
        return found.ddbtrail

    small, large = line(live_items=10_000), line(live_items=10_000_000)
    # A snapshot is scanned and kept once per day: ten times the items, more cost.
    assert 0 < small < large
    est = estimate(Workload(changes_per_day=1_000_000, avg_item_kb=1.0, live_items=10_000_000))
    assert est.figures["snapshot_gb"] > 1
    idle = estimate(Workload(changes_per_day=0, avg_item_kb=1.0))
    assert [x.ddbtrail for x in idle.lines if x.component.startswith("Daily")] == [0.0]
