"""Lookup benchmark (issue 7 item 1c): history and as-of lookups, bytes read and latency.

For each lake size (1M and 10M changes, 30 days, 100k items, Zipf hot keys) it compares,
in one run, on the same data:

* ``raw``: the lake as Firehose leaves it (96 Snappy Parquet files a day, arrival order);
* ``compacted``: the same lake after ``ddbtrail.lake.compact`` (key-sorted, small row groups);
* ``naive``: JSON Lines with no partitions (every lookup is a full scan).

Lookups go through the real code paths: ``ddbtrail.query.lookups.item_history`` / ``item_as_of``
(the saved .sql files on DuckDB over pyarrow datasets) for raw and compacted; the same
saved query on a DuckDB view over ``read_json`` for naive. Bytes: a counting pyarrow
filesystem (raw, compacted) and the process's ``rchar`` (all three). Latency: wall time
per lookup, warm page cache, median over keys x runs.
"""

from __future__ import annotations

import gzip
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.gen_lake import DAY_MS, START_MS, LakeSpec, generate
from bench.iostat import CountingFS, rchar
from ddbtrail.core.row import duckdb_columns
from ddbtrail.lake.compact import compact
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups
from ddbtrail.query.saved import load, run_duckdb

OUT = Path(__file__).parent / ".out"
TYPICAL_RANKS = (1_000, 5_000, 30_000)
HOT_RANK = 1


def _naive_connection(naive_dir: str) -> Any:
    import duckdb

    con = duckdb.connect()
    cols = duckdb_columns(include_partitions=True)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"CREATE VIEW changes AS SELECT * FROM read_json('{naive_dir}/*.jsonl', "
        f"format='newline_delimited', columns={cols!r})")
    return con


def _naive_lookup(naive_dir: str, name: str, values: dict[str, str]) -> int:
    con = _naive_connection(naive_dir)
    try:
        return int(run_duckdb(load(name), values, con).num_rows)
    finally:
        con.close()


def _compacted_copy(raw: Path, dest: Path) -> float:
    """Copy the raw lake and compact it; returns compaction seconds (cached)."""
    marker = dest / "_ddbtrail" / "compacted.txt"
    if marker.exists():
        return float(marker.read_text())
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(raw, dest)
    started = time.perf_counter()
    results = compact(Lake.open(str(dest)))
    seconds = time.perf_counter() - started
    bad = [r.error for r in results if r.error]
    if bad:
        raise RuntimeError(f"compaction failed: {bad[:3]}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(seconds))
    return seconds


def _footer_stats(lake_dir: Path) -> dict[str, float]:
    files = sorted(lake_dir.rglob("*.parquet"))
    groups = footer = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        groups += meta.num_row_groups
        footer += meta.serialized_size
    return {"files": len(files), "row_groups": groups, "footer_bytes": footer,
            "footer_bytes_per_row_group": footer / max(groups, 1),
            "rows_per_row_group": 0.0}


def _measure(run: Callable[[], int], counted: Callable[[], tuple[int, int]] | None,
             runs: int, *, warm: bool = True) -> dict[str, float]:
    """Latency (ms, median of ``runs``), rows, rchar bytes and counted bytes of one lookup."""
    if warm:
        run()  # page cache, imports, query translation
    times, cpu, rchars = [], [], []
    rows = 0
    for _ in range(runs):
        r0 = rchar()
        c0 = time.process_time()
        t0 = time.perf_counter()
        rows = run()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        rchars.append(rchar() - r0)
    out = {"ms": statistics.median(times), "cpu_ms": statistics.median(cpu), "rows": rows,
           "rchar": statistics.median(rchars)}
    if counted is not None:
        _, out["bytes"] = counted()
    else:
        out["bytes"] = out["rchar"]
    return out


def bench_size(changes: int, *, runs: int) -> dict[str, Any]:
    """Every layout and lookup kind on one lake size."""
    spec = LakeSpec(changes)
    out_dir = OUT / f"lake-{changes // 1_000_000}m"
    gen = generate(spec, out_dir)
    raw_dir = Path(gen.lake)
    compacted_dir = out_dir / "compacted"
    compact_s = _compacted_copy(raw_dir, compacted_dir)
    layouts = {"raw": Lake.open(str(raw_dir)), "compacted": Lake.open(str(compacted_dir))}
    at_ms = START_MS + spec.days * DAY_MS // 2
    at_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_ms / 1000))
    table = spec.table

    def lake_runner(lake: Lake, kind: str, key: str) -> Callable[[], int]:
        if kind == "item_history":
            return lambda: len(lookups.item_history(lake, table, key))
        return lambda: int(lookups.item_as_of(lake, table, key, at_ms) is not None)

    def counted(lake: Lake, kind: str, key: str) -> Callable[[], tuple[int, int]]:
        def go() -> tuple[int, int]:
            cfs = CountingFS(lake.fs)
            n = lake_runner(Lake(lake.uri, cfs.fs, lake.root), kind, key)()
            return n, cfs.bytes_read
        return go

    keys = {"hot": [spec.key_of_rank(HOT_RANK)],
            "typical": [spec.key_of_rank(r) for r in TYPICAL_RANKS]}
    results: dict[str, Any] = {}
    for kind in ("item_history", "item_as_of"):
        for group, group_keys in keys.items():
            for layout in ("raw", "compacted", "naive"):
                samples = []
                # Full scans (naive, raw) cost the same whatever the key: one run each.
                full_scan = layout != "compacted"
                for key in group_keys:
                    if layout == "naive":
                        values = {"table_name": table, "item_key": key}
                        if kind == "item_as_of":
                            values["at"] = at_iso
                        samples.append(_measure(
                            lambda v=values, q=kind: _naive_lookup(gen.naive, q, v), None,
                            1, warm=False))
                    else:
                        lake = layouts[layout]
                        samples.append(_measure(lake_runner(lake, kind, key),
                                                counted(lake, kind, key),
                                                1 if full_scan else runs, warm=not full_scan))
                results[f"{kind}/{group}/{layout}"] = {
                    k: statistics.median(s[k] for s in samples)
                    for k in ("ms", "cpu_ms", "rows", "rchar", "bytes")}
                if group == "typical" and layout == "compacted":
                    results[f"{kind}/{group}/{layout}"]["max_ms"] = max(
                        s["ms"] for s in samples)
    # table_as_of: the whole table at mid-month (raw vs compacted; naive would be one scan).
    for layout, lake in layouts.items():
        results[f"table_as_of/all/{layout}"] = _measure(
            lambda lk=lake: len(lookups.table_as_of(lk, table, at_ms)), None, 1, warm=False)

    naive_sample = next(Path(gen.naive).glob("*.jsonl"))
    sample = naive_sample.read_bytes()[: 64 << 20]
    compacted_bytes = sum(f.size for f in layouts["compacted"].data_files())
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    image_bytes = pc.mean(ds.dataset(str(compacted_dir), format="parquet").to_table(
        columns=["size_bytes"]).column("size_bytes")).as_py()
    return {
        # JSON Lines bytes of a row beyond its two images (escaping included).
        "row_overhead_bytes": gen.naive_bytes / gen.rows - image_bytes,
        "changes": changes, "generated": gen.__dict__, "compact_seconds": compact_s,
        "compacted_bytes": compacted_bytes,
        "footer": _footer_stats(compacted_dir),
        "parquet_ratio": compacted_bytes / gen.naive_bytes,
        "jsonl_gzip_ratio": len(gzip.compress(sample, 6)) / len(sample),
        "lookups": results,
    }


