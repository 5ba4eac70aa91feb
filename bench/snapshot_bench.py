"""Snapshot benchmark (issue 18): table_as_of and restore over 30 days, daily snapshots vs none.

For each lake size (1M and 3M changes over 30 days, 100k items, Zipf hot keys; the lakes
of ``bench/gen_lake.py``, compacted as ``bench/lookup_bench.py`` does) it builds a copy
with one state snapshot per day (``ddbtrail.query.snapshots.build`` at the end of each
UTC day, each from the previous one), then measures, side by side in one run:

* ``table_as_of`` half a day after the last snapshot (day 30, 12:00 UTC), through
  ``ddbtrail.query.lookups.table_as_of``: with the snapshots (the latest snapshot plus the
  changes after it, the stale check included) and without them (the whole history);
* ``restore``: ``ddbtrail.query.restore.plan_restore`` of the whole table at that instant
  (the as-of plus rebuilding every typed item), with and without snapshots.

The strongest simple alternative is the compacted lake with no snapshots (key-sorted,
small row groups: what ``ddbtrail compact`` leaves). Wall time is the median of ``runs``
warm runs, alternating between the two lakes; bytes are counted by a pyarrow filesystem
wrapper. Also reported: the time of
the first (full) build and of a daily incremental one.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.gen_lake import DAY_MS, START_MS, LakeSpec, generate
from bench.iostat import CountingFS
from bench.lookup_bench import _compacted_copy
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups, restore, snapshots

OUT = Path(__file__).parent / ".out"


def _daily_snapshots(src: Path, dest: Path, spec: LakeSpec) -> dict[str, float]:
    """Copy ``src`` to ``dest`` and build one snapshot per day; seconds (cached)."""
    marker = dest / "_ddbtrail" / "snapshots.txt"
    if marker.exists():
        first, daily = marker.read_text().split()
        return {"first_build_s": float(first), "daily_build_s": float(daily)}
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    lake = Lake.open(str(dest))
    times = []
    for day in range(1, spec.days + 1):
        t0 = time.perf_counter()
        snapshots.build(lake, spec.table, START_MS + day * DAY_MS - 1)
        times.append(time.perf_counter() - t0)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{times[0]} {statistics.median(times[1:])}")
    return {"first_build_s": times[0], "daily_build_s": statistics.median(times[1:])}


def _measure(run: Callable[[Lake], int], lakes: dict[str, Lake],
             runs: int) -> dict[str, dict[str, float]]:
    """Each lake's median wall ms, rows and bytes; runs alternate between the lakes, so
    a change of load on the shared machine hits all of them alike."""
    for lake in lakes.values():
        run(lake)  # warm: page cache, imports, query translation
    times: dict[str, list[float]] = {name: [] for name in lakes}
    rows: dict[str, int] = {}
    for _ in range(runs):
        for name, lake in lakes.items():
            t0 = time.perf_counter()
            rows[name] = run(lake)
            times[name].append((time.perf_counter() - t0) * 1000)
    out = {}
    for name, lake in lakes.items():
        counting = CountingFS(lake.fs)
        run(Lake(lake.uri, counting.fs, lake.root))
        out[name] = {"ms": statistics.median(times[name]), "rows": rows[name],
                     "bytes": counting.bytes_read}
    return out


def bench_size(changes: int, *, runs: int, items: int = 100_000,
               out: Path = OUT) -> dict[str, Any]:
    spec = LakeSpec(changes, items=items)
    out_dir = out / (f"lake-{changes // 1_000_000}m" if items == 100_000
                     else f"lake-{changes}-{items}")
    gen = generate(spec, out_dir, naive=False)
    compacted = out_dir / "compacted"
    compact_s = _compacted_copy(Path(gen.lake), compacted)
    snapped = out_dir / "daily-snapshots"
    builds = _daily_snapshots(compacted, snapped, spec)
    at_ms = START_MS + (spec.days - 1) * DAY_MS + DAY_MS // 2
    table = spec.table
    lakes = {"none": Lake.open(str(compacted)), "daily": Lake.open(str(snapped))}

    def as_of(lake: Lake) -> int:
        return len(lookups.table_as_of(lake, table, at_ms))

    def plan(lake: Lake) -> int:
        return len(restore.plan_restore(lake, table, at_ms).items)

    results: dict[str, Any] = {}
    for kind, run in (("table_as_of", as_of), ("restore", plan)):
        for name, measured in _measure(run, lakes, runs).items():
            results[f"{kind}/{name}"] = measured
    explain: list[str] = []
    lookups.table_as_of(lakes["daily"], table, at_ms, explain=explain)
    return {"changes": changes, "compact_seconds": compact_s, **builds,
            "lake_bytes": sum(f.size for f in lakes["none"].data_files()),
            "snapshot_bytes": sum(f.size for f in lakes["daily"].snapshot_files()),
            "explain": explain, "results": results}


def main(sizes: tuple[int, ...] = (1_000_000, 3_000_000), runs: int = 3) -> dict[str, Any]:
    return {"load_average": os.getloadavg(), "sizes": [bench_size(n, runs=runs) for n in sizes]}


def markdown(result: dict[str, Any]) -> str:
    """The table for docs/benchmarks.md."""
    load = ", ".join(f"{x:.2f}" for x in result["load_average"])
    lines = [f"Load average at the start: {load}.", "",
             "| changes | lookup | snapshots | median ms (wall) | rows | bytes read | "
             "vs none |", "|---:|---|---|---:|---:|---:|---:|"]
    for size in result["sizes"]:
        r = size["results"]
        for kind in ("table_as_of", "restore"):
            base = r[f"{kind}/none"]["ms"]
            for name in ("none", "daily"):
                m = r[f"{kind}/{name}"]
                lines.append(f"| {size['changes']:,} | {kind} | {name} | {m['ms']:,.0f} | "
                             f"{m['rows']:,} | {m['bytes'] / 2**20:,.1f} MiB | "
                             f"{base / m['ms']:,.1f}x |")
    lines.append("")
    for size in result["sizes"]:
        lines.append(f"- {size['changes']:,} changes: compacted lake "
                     f"{size['lake_bytes'] / 2**20:,.0f} MiB; 30 daily snapshots "
                     f"{size['snapshot_bytes'] / 2**20:,.0f} MiB; first build "
                     f"{size['first_build_s']:,.1f} s, a daily build "
                     f"{size['daily_build_s']:,.1f} s (median).")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    quick = "--quick" in sys.argv
    res = main((1_000_000,) if quick else (1_000_000, 3_000_000))
    print(json.dumps(res, indent=1, default=str))
    print(markdown(res))
