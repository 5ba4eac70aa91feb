"""Monthly cost model: ddbtrail's design beside the naive one, per component.

Prices are data (``data/prices.json``: each with its source and the date it was
recorded); the workload figures the model needs (handler time per record, bytes per row,
compression, bytes a lookup reads, compaction compute) are data too
(``data/cost_inputs.json``: measured by ``python -m bench`` unless marked as an
assumption). What the stack deploys (format, buffer, schedules, memory, evidence) comes
from its synthesised template (``ddbtrail.deployment``) or, without one, from the stack's
defaults. Every line lists where its figures came from: the stack, a measurement, an
assumption, or the caller. Nothing here calls AWS.

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
from ddbtrail.deployment import Deployment, defaults

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
HOURS: Final = 24
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


def input_kinds() -> dict[str, str]:
    """Workload figure name -> ``measured`` or ``assumed``, from data/cost_inputs.json."""
    return {k: "measured" if v["kind"] == "measured" else "assumed"
            for k, v in _load("cost_inputs.json")["inputs"].items()}


@dataclass(frozen=True, slots=True)
class Workload:
    """What the user tells us. Sizes in KB are KiB; ``history_days`` is how much history
    the lake keeps and a lookup may have to cover. ``batch_size``, ``memory_mb``, ``arm64``,
    ``pack_rows`` and ``cloudtrail`` left None are as deployed (the template, or the
    stack's defaults); a value given overrides the stack's."""

    changes_per_day: int
    avg_item_kb: float
    lookups_per_day: int = 0
    format: str = "parquet"
    history_days: int = DAYS
    images_per_change: float = 2.0  # NEW_AND_OLD_IMAGES on MODIFY
    batch_size: int | None = None
    memory_mb: int | None = None
    arm64: bool | None = None
    # As the stack deploys: JSON Lines packs rows; Parquet does not unless pack_rows=true;
    # Iceberg never (Firehose's Iceberg destination takes one row per record).
    pack_rows: bool | None = None
    # A trail of the tables' write data events, for "who changed it" (docs/cloudtrail.md).
    cloudtrail: bool | None = None
    live_items: int = 0  # items a snapshot holds; 0: as many as changes per day

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
        if self.batch_size is not None and not 1 <= self.batch_size <= 10_000:
            raise InvalidArgument("batch_size", self.batch_size,
                                  "must be 1..10,000 (Lambda's stream batch limit)")
        if self.history_days < 1:
            raise InvalidArgument("history_days", self.history_days, "must be >= 1")
        if self.memory_mb is not None and not 128 <= self.memory_mb <= 10_240:
            raise InvalidArgument("memory_mb", self.memory_mb, "must be 128..10,240")
        if self.live_items < 0:
            raise InvalidArgument("live_items", self.live_items, "must be >= 0")


@dataclass(slots=True)
class Line:
    """One component: monthly USD for each design, how it was worked out, and where each
    figure came from (``sources``: ``(label, figure)`` pairs; labels are ``stack``,
    ``stack default``, ``given``, ``measured`` and ``assumed``)."""

    component: str
    ddbtrail: float
    naive: float
    basis: str
    sources: tuple[tuple[str, str], ...] = ()

    @property
    def provenance(self) -> str:
        """``sources`` grouped by label: ``stack: a, b; measured: c``."""
        groups: dict[str, list[str]] = {}
        for label, figure in self.sources:
            groups.setdefault(label, []).append(figure)
        return "; ".join(f"{label}: {', '.join(figures)}" for label, figures in groups.items())


@dataclass(slots=True)
class Estimate:
    """Monthly cost lines, their totals, the figures used and the deployment priced."""

    workload: Workload
    deployment: Deployment
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


def lookup_bytes_compacted(rows_per_day: float, stored_row_bytes: float, days: float,
                           m: dict[str, float]) -> float:
    """Bytes one key lookup reads in a compacted Parquet lake of ``days`` partitions.

    Per partition: every footer of its files plus the key's row group, at their least
    (``compact.auto_row_group_rows`` sizes groups near it): 2 * sqrt(rows * footer-bytes-
    per-row-group * row bytes), times the calibration measured by the benchmark.
    """
    footer_per_group = m["parquet_footer_bytes_per_row_group"]
    per_partition = 2 * math.sqrt(max(rows_per_day, 1) * footer_per_group * stored_row_bytes)
    return days * per_partition * m["lookup_calibration"]


def lookup_bytes_raw(rows_per_day: float, stored_row_bytes: float, days: float,
                     m: dict[str, float]) -> float:
    """Bytes one key lookup reads on ``days`` partitions as Firehose wrote them (arrival
    order, no useful statistics): ``raw_lookup_read_ratio`` of their bytes, which are
    ``raw_over_compacted_bytes`` times the compacted bytes (both measured)."""
    raw_partition = rows_per_day * stored_row_bytes * m["raw_over_compacted_bytes"]
    return days * raw_partition * m["raw_lookup_read_ratio"]


class _Sources:
    """Builds a line's ``sources``: the deployment's label for stack figures, the caller's
    for given ones, data/cost_inputs.json's kind for workload figures."""

    def __init__(self, d: Deployment, kinds: dict[str, str]) -> None:
        self.stack_label = d.label
        self.kinds = kinds

    def stack(self, *figures: str) -> tuple[tuple[str, str], ...]:
        return tuple((self.stack_label, f) for f in figures)

    def setting(self, given: bool, figure: str) -> tuple[tuple[str, str], ...]:
        return (("given" if given else self.stack_label, figure),)

    def inputs(self, m: dict[str, float], *names: str) -> tuple[tuple[str, str], ...]:
        return tuple((self.kinds.get(n, "given"), f"{n} {m[n]:g}") for n in names)


def estimate(w: Workload, *, deployment: Deployment | None = None,
             price: dict[str, float] | None = None,
             measured: dict[str, float] | None = None) -> Estimate:
    """Monthly cost of ``w`` on ``deployment`` (default: the stack's defaults for
    ``w.format``) for ddbtrail and for the naive design (USD, 30-day month).

    Raises InvalidArgument naming the field out of range, or ``format`` when it is not
    the deployment's.
    """
    w.check()
    d = deployment or defaults(w.format)
    if d.format != w.format:
        raise InvalidArgument("format", w.format, f"the template deploys {d.format}")
    p = price or prices()
    m = {**measured_inputs(), **(measured or {})}
    src = _Sources(d, input_kinds())
    est = Estimate(w, d)
    _capture(est, w, d, p, m, src)
    _storage_and_lookups(est, w, d, p, m, src)
    _compaction(est, w, d, p, m, src)
    _snapshots(est, w, d, p, m, src)
    if d.evidence:
        _evidence(est, d, p, m, src)
    return est


def _capture(est: Estimate, w: Workload, d: Deployment, p: dict[str, float],
             m: dict[str, float], src: _Sources) -> None:
    """Lambda, Firehose ingestion, conversion and partitioning, CloudTrail."""
    rows = w.changes_per_day * DAYS
    row_bytes = m["row_overhead_bytes"] + w.images_per_change * w.avg_item_kb * KIB
    naive_bytes = m["naive_overhead_bytes"] + w.images_per_change * w.avg_item_kb * KIB
    batch = w.batch_size or d.batch_size
    memory_mb = w.memory_mb or d.capture_memory_mb
    arm64 = d.capture_arm64 if w.arm64 is None else w.arm64
    packed = d.packs_rows if w.pack_rows is None else w.pack_rows
    invocations = math.ceil(rows / batch) if rows else 0
    gb_s_price = p["lambda_gb_second_arm64" if arm64 else "lambda_gb_second_x86"]
    call_ms = m["firehose_call_ms"]

    # Packing: rows of one batch share Firehose records of <= 500 rows and <= 1,000 KiB.
    rows_per_record = max(1, min(batch, FIREHOSE_CALL_RECORDS,
                                 FIREHOSE_RECORD_MAX // max(int(row_bytes), 1))) \
        if packed else 1
    records_per_batch = math.ceil(batch / rows_per_record)
    calls_per_batch = max(math.ceil(records_per_batch / FIREHOSE_CALL_RECORDS),
                          math.ceil(batch * row_bytes / FIREHOSE_CALL_MAX))
    record_bytes = rows_per_record * row_bytes
    firehose_records = invocations * records_per_batch
    est.figures.update({
        "row_bytes": row_bytes, "rows_per_firehose_record": rows_per_record,
        "firehose_records_month": firehose_records, "naive_firehose_records_month": rows,
        "capture_invocations_month": invocations,
    })

    # Lambda: handler CPU per record plus waiting on Firehose, billed per GB-second.
    mem_gb = memory_mb / 1024
    d_seconds = invocations * (batch * m["handler_ms_per_record"]
                               + calls_per_batch * call_ms) / 1000
    n_seconds = invocations * batch * (m["naive_ms_per_record"] + call_ms) / 1000
    req = invocations * p["lambda_request"]
    est.lines.append(Line(
        "Lambda (GB-s + requests)",
        d_seconds * mem_gb * gb_s_price + req, n_seconds * mem_gb * gb_s_price + req,
        f"{invocations:,} invocations of {batch} records, {memory_mb} MB "
        f"{'arm64' if arm64 else 'x86_64'}; {calls_per_batch} PutRecordBatch vs {batch} "
        "PutRecord per batch",
        src.setting(w.batch_size is not None, f"batch {batch}")
        + src.setting(w.memory_mb is not None, f"{memory_mb} MB")
        + src.setting(w.arm64 is not None, "arm64" if arm64 else "x86_64")
        + src.inputs(m, "handler_ms_per_record", "naive_ms_per_record", "firehose_call_ms"),
    ))

    # Firehose ingestion: per record, rounded up to 5 KB; into Iceberg per GB ingested,
    # with no 5 KB increments, at its own rate.
    iceberg = d.format == "iceberg"
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
        src.stack(f"format {d.format}")
        + src.setting(w.pack_rows is not None, "rows packed" if packed else "one row a record")
        + src.inputs(m, "row_overhead_bytes"),
    ))
    if d.format == "parquet":
        est.lines.append(Line(
            "Firehose format conversion", d_ingest / GB * p["firehose_format_conversion_gb"],
            0.0, "JSON -> Parquet, on the GB billed for ingestion",
            src.stack("Parquet conversion on")))

    # Objects Firehose writes: one per buffer flush per active partition.
    day_bytes = w.changes_per_day * row_bytes
    per_day = 86_400 / max(d.buffer_interval_s, 1)
    flushes = max(per_day, day_bytes / (d.buffer_mb * MB))
    objects = math.ceil(flushes) * DAYS if rows else 0
    naive_objects = math.ceil(max(per_day, w.changes_per_day * naive_bytes / (5 * MB))) \
        * DAYS if rows else 0
    est.figures.update({"firehose_objects_month": objects,
                        "naive_firehose_objects_month": naive_objects})
    jq_hours = rows * m["jq_ms_per_record"] / 3_600_000
    est.lines.append(Line(
        "Firehose dynamic partitioning",
        0.0 if iceberg else
        rows * row_bytes / GB * p["firehose_dynamic_partitioning_gb"]
        + objects * p["firehose_dynamic_partitioning_object"] + jq_hours * p["firehose_jq_hour"],
        0.0,
        "none: the Iceberg table's partition spec places rows" if iceberg else
        f"table_name/dt partitions: GB processed, {objects:,} objects (a flush every "
        f"{d.buffer_interval_s} s or {d.buffer_mb} MB), {jq_hours:,.2f} JQ hours",
        () if iceberg else src.stack(f"buffer {d.buffer_interval_s} s / {d.buffer_mb} MB")
        + src.inputs(m, "jq_ms_per_record"),
    ))
    cloudtrail = d.cloudtrail if w.cloudtrail is None else w.cloudtrail
    if cloudtrail:
        # At most one data event per change: a batch or transaction call logs one event.
        trail = rows / 100_000 * p["cloudtrail_data_events_100k"]
        est.lines.append(Line(
            "CloudTrail data events", trail, trail,
            f"at most {rows:,} write events (one per write call) per 100,000; the same "
            "trail either way: Streams carry no principal",
            src.setting(w.cloudtrail is not None, "trail of write data events")))


def _stored_row(w: Workload, d: Deployment, m: dict[str, float]) -> tuple[float, float]:
    """(bytes of a change row in the compacted lake, compression ratio used)."""
    ratio = m["jsonl_gzip_ratio"] if d.format == "jsonl" else m["parquet_ratio"]
    row_bytes = m["row_overhead_bytes"] + w.images_per_change * w.avg_item_kb * KIB
    return row_bytes * ratio, ratio


def _raw_closed_days(w: Workload, d: Deployment, m: dict[str, float]) -> float:
    """Closed partitions a lookup finds not yet compacted, on average: each stays raw for
    the compaction's lag after 00:00 UTC; every one of them without compaction."""
    closed = w.history_days - 1
    c = d.compaction
    if c is None:
        return float(closed)
    lag = c.schedule.lag_hours if c.schedule else m["glue_compaction_lag_hours"]
    return min(lag / HOURS, closed)


def _storage_and_lookups(est: Estimate, w: Workload, d: Deployment, p: dict[str, float],
                         m: dict[str, float], src: _Sources) -> None:
    """S3 storage and requests, Athena lookups on the layout as deployed."""
    rows = w.changes_per_day * DAYS
    iceberg = d.format == "iceberg"
    stored_row, stored_ratio = _stored_row(w, d, m)
    naive_bytes = m["naive_overhead_bytes"] + w.images_per_change * w.avg_item_kb * KIB
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
        f"({'gzip JSON Lines' if d.format == 'jsonl' else 'Parquet'}, "
        f"x{stored_ratio:.2f} of JSON"
        + (f"; + {kept - w.history_days:g} days of replaced files until snapshots expire"
           if iceberg else "") + f") vs {n_stored / GB:,.2f} GB plain JSON",
        src.stack(f"format {d.format}")
        + src.inputs(m, "jsonl_gzip_ratio" if d.format == "jsonl" else "parquet_ratio")
        + (src.inputs(m, "iceberg_snapshot_retention_days") if iceberg else ()),
    ))

    # S3 requests: Firehose's objects; compaction GETs each and PUTs the new file(s).
    objects = int(est.figures["firehose_objects_month"])
    compacts = d.compaction is not None and rows > 0
    compact_gets = objects if compacts else 0
    compact_puts = math.ceil(w.changes_per_day / 2_000_000) * DAYS if compacts else 0
    if iceberg:
        # Each Firehose commit also writes a manifest, a manifest list and a metadata file.
        objects *= 4
    naive_objects = int(est.figures["naive_firehose_objects_month"])
    est.lines.append(Line(
        "S3 requests",
        (objects + compact_puts) * p["s3_put"] + compact_gets * p["s3_get"],
        naive_objects * p["s3_put"],
        f"{objects:,} Firehose objects"
        + (f" + compaction ({compact_puts:,} PUT, {compact_gets:,} GET)" if compacts else
           " (nothing compacts them)") + f" vs {naive_objects:,} objects",
        src.stack(f"buffer {d.buffer_interval_s} s / {d.buffer_mb} MB",
                  "compaction " + ("on" if d.compaction else "off")),
    ))

    # Athena: every lookup billed >= 10 MB, rounded up to the MB. A lookup covers
    # history_days partitions: today's (open, half written on average, raw), the closed
    # ones compaction has not reached yet (raw), and the compacted rest.
    queries = w.lookups_per_day * DAYS
    sources: tuple[tuple[str, str], ...]
    if d.format in ("parquet", "iceberg"):
        raw_days = 0.5 + _raw_closed_days(w, d, m)
        compacted_days = w.history_days - 0.5 - raw_days
        raw_scan = lookup_bytes_raw(w.changes_per_day, stored_row, raw_days, m)
        compacted_scan = lookup_bytes_compacted(w.changes_per_day, stored_row,
                                                compacted_days, m)
        d_scan = raw_scan + compacted_scan
        c = d.compaction
        lag = ("no compaction" if c is None else
               f"compaction {c.schedule.expression}" if c.schedule else "Glue's optimizer")
        how = (f"{raw_days:,.2f} days raw ({raw_scan / MB:,.1f} MB: today's open partition "
               f"and, on average, those closed but not yet compacted) + "
               f"{compacted_days:,.2f} compacted ({compacted_scan / MB:,.1f} MB)")
        sources = src.stack(f"format {d.format}", lag) + src.inputs(
            m, "raw_lookup_read_ratio", "raw_over_compacted_bytes",
            "parquet_footer_bytes_per_row_group", "lookup_calibration")
        if c is not None and c.schedule is None:
            sources += src.inputs(m, "glue_compaction_lag_hours")
    else:
        # JSON has no statistics: a key lookup reads the whole table, compacted or not.
        d_scan = d_stored
        how = "JSON Lines has no statistics: the whole table"
        sources = src.stack("format jsonl")
    n_scan = n_stored
    est.figures.update({"lookup_scanned_mb": d_scan / MB, "naive_lookup_scanned_mb":
                        n_scan / MB})
    est.lines.append(Line(
        "Athena lookups",
        queries * athena_billed_bytes(d_scan) / TB * p["athena_tb_scanned"],
        queries * athena_billed_bytes(n_scan) / TB * p["athena_tb_scanned"],
        f"{queries:,} lookups: {d_scan / MB:,.1f} MB scanned each (billed "
        f"{athena_billed_bytes(d_scan) / MB:,.0f} MB; {how}) vs a {n_scan / MB:,.0f} MB "
        "full scan",
        sources,
    ))