def main(quick: bool = False) -> dict[str, Any]:
    """1M changes (and 10M unless ``quick``); see the module docstring."""
    sizes = [1_000_000] if quick else [1_000_000, 10_000_000]
    runs = 3 if quick else 5
    return {"sizes": [bench_size(n, runs=runs) for n in sizes]}


def markdown(result: dict[str, Any]) -> str:
    """Tables for docs/benchmarks.md."""
    lines = []
    for size in result["sizes"]:
        gen = size["generated"]
        look = size["lookups"]
        lines += [
            f"#### {size['changes']:,} changes ({gen['lake_files']:,} Firehose files, "
            f"{gen['lake_bytes'] / 2**20:,.0f} MiB Parquet; naive "
            f"{gen['naive_bytes'] / 2**20:,.0f} MiB JSON Lines; compacted "
            f"{size['compacted_bytes'] / 2**20:,.0f} MiB in {size['footer']['files']} files, "
            f"{size['compact_seconds']:,.0f} s to compact)",
            "",
            "| lookup | keys | layout | median ms (wall) | median ms (CPU, all threads) | rows "
            "| bytes read | % of naive bytes |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for kind in ("item_history", "item_as_of"):
            for group in ("typical", "hot"):
                naive_bytes = look[f"{kind}/{group}/naive"]["bytes"]
                for layout in ("naive", "raw", "compacted"):
                    r = look[f"{kind}/{group}/{layout}"]
                    lines.append(
                        f"| {kind} | {group} | {layout} | {r['ms']:,.0f} | {r['cpu_ms']:,.0f} | "
                        f"{r['rows']:,.0f} | "
                        f"{r['bytes'] / 2**20:,.2f} MiB | "
                        f"{100 * r['bytes'] / naive_bytes:,.2f}% |")
        for layout in ("raw", "compacted"):
            r = look[f"table_as_of/all/{layout}"]
            lines.append(f"| table_as_of | all items | {layout} | {r['ms']:,.0f} | "
                         f"{r['cpu_ms']:,.0f} | {r['rows']:,.0f} | "
                         f"{r['rchar'] / 2**20:,.2f} MiB (rchar) | |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    res = main(quick="--quick" in sys.argv)
    print(json.dumps(res, indent=1, default=str))
    print(markdown(res))
