"""Lookup benchmark (issue 28 item 1): one item's history and as-of, against the plain query.

For each lake size (1M and 10M changes, 30 days, 100k items, Zipf hot keys) it compares,
side by side in one run, on the same data:

* ``ddbtrail``: the library API, ``ddbtrail.history`` / ``ddbtrail.as_of`` (the saved .sql
  on DuckDB, in process, warm: footers cached by ``lake.footers``; history with its
  ``what_changed`` column) on the lake after ``ddbtrail compact`` (key-sorted key-range
  files, small row groups);
* ``plain``: the simplest query a user would write on the same files, on one long-lived
  DuckDB connection: ``SELECT * FROM read_parquet('<lake>/table_name=T/*/*.parquet',
  hive_partitioning = true) WHERE item_key = ? ORDER BY sequence_number`` (as-of: the
  same with ``"timestamp" <= ?``, the last row), on the compacted files and on the raw
  lake as Firehose leaves it (96 Snappy Parquet files a day, arrival order).

Latency: wall time per lookup, warm page cache, p50 and p95 over keys x runs (typical keys:
popularity ranks 1,000, 5,000 and 30,000; hot: rank 1). Bytes: a counting pyarrow
filesystem around the lake for ddbtrail's first lookup of a key with nothing cached
(footers included: what S3 would send), and the process's ``rchar`` for every warm run
(DuckDB reads through its own file system, so ``rchar`` is how the plain query is
measured). A full scan is every byte of the compacted lake.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import ddbtrail as dt
from bench.gen_lake import DAY_MS, START_MS, LakeSpec, generate
from bench.iostat import CountingFS, rchar
from ddbtrail.lake import compact as compact_module
from ddbtrail.lake import footers
from ddbtrail.lake.compact import compact
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups

OUT = Path(__file__).parent / ".out"
TYPICAL_RANKS = (1_000, 5_000, 30_000)
HOT_RANK = 1
KINDS = ("item_history", "item_as_of")


def _compacted_copy(raw: Path, dest: Path) -> float:
    """Copy the raw lake and compact it; returns compaction seconds (cached while the
    compaction code stays the same)."""
    marker = dest / "_ddbtrail" / "compacted.json"
    layout = hashlib.sha256(Path(compact_module.__file__).read_bytes()).hexdigest()
    if marker.exists() and json.loads(marker.read_text())["layout"] == layout:
        return float(json.loads(marker.read_text())["seconds"])
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
    marker.write_text(json.dumps({"seconds": seconds, "layout": layout}))
    return seconds


def _footer_stats(lake_dir: Path) -> dict[str, float]:
    files = sorted(lake_dir.rglob("*.parquet"))
    groups = footer = rows = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        groups += meta.num_row_groups
        footer += meta.serialized_size
        rows += meta.num_rows
    return {"files": len(files), "row_groups": groups, "footer_bytes": footer,
            "footer_bytes_per_row_group": footer / max(groups, 1),
            "rows_per_row_group": rows / max(groups, 1)}


def _bytes_of(lake_dir: Path) -> int:
    return sum(p.stat().st_size for p in lake_dir.rglob("*.parquet"))


class Plain:
    """The plain DuckDB query a user would write, on one long-lived connection."""

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")

    def run(self, lake_dir: Path, table: str, kind: str, key: str, at_ms: int) -> int:
        glob = f"{lake_dir}/table_name={table}/*/*.parquet"
        source = f"read_parquet('{glob}', hive_partitioning = true)"
        if kind == "item_history":
            sql, args = (f"SELECT * FROM {source} WHERE item_key = ? "
                         "ORDER BY sequence_number"), [key]
        else:
            sql, args = (f"SELECT * FROM {source} WHERE item_key = ? AND \"timestamp\" <= ? "
                         "ORDER BY \"timestamp\" DESC, sequence_number DESC LIMIT 1"),\
                [key, at_ms]
        return len(self.con.execute(sql, args).fetchall())


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def _timed(run: Callable[[], int], runs: int) -> tuple[list[float], list[int], int]:
    """Wall ms and rchar bytes of ``runs`` runs, and the rows of the last."""
    times, reads, rows = [], [], 0
    for _ in range(runs):
        r0 = rchar()
        t0 = time.perf_counter()
        rows = run()
        times.append((time.perf_counter() - t0) * 1000)
        reads.append(rchar() - r0)
    return times, reads, rows


def bench_size(changes: int, *, runs: int) -> dict[str, Any]:
    """Every design and lookup kind on one lake size."""
    spec = LakeSpec(changes)
    out_dir = OUT / f"lake-{changes // 1_000_000}m"
    # JSON Lines only at 1M: the cost model's storage ratios come from it.
    gen = generate(spec, out_dir, naive=changes <= 1_000_000)
    raw_dir = Path(gen.lake)
    compacted_dir = out_dir / "compacted"
    compact_s = _compacted_copy(raw_dir, compacted_dir)
    lake = Lake.open(str(compacted_dir))
    table = spec.table
    at_ms = START_MS + spec.days * DAY_MS // 2
    plain = Plain()

    def ours(kind: str, key: str, on: Lake = lake) -> Callable[[], int]:
        # The public API, as a user calls it: the key as values, the instant as epoch ms.
        api_lake, values = dt.Lake(on), json.loads(key)
        if kind == "item_history":
            return lambda: dt.history(api_lake, table, values).num_rows
        return lambda: dt.as_of(api_lake, table, at_ms, key=values).num_rows

    def cold_bytes(kind: str, key: str) -> int:
        footers.clear()
        counting = CountingFS(lake.fs)
        ours(kind, key, Lake(lake.uri, counting.fs, lake.root))()
        footers.clear()
        return counting.bytes_read

    designs: dict[str, Callable[[str, str], Callable[[], int]]] = {
        "ddbtrail/compacted": ours,
        "plain/compacted": lambda kind, key: lambda: plain.run(compacted_dir, table, kind,
                                                               key, at_ms),
        "plain/raw": lambda kind, key: lambda: plain.run(raw_dir, table, kind, key, at_ms),
    }
    keys = {"typical": [spec.key_of_rank(r) for r in TYPICAL_RANKS],
            "hot": [spec.key_of_rank(HOT_RANK)]}
    results: dict[str, Any] = {}
    for kind in KINDS:
        for group, group_keys in keys.items():
            first = {k: cold_bytes(kind, k) for k in group_keys}
            samples: dict[str, dict[str, list[float]]] = {
                d: {"ms": [], "rchar": []} for d in designs}
            rows: dict[str, list[int]] = {d: [] for d in designs}
            for key in group_keys:
                for make in designs.values():
                    make(kind, key)()  # warm: page cache, footers, query translation
                # Interleaved, so every design sees the same machine load. The raw lake is
                # a scan whatever the key: fewer runs.
                # The hot key's history is big whatever reads it: fewer runs.
                reps = runs if group == "typical" else 2
                for rep in range(reps):
                    for design, make in designs.items():
                        if design == "plain/raw" and rep >= max(2, reps // 3):
                            continue
                        times, reads, n = _timed(make(kind, key), 1)
                        samples[design]["ms"] += times
                        samples[design]["rchar"] += reads
                        if rep == 0:
                            rows[design].append(n)
            for design, s in samples.items():
                p50, p95 = _percentiles(s["ms"])
                results[f"{kind}/{group}/{design}"] = {
                    "p50_ms": p50, "p95_ms": p95, "samples": len(s["ms"]),
                    "rchar": statistics.median(s["rchar"]), "rows": rows[design]}
            results[f"{kind}/{group}/ddbtrail/compacted"]["first_bytes"] = statistics.median(
                first.values())
    # The whole table at mid-month, raw against compacted (one run each: a scan).
    raw_lake = Lake.open(str(raw_dir))
    for name, on in (("raw", raw_lake), ("compacted", lake)):
        times, reads, n = _timed(lambda o=on: len(lookups.table_as_of(o, table, at_ms)), 1)
        results[f"table_as_of/all/{name}"] = {"p50_ms": times[0], "rchar": reads[0],
                                              "rows": n}
    plain.con.close()
    out: dict[str, Any] = {
        "changes": changes, "generated": gen.__dict__, "compact_seconds": compact_s,
        "raw_bytes": _bytes_of(raw_dir), "compacted_bytes": _bytes_of(compacted_dir),
        "footer": _footer_stats(compacted_dir), "lookups": results,
    }
    if gen.naive_bytes:
        out.update(_naive_ratios(gen, compacted_dir, out["compacted_bytes"]))
    return out


def _naive_ratios(gen: Any, compacted_dir: Path, compacted_bytes: int) -> dict[str, float]:
    """Storage figures of the cost model: Parquet and gzip against JSON Lines, and the
    JSON Lines bytes of a row beyond its two images (escaping included)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    sample = next(Path(gen.naive).glob("*.jsonl")).read_bytes()[: 64 << 20]
    image_bytes = pc.mean(ds.dataset(str(compacted_dir), format="parquet").to_table(
        columns=["size_bytes"]).column("size_bytes")).as_py()
    return {"parquet_ratio": compacted_bytes / gen.naive_bytes,
            "jsonl_gzip_ratio": len(gzip.compress(sample, 6)) / len(sample),
            "row_overhead_bytes": gen.naive_bytes / gen.rows - image_bytes}


