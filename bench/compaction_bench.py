"""What the cost model needs about compaction (issue 30): raw against compacted lookup bytes,
and the compute one partition's compaction takes.

``python -m bench.compaction_bench [--changes N] [--days D] [--files-per-day F]``

One generated lake (``bench/gen_lake.py``: Zipf keys, ``files_per_day`` Snappy Parquet
files per day in arrival order, as Firehose leaves them; the default 288 is the stack's
300-second buffer interval), then:

* every partition is compacted with ``ddbtrail.lake.compact.compact_partition`` (the code
  the deployed compaction runs), timing each (wall and process CPU) and the peak Arrow
  memory it took;
* ``item_history`` and ``item_as_of`` for typical keys through ``ddbtrail.query.lookups``
  on the raw copy and on the compacted one, bytes counted by a pyarrow filesystem wrapper.

It prints the table for docs/benchmarks.md and the ``cost_inputs.json`` figures it backs:
``raw_lookup_read_ratio`` (bytes a lookup reads on a raw partition / the partition's
bytes), ``raw_over_compacted_bytes``, ``lookup_calibration`` and
``compaction_cpu_s_per_gb`` (of raw Parquet read).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.gen_lake import DAY_MS, START_MS, LakeSpec, generate
from bench.iostat import CountingFS
from ddbtrail.cost import lookup_bytes_compacted, measured_inputs
from ddbtrail.lake.compact import compact_partition, plan
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups

OUT = Path(__file__).parent / ".out"
TYPICAL_RANKS = (1_000, 5_000, 30_000)


def _compact_all(raw: Path, dest: Path) -> dict[str, Any]:
    """Copy ``raw`` to ``dest`` and compact every partition, one at a time, timed."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(raw, dest)
    lake = Lake.open(str(dest))
    # Every generated day is closed: compact up to the day after the last one.
    parts = plan(lake, before="2100-01-01", today="2100-01-01")
    pool = pa.default_memory_pool()
    per: list[dict[str, float]] = []
    for part in parts:
        c0, t0 = time.process_time(), time.perf_counter()
        result = compact_partition(lake, part)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if result.error:
            raise RuntimeError(f"{part.dt}: {result.error}")
        per.append({"bytes_in": part.bytes, "bytes_out": result.bytes_after,
                    "files_out": result.files_after, "rows": result.rows_after,
                    "wall_s": wall, "cpu_s": cpu})
    gb_in = sum(p["bytes_in"] for p in per) / 1024**3
    return {
        "partitions": len(per), "files_out": sum(p["files_out"] for p in per),
        "bytes_in": sum(p["bytes_in"] for p in per),
        "bytes_out": sum(p["bytes_out"] for p in per),
        "wall_s": sum(p["wall_s"] for p in per), "cpu_s": sum(p["cpu_s"] for p in per),
        "median_partition_wall_s": statistics.median(p["wall_s"] for p in per),
        "median_partition_bytes_in": statistics.median(p["bytes_in"] for p in per),
        "cpu_s_per_gb": sum(p["cpu_s"] for p in per) / gb_in,
        "wall_s_per_gb": sum(p["wall_s"] for p in per) / gb_in,
        "peak_arrow_mb": pool.max_memory() / 2**20,
    }


def _bytes_read(lake: Lake, kind: str, table: str, key: str, at_ms: int) -> tuple[int, int]:
    cfs = CountingFS(lake.fs)
    counted = Lake(lake.uri, cfs.fs, lake.root)
    if kind == "item_history":
        rows = len(lookups.item_history(counted, table, key))
    else:
        rows = int(lookups.item_as_of(counted, table, key, at_ms) is not None)
    return rows, cfs.bytes_read