def _compaction(est: Estimate, w: Workload, d: Deployment, p: dict[str, float],
                m: dict[str, float], src: _Sources) -> None:
    """The compute that compacts closed partitions: Lambda or Glue's optimizer."""
    c = d.compaction
    rows = w.changes_per_day * DAYS
    if c is None or not rows:
        return
    stored_row, _ = _stored_row(w, d, m)
    if c.engine == "glue":
        # Glue's optimizers rewrite what Firehose wrote (sort compaction) and expire
        # snapshots and orphans, each once a day.
        compacted_gb = rows * stored_row / GB
        dpu_hours = (compacted_gb * m["glue_compaction_dpu_hours_per_gb"]
                     + 2 * DAYS * m["glue_maintenance_dpu_hours_per_run"])
        est.figures.update({"glue_dpu_hours_month": dpu_hours})
        est.lines.append(Line(
            "Glue table optimizers", dpu_hours * p["glue_optimizer_dpu_hour"], 0.0,
            f"sort compaction of {compacted_gb:,.2f} GB + daily snapshot retention and "
            f"orphan deletion: {dpu_hours:,.2f} DPU-hours",
            src.stack("compaction, retention, orphan optimizers")
            + src.inputs(m, "glue_compaction_dpu_hours_per_gb",
                         "glue_maintenance_dpu_hours_per_run")))
        return
    assert c.schedule is not None
    # One Lambda per closed partition (a table's day). Its input is the raw partition;
    # below 1,769 MB Lambda gives a share of one vCPU, so CPU-bound work takes longer.
    raw_ratio = 1.0 if d.format == "jsonl" else m["raw_over_compacted_bytes"]
    partition_gb = w.changes_per_day / d.tables * stored_row * raw_ratio / GB
    seconds = (partition_gb * m["compaction_cpu_s_per_gb"]
               * max(1.0, m["lambda_full_vcpu_mb"] / c.memory_mb))
    invocations = d.tables * DAYS
    gb_s = invocations * seconds * c.memory_mb / 1024
    runs = c.schedule.runs_per_day * DAYS
    transitions = (runs * m["compaction_transitions_per_run"]
                   + invocations * m["compaction_transitions_per_partition"])
    usd = (gb_s * p["lambda_gb_second_arm64" if c.arm64 else "lambda_gb_second_x86"]
           + invocations * p["lambda_request"] + transitions * p["sfn_state_transition"]
           + runs * p["scheduler_invocation"])
    est.figures.update({"compaction_gb_seconds_month": gb_s,
                        "compaction_seconds_per_partition": seconds})
    needs_mb = partition_gb * m["compaction_peak_memory_per_gb"] * 1024
    over = "".join((
        f"; over the function's {c.timeout_s} s timeout" if seconds > c.timeout_s else "",
        f"; needs about {needs_mb:,.0f} MB, more than the function's {c.memory_mb} MB"
        if needs_mb > c.memory_mb else ""))
    est.lines.append(Line(
        "Compaction (Lambda, Step Functions)", usd, 0.0,
        f"{invocations:,} partitions of {partition_gb * 1024:,.1f} MB, {seconds:,.1f} s each "
        f"at {c.memory_mb} MB ({gb_s:,.0f} GB-s); {runs:g} runs of "
        f"{c.schedule.expression}, {transitions:,.0f} state transitions{over}",
        src.stack(f"schedule {c.schedule.expression}", f"{c.memory_mb} MB",
                  f"timeout {c.timeout_s} s", f"{d.tables} table(s)")
        + src.inputs(m, "compaction_cpu_s_per_gb", "compaction_peak_memory_per_gb",
                     "lambda_full_vcpu_mb",
                     "compaction_transitions_per_run", "compaction_transitions_per_partition")
        + (src.inputs(m, "raw_over_compacted_bytes") if d.format != "jsonl" else ()),
    ))