def main(quick: bool = False) -> dict[str, Any]:
    """1M changes (and 10M unless ``quick``); see the module docstring."""
    sizes = [1_000_000] if quick else [1_000_000, 10_000_000]
    runs = 3 if quick else 7
    return {"sizes": [bench_size(n, runs=runs) for n in sizes]}


def markdown(result: dict[str, Any]) -> str:
    """Tables for docs/benchmarks.md."""
    lines = []
    for size in result["sizes"]:
        gen = size["generated"]
        look = size["lookups"]
        foot = size["footer"]
        full = size["compacted_bytes"]
        lines += [
            f"#### {size['changes']:,} changes (raw: {gen['lake_files']:,} Firehose files, "
            f"{size['raw_bytes'] / 2**20:,.0f} MiB; compacted: {foot['files']:,} files, "
            f"{full / 2**20:,.0f} MiB, {foot['rows_per_row_group']:,.0f} rows per row "
            f"group, {size['compact_seconds']:,.0f} s to compact)",
            "",
            "| lookup | keys | design | p50 ms | p95 ms | runs | rows per key | bytes read "
            "(rchar, warm) | first lookup's bytes (footers included) | % of a full scan |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for kind in KINDS:
            for group in ("typical", "hot"):
                for design in ("ddbtrail/compacted", "plain/compacted", "plain/raw"):
                    r = look[f"{kind}/{group}/{design}"]
                    first = r.get("first_bytes")
                    lines.append(
                        f"| {kind} | {group} | {design} | {r['p50_ms']:,.1f} | "
                        f"{r['p95_ms']:,.1f} | {r['samples']} | "
                        f"{' / '.join(f'{n:,}' for n in r['rows'])} | "
                        f"{r['rchar'] / 2**20:,.2f} MiB | "
                        + (f"{first / 2**20:,.2f} MiB | {100 * first / full:.2f}% |"
                           if first is not None else " | |"))
        lines += ["", "| lookup | keys | ddbtrail p50 | plain on the compacted files / "
                  "ddbtrail | plain on the raw lake / ddbtrail |", "|---|---|---:|---:|---:|"]
        for kind in KINDS:
            for group in ("typical", "hot"):
                ours = look[f"{kind}/{group}/ddbtrail/compacted"]["p50_ms"]
                lines.append(
                    f"| {kind} | {group} | {ours:,.1f} ms | "
                    f"{look[f'{kind}/{group}/plain/compacted']['p50_ms'] / ours:,.1f}x | "
                    f"{look[f'{kind}/{group}/plain/raw']['p50_ms'] / ours:,.1f}x |")
        for name in ("raw", "compacted"):
            r = look[f"table_as_of/all/{name}"]
            lines.append(f"\n`table_as_of` of every item at mid-month, {name}: "
                         f"{r['p50_ms']:,.0f} ms, {r['rows']:,} items, "
                         f"{r['rchar'] / 2**20:,.0f} MiB read (rchar).")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    res = main(quick="--quick" in sys.argv)
    print(json.dumps(res, indent=1, default=str))
    print(markdown(res))