def run(changes: int, days: int, files_per_day: int) -> dict[str, Any]:
    spec = LakeSpec(changes, days=days, files_per_day=files_per_day)
    out = OUT / f"compaction-{changes}-{days}d-{files_per_day}f"
    gen = generate(spec, out, naive=False)
    compaction = _compact_all(Path(gen.lake), out / "compacted")
    layouts = {"raw": Lake.open(gen.lake), "compacted": Lake.open(str(out / "compacted"))}
    at_ms = START_MS + days * DAY_MS // 2
    keys = [spec.key_of_rank(r) for r in TYPICAL_RANKS if r <= spec.items]
    lookups_out: dict[str, dict[str, float]] = {}
    for kind in ("item_history", "item_as_of"):
        for name, lake in layouts.items():
            reads = [_bytes_read(lake, kind, spec.table, k, at_ms) for k in keys]
            lookups_out[f"{kind}/{name}"] = {
                "rows": statistics.median(r for r, _ in reads),
                "bytes": statistics.median(b for _, b in reads)}
    rows = gen.rows
    compacted_row = compaction["bytes_out"] / rows
    model = lookup_bytes_compacted(rows / days, compacted_row, days,
                                   {**measured_inputs(), "lookup_calibration": 1.0})
    raw_read = lookups_out["item_history/raw"]["bytes"]
    return {
        "spec": {"changes": changes, "days": days, "files_per_day": files_per_day,
                 "rows_per_day": rows / days},
        "raw_bytes": gen.lake_bytes, "raw_files": gen.lake_files, "compaction": compaction,
        "lookups": lookups_out,
        "inputs": {
            "raw_lookup_read_ratio": raw_read / gen.lake_bytes,
            "raw_over_compacted_bytes": gen.lake_bytes / compaction["bytes_out"],
            "lookup_calibration": lookups_out["item_history/compacted"]["bytes"] / model,
            "compaction_cpu_s_per_gb": compaction["cpu_s_per_gb"],
        },
    }


def markdown(results: list[dict[str, Any]]) -> str:
    mib = 2**20
    lines = [
        "| changes | days | files/day | rows/day | lookup | raw bytes read | compacted bytes "
        "read | raw / compacted | raw read / raw lake |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r["spec"]
        for kind in ("item_history", "item_as_of"):
            raw, comp = (r["lookups"][f"{kind}/{x}"]["bytes"] for x in ("raw", "compacted"))
            lines.append(
                f"| {s['changes']:,} | {s['days']} | {s['files_per_day']} | "
                f"{s['rows_per_day']:,.0f} | {kind} | {raw / mib:,.2f} MiB | "
                f"{comp / mib:,.2f} MiB | {raw / comp:,.1f}x | {raw / r['raw_bytes']:.1%} |")
    lines += ["", "| changes | days | raw lake | compacted | compaction CPU s | wall s | "
              "median partition | CPU s per GB read | peak Arrow memory |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        s, c = r["spec"], r["compaction"]
        lines.append(
            f"| {s['changes']:,} | {s['days']} | {r['raw_bytes'] / mib:,.0f} MiB in "
            f"{r['raw_files']:,} files | {c['bytes_out'] / mib:,.0f} MiB in {c['files_out']:,} "
            f"files | {c['cpu_s']:,.1f} | {c['wall_s']:,.1f} | "
            f"{c['median_partition_bytes_in'] / mib:,.1f} MiB in "
            f"{c['median_partition_wall_s']:,.2f} s | {c['cpu_s_per_gb']:,.1f} | "
            f"{c['peak_arrow_mb']:,.0f} MiB |")
    return "\n".join(lines)


def main(quick: bool = False, *, changes: int = 1_000_000, days: tuple[int, ...] = (30, 3),
         files_per_day: int = 288) -> dict[str, Any]:
    """Both lakes (``quick``: the 30-day one only); the results, also in
    bench/.out/compaction.json."""
    load = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = [run(changes, d, files_per_day) for d in (days[:1] if quick else days)]
    out = {"date": started, "load_at_start": load, "load_at_end": os.getloadavg(),
           "results": results}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "compaction.json").write_text(json.dumps(out, indent=1, default=str))
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, nargs="+", default=[30, 3])
    parser.add_argument("--files-per-day", type=int, default=288)
    args = parser.parse_args()
    out = main(changes=args.changes, days=tuple(args.days), files_per_day=args.files_per_day)
    print(json.dumps(out, indent=1, default=str))
    print(markdown(out["results"]))


if __name__ == "__main__":
    cli()