def _snapshots(est: Estimate, w: Workload, d: Deployment, p: dict[str, float],
               m: dict[str, float], src: _Sources) -> None:
    """Daily maintenance (issue 18): per table and run, four Athena queries:
    snapshot_candidates (the snapshots table only: 10 MB minimum), snapshot_check of the
    previous build (the event_id column of the two days of change partitions a late change
    can still reach: query.snapshots.LATE_ARRIVAL_HOURS), snapshot_state (the previous
    snapshot plus the day's changes) and snapshot_complete (10 MB minimum). Snapshots are
    kept as long as the history."""
    stored_row, stored_ratio = _stored_row(w, d, m)
    items = w.live_items or w.changes_per_day
    snap_row = (m["row_overhead_bytes"] + w.avg_item_kb * KIB) * stored_ratio
    snapshot_bytes = items * snap_row
    base_scan = w.changes_per_day * min(w.history_days, 2) * m["stale_check_bytes_per_row"]
    state_scan = snapshot_bytes + w.changes_per_day * stored_row
    runs = DAYS * d.maintenance.runs_per_day if w.changes_per_day else 0
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
        f"{runs:g} runs: {(state_scan + base_scan) / MB:,.0f} MB scanned each "
        f"({items:,} items of {snap_row / KIB:,.1f} KiB + a day of changes + the stale check); "
        f"{kept / GB:,.2f} GB of snapshots kept; {transitions:g} state transitions",
        src.stack(f"schedule {d.maintenance.expression}")
        + src.inputs(m, "stale_check_bytes_per_row"),
    ))


def _evidence(est: Estimate, d: Deployment, p: dict[str, float], m: dict[str, float],
              src: _Sources) -> None:
    """Issue 27: a receipt (S3 PUT) per capture invocation; per table and hour a digest
    signed with the stack's asymmetric KMS key (kms:Sign + S3 PUT); the key itself."""
    receipts = est.figures["capture_invocations_month"]
    digests = d.tables * m["evidence_digests_per_table_per_day"] * DAYS
    usd = (receipts * p["s3_put"] + digests * (p["kms_asymmetric_request"] + p["s3_put"])
           + p["kms_key_month"])
    est.lines.append(Line(
        "Evidence (receipts, signed digests)", usd, 0.0,
        f"{receipts:,.0f} receipts (one S3 PUT per capture invocation) + {digests:,.0f} "
        "signed digests (kms:Sign + S3 PUT) + one KMS signing key",
        src.stack("evidence on (a SIGN_VERIFY KMS key)", f"{d.tables} table(s)")
        + src.inputs(m, "evidence_digests_per_table_per_day"),
    ))
