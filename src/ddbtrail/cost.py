"""Monthly cost model: ddbtrail's design beside the naive one, per component.

Prices are data (``data/prices.json``: each with its source and the date it was
recorded); the workload figures the model needs (handler time per record, bytes per row,
compression, bytes a lookup reads) are data too (``data/cost_inputs.json``: measured by
``python -m bench`` unless marked as an assumption). Nothing here calls AWS.

The naive design: TypeDeserializer + json.dumps + one PutRecord per change, plain JSON
Lines to S3 with no partitions, no conversion, no compaction; every lookup is a full scan.
A month is 30 days.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

from ddbtrail.core.exceptions import ConfigError, InvalidArgument
from ddbtrail.core.formats import LAKE_FORMATS

DAYS: Final = 30
KIB: Final = 1024
MB: Final = 1024 * 1024
GB: Final = 1024**3
TB: Final = 1024**4
FIREHOSE_UNIT: Final = 5 * KIB
FIREHOSE_RECORD_MAX: Final = 1_000 * KIB
FIREHOSE_CALL_MAX: Final = 4 * MB
FIREHOSE_CALL_RECORDS: Final = 500
ATHENA_MIN_BYTES: Final = 10 * MB
FORMATS: Final = LAKE_FORMATS


def _load(name: str) -> dict[str, Any]:
    try:
        text = resources.files("ddbtrail").joinpath("data", name).read_text(encoding="utf-8")
        data: dict[str, Any] = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"ddbtrail/data/{name}: cannot be read ({exc})") from exc
    return data


def prices() -> dict[str, float]:
    """Price name -> USD per unit, from data/prices.json."""
    return {k: float(v["usd"]) for k, v in _load("prices.json")["prices"].items()}


def measured_inputs() -> dict[str, float]:
    """Workload figure name -> value, from data/cost_inputs.json."""
    return {k: float(v["value"]) for k, v in _load("cost_inputs.json")["inputs"].items()}


@dataclass(frozen=True, slots=True)
class Workload:
    """What the user tells us. Sizes in KB are KiB; ``history_days`` is how much history
    the lake keeps and a lookup may have to cover."""

    changes_per_day: int
    avg_item_kb: float
    lookups_per_day: int = 0
    format: str = "parquet"
    history_days: int = DAYS
    images_per_change: float = 2.0  # NEW_AND_OLD_IMAGES on MODIFY
    batch_size: int = 100
    memory_mb: int = 256
    arm64: bool = False
    # As the stack deploys: JSON Lines packs rows; Parquet does not unless pack_rows=true;
    # Iceberg never (Firehose's Iceberg destination takes one row per record).
    pack_rows: bool | None = None
    # A trail of the tables' write data events, for "who changed it" (docs/cloudtrail.md).
    cloudtrail: bool = False
    live_items: int = 0  # items a snapshot holds; 0: as many as changes per day

    @property
    def packed(self) -> bool:
        if self.format == "iceberg":
            return False
        return self.format == "jsonl" if self.pack_rows is None else self.pack_rows

    def check(self) -> None:
        """InvalidArgument naming the first field out of range."""
        if self.changes_per_day < 0:
            raise InvalidArgument("changes_per_day", self.changes_per_day, "must be >= 0")
        if not 0 < self.avg_item_kb <= 400:
            raise InvalidArgument("avg_item_kb", self.avg_item_kb,
                                  "must be > 0 and <= 400 (DynamoDB's item limit)")
        if self.lookups_per_day < 0:
            raise InvalidArgument("lookups_per_day", self.lookups_per_day, "must be >= 0")
        if self.format not in FORMATS:
            raise InvalidArgument("format", str(self.format), "expected parquet, jsonl or iceberg")
        if self.format == "iceberg" and self.pack_rows:
            raise InvalidArgument("pack_rows", None, "Firehose's Iceberg destination takes one "
                                  "row per record")
        if not 1 <= self.batch_size <= 10_000:
            raise InvalidArgument("batch_size", self.batch_size,
                                  "must be 1..10,000 (Lambda's stream batch limit)")
        if self.history_days < 1:
            raise InvalidArgument("history_days", self.history_days, "must be >= 1")
        if not 128 <= self.memory_mb <= 10_240:
            raise InvalidArgument("memory_mb", self.memory_mb, "must be 128..10,240")
        if self.live_items < 0:
            raise InvalidArgument("live_items", self.live_items, "must be >= 0")


@dataclass(slots=True)
class Line:
    """One component: monthly USD for each design and how it was worked out."""

    component: str
    ddbtrail: float
    naive: float
    basis: str


@dataclass(slots=True)
class Estimate:
    """Monthly cost lines, their totals and the figures used."""

    workload: Workload
    lines: list[Line] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def total_ddbtrail(self) -> float:
        return sum(line.ddbtrail for line in self.lines)

    @property
    def total_naive(self) -> float:
        return sum(line.naive for line in self.lines)


def athena_billed_bytes(scanned: float) -> float:
    """Bytes Athena bills for one query: rounded up to the MB, at least 10 MB."""
    return max(ATHENA_MIN_BYTES, math.ceil(scanned / MB) * MB)


def firehose_billed_bytes(record_bytes: float) -> float:
    """Bytes Firehose bills for one record: rounded up to 5 KB."""
    return max(1, math.ceil(record_bytes / FIREHOSE_UNIT)) * FIREHOSE_UNIT


def lookup_bytes_compacted(rows_per_day: float, stored_row_bytes: float, days: int,
                           m: dict[str, float]) -> float:
    """Bytes one key lookup reads in a compacted Parquet lake of ``days`` partitions.

    Per partition: the footer plus the key's row group, sized by
    ``compact.auto_row_group_rows`` so the two are equal: 2 * sqrt(rows * footer-bytes-per-
    row-group * row bytes), times the calibration measured by the lookup benchmark.
    """
    footer_per_group = m["parquet_footer_bytes_per_row_group"]
    per_partition = 2 * math.sqrt(max(rows_per_day, 1) * footer_per_group * stored_row_bytes)
    return days * per_partition * m["lookup_calibration"]


def estimate(w: Workload, *, price: dict[str, float] | None = None,
             measured: dict[str, float] | None = None) -> Estimate:
    """Monthly cost of ``w`` for ddbtrail and for the naive design (USD, 30-day month)."""
    w.check()
    p = price or prices()
    m = measured or measured_inputs()
    est = Estimate(w)
    rows = w.changes_per_day * DAYS
    row_bytes = m["row_overhead_bytes"] + w.images_per_change * w.avg_item_kb * KIB
    naive_bytes = m["naive_overhead_bytes"] + w.images_per_change * w.avg_item_kb * KIB
    invocations = math.ceil(rows / w.batch_size) if rows else 0
    gb_s_price = p["lambda_gb_second_arm64" if w.arm64 else "lambda_gb_second_x86"]
    call_ms = m["firehose_call_ms"]

    # Packing: rows of one batch share Firehose records of <= 500 rows and <= 1,000 KiB.
    rows_per_record = max(1, min(w.batch_size, FIREHOSE_CALL_RECORDS,
                                 FIREHOSE_RECORD_MAX // max(int(row_bytes), 1))) \
        if w.packed else 1
    records_per_batch = math.ceil(w.batch_size / rows_per_record)
    calls_per_batch = max(math.ceil(records_per_batch / FIREHOSE_CALL_RECORDS),
                          math.ceil(w.batch_size * row_bytes / FIREHOSE_CALL_MAX))
    record_bytes = rows_per_record * row_bytes
    firehose_records = invocations * records_per_batch
    est.figures.update({
        "row_bytes": row_bytes, "rows_per_firehose_record": rows_per_record,
        "firehose_records_month": firehose_records, "naive_firehose_records_month": rows,
    })

    # Lambda: handler CPU per record plus waiting on Firehose, billed per GB-second.
    mem_gb = w.memory_mb / 1024
    d_seconds = invocations * (w.batch_size * m["handler_ms_per_record"]
                               + calls_per_batch * call_ms) / 1000
    n_seconds = invocations * w.batch_size * (m["naive_ms_per_record"] + call_ms) / 1000
    req = invocations * p["lambda_request"]
    est.lines.append(Line(
        "Lambda (GB-s + requests)",
        d_seconds * mem_gb * gb_s_price + req, n_seconds * mem_gb * gb_s_price + req,
        f"{invocations:,} invocations of {w.batch_size} records, {w.memory_mb} MB; "
        f"{calls_per_batch} PutRecordBatch vs {w.batch_size} PutRecord per batch",
    ))

    # Firehose ingestion: per record, rounded up to 5 KB; into Iceberg per GB ingested,
    # with no 5 KB increments, at its own rate.
    iceberg = w.format == "iceberg"
    d_ingest = (rows * row_bytes if iceberg
                else firehose_records * firehose_billed_bytes(record_bytes))
    n_ingest = rows * firehose_billed_bytes(naive_bytes)
    est.figures.update({"firehose_billed_gb": d_ingest / GB, "naive_firehose_billed_gb":
                        n_ingest / GB})
    ingest_price = p["firehose_iceberg_gb" if iceberg else "firehose_ingest_gb"]
    est.lines.append(Line(
        "Firehose ingestion",
        d_ingest / GB * ingest_price, n_ingest / GB * p["firehose_ingest_gb"],
        (f"one row per record into Iceberg, {d_ingest / GB:,.2f} GB at "
         f"${ingest_price}/GB (no 5 KB rounding)" if iceberg else
         f"{rows_per_record} rows per record ({record_bytes / KIB:,.1f} KiB)")
        + f" vs one {naive_bytes / KIB:,.1f} KiB record per change, each rounded up to 5 KB",
    ))
    if w.format == "parquet":
        est.lines.append(Line(
            "Firehose format conversion", d_ingest / GB * p["firehose_format_conversion_gb"],
            0.0, "JSON -> Parquet, on the GB billed for ingestion"))

    # Objects Firehose writes: one per buffer flush per active partition.
    day_bytes = w.changes_per_day * row_bytes
    buffer_mb = {"parquet": 64, "iceberg": 128}.get(w.format, 5)
    flushes = max(86_400 / m["buffer_interval_s"], day_bytes / (buffer_mb * MB))
    objects = math.ceil(flushes) * DAYS if rows else 0
    naive_objects = math.ceil(max(86_400 / m["buffer_interval_s"],
                                  w.changes_per_day * naive_bytes / (5 * MB))) * DAYS \
        if rows else 0
    jq_hours = rows * m["jq_ms_per_record"] / 3_600_000
    if iceberg:
        # Iceberg partitions by its spec; no dynamic partitioning, no jq. Glue's optimizers
        # rewrite what Firehose wrote (sort compaction) and expire snapshots.
        compacted_gb = rows * row_bytes * m["parquet_ratio"] / GB
        dpu_hours = (compacted_gb * m["glue_compaction_dpu_hours_per_gb"]
                     + 2 * DAYS * m["glue_maintenance_dpu_hours_per_run"])
        est.figures.update({"glue_dpu_hours_month": dpu_hours})
        est.lines.append(Line(
            "Glue table optimizers", dpu_hours * p["glue_optimizer_dpu_hour"], 0.0,
            f"sort compaction of {compacted_gb:,.2f} GB (assumed "
            f"{m['glue_compaction_dpu_hours_per_gb']} DPU-h/GB) + daily snapshot retention "
            f"and orphan deletion: {dpu_hours:,.2f} DPU-hours"))
    est.lines.append(Line(
        "Firehose dynamic partitioning",
        0.0 if iceberg else
        rows * row_bytes / GB * p["firehose_dynamic_partitioning_gb"]
        + objects * p["firehose_dynamic_partitioning_object"] + jq_hours * p["firehose_jq_hour"],
        0.0,
        "none: the Iceberg table's partition spec places rows" if iceberg else
        f"table_name/dt partitions: GB processed, {objects:,} objects, "
        f"{jq_hours:,.2f} JQ hours (assumed {m['jq_ms_per_record']} ms per record)",
    ))

    # S3: what is kept (history_days of data) and the requests that write it.
    stored_ratio = m["parquet_ratio"] if w.format in ("parquet", "iceberg") \
        else m["jsonl_gzip_ratio"]
    stored_row = row_bytes * stored_ratio
    # Iceberg keeps the files compaction replaced until their snapshots expire.
    kept = w.history_days + (min(m["iceberg_snapshot_retention_days"], w.history_days)
                             if iceberg else 0)
    d_stored = w.changes_per_day * kept * stored_row
    n_stored = w.changes_per_day * w.history_days * naive_bytes
    est.figures.update({"stored_gb": d_stored / GB, "naive_stored_gb": n_stored / GB})
    est.lines.append(Line(
        "S3 storage",
        d_stored / GB * p["s3_standard_gb_month"], n_stored / GB * p["s3_standard_gb_month"],
        f"{w.history_days} days kept: {d_stored / GB:,.2f} GB "
        f"({'gzip JSON Lines' if w.format == 'jsonl' else 'Parquet'}, "
        f"x{stored_ratio:.2f} of JSON"
        + (f"; + {kept - w.history_days:g} days of replaced files until snapshots expire"
           if iceberg else "") + f") vs {n_stored / GB:,.2f} GB plain JSON",
    ))
    # Compaction: each closed partition once: GET every flush file, PUT the new file(s).
    compact_gets = objects
    compact_puts = (math.ceil(w.changes_per_day / 2_000_000) * DAYS) if rows else 0
    if iceberg:
        # Each Firehose commit also writes a manifest, a manifest list and a metadata file.
        objects *= 4
    est.lines.append(Line(
        "S3 requests",
        (objects + compact_puts) * p["s3_put"] + compact_gets * p["s3_get"],
        naive_objects * p["s3_put"],
        f"{objects:,} Firehose objects + compaction ({compact_puts:,} PUT, {compact_gets:,} "
        f"GET) vs {naive_objects:,} objects",
    ))
    if w.cloudtrail:
        # At most one data event per change: a batch or transaction call logs one event.
        events = rows
        trail = events / 100_000 * p["cloudtrail_data_events_100k"]
        est.lines.append(Line(
            "CloudTrail data events", trail, trail,
            f"at most {events:,} write events (one per write call) per 100,000; the same "
            "trail either way: Streams carry no principal"))

    # Athena: every lookup billed >= 10 MB, rounded up to the MB.
    queries = w.lookups_per_day * DAYS
    if w.format in ("parquet", "iceberg"):
        # Iceberg: after sort compaction its planning keeps one key's files, read as the
        # compacted Parquet lake (docs/benchmarks.md measures both).
        d_scan = lookup_bytes_compacted(w.changes_per_day, stored_row, w.history_days, m)
    else:
        d_scan = d_stored  # JSON has no statistics: a key lookup reads the whole table
    n_scan = n_stored
    est.figures.update({"lookup_scanned_mb": d_scan / MB, "naive_lookup_scanned_mb":
                        n_scan / MB})
    est.lines.append(Line(
        "Athena lookups",
        queries * athena_billed_bytes(d_scan) / TB * p["athena_tb_scanned"],
        queries * athena_billed_bytes(n_scan) / TB * p["athena_tb_scanned"],
        f"{queries:,} lookups: {d_scan / MB:,.1f} MB scanned each (billed "
        f"{athena_billed_bytes(d_scan) / MB:,.0f} MB) vs a {n_scan / MB:,.0f} MB full scan",
    ))

    # Daily maintenance (issue 18): a scheduled state machine runs, per table and day, four
    # Athena queries: snapshot_candidates (the snapshots table only: 10 MB minimum),
    # snapshot_check of the previous build (the event_id column of the two days of change
    # partitions a late change can still reach: query.snapshots.LATE_ARRIVAL_HOURS),
    # snapshot_state (the previous snapshot plus the day's changes) and snapshot_complete
    # (10 MB minimum). Snapshots are kept as long as the history.
    items = w.live_items or w.changes_per_day
    snap_row = (m["row_overhead_bytes"] + w.avg_item_kb * KIB) * stored_ratio
    snapshot_bytes = items * snap_row
    base_scan = w.changes_per_day * min(w.history_days, 2) * m["stale_check_bytes_per_row"]
    state_scan = snapshot_bytes + w.changes_per_day * stored_row
    runs = DAYS if rows else 0
    athena_usd = runs * sum(athena_billed_bytes(b) for b in (0, base_scan, state_scan, 0)) \
        / TB * p["athena_tb_scanned"]
    kept = snapshot_bytes * w.history_days
    # Pass x2, four views, the Map; per table nine states when the first candidate is fresh.
    transitions = runs * (7 + 9)
    est.figures.update({"snapshot_gb": snapshot_bytes / GB, "snapshot_scan_mb":
                        state_scan / MB})
    est.lines.append(Line(
        "Daily snapshots (Athena, S3, Step Functions)",
        athena_usd + kept / GB * p["s3_standard_gb_month"]
        + transitions * p["sfn_state_transition"] + runs * p["scheduler_invocation"],
        0.0,
        f"{runs} runs: {(state_scan + base_scan) / MB:,.0f} MB scanned each "
        f"({items:,} items of {snap_row / KIB:,.1f} KiB + a day of changes + the stale check); "
        f"{kept / GB:,.2f} GB of snapshots kept; {transitions} state transitions",
    ))
    return est
