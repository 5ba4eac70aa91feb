"""Snapshot benchmark (issues 18, 28): table_as_of across a month, daily snapshots vs none.

For each lake (30 days of changes from ``bench/gen_lake.py``, Zipf hot keys, compacted as
``bench/lookup_bench.py`` does) it builds a copy with one state snapshot per day
(``ddbtrail.query.snapshots.build`` at the end of each UTC day, each from the previous
one; cached under bench/.out), then measures, side by side in one run:

* ``table_as_of`` through ``ddbtrail.query.lookups.table_as_of`` at 12:00 UTC of days
  2, 5, 10, 15, 20, 25 and 30: with the snapshots (the latest snapshot before the instant
  plus the half day of changes after it, the stale check included) and without them (the
  whole history up to the instant). At every instant the two answers must be the same
  rows, every column; the run stops with an error if they are not, or if the lake with
  snapshots answered from the history (no usable snapshot);
* ``restore``: ``ddbtrail.query.restore.plan_restore`` of the whole table at the last
  instant (the as-of plus rebuilding every typed item), with and without snapshots.

Lakes: 1M changes over 100,000 items (33k changes a day; live items grow through the
month as new keys appear, so the state a snapshot holds grows too), 1M changes over
10,000 items (live items flat after the first days: what the time with snapshots does
when only the days grow) and 3M changes over 100,000 items. ``quick``: the first only,
fewer runs.

The strongest simple alternative is the compacted lake with no snapshots (key-sorted,
small row groups: what ``ddbtrail compact`` leaves). Wall time is the median of ``runs``
warm runs, alternating between the two lakes; bytes are counted by a pyarrow filesystem
wrapper (bench/iostat.py) on one more run. ``plan ms`` is ``snapshots.plan`` alone: finding
the snapshot and checking it is not stale. Also reported: the time of the first (full)
build and of a daily incremental one.
"""

from __future__ import annotations

import hashlib
import json
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
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups, restore, snapshots

OUT = Path(__file__).parent / ".out"
DAYS_ASKED = (2, 5, 10, 15, 20, 25, 30)  # as-of at 12:00 UTC of these days


def _daily_snapshots(src: Path, dest: Path, spec: LakeSpec) -> dict[str, float]:
    """Copy ``src`` to ``dest`` and build one snapshot per day; seconds (cached while
    ``src`` is the same compacted copy)."""
    marker = dest / "_ddbtrail" / "snapshots.json"
    source = (src / "_ddbtrail" / "compacted.json").read_text()
    if marker.exists() and json.loads(marker.read_text())["source"] == source:
        done = json.loads(marker.read_text())
        return {"first_build_s": done["first"], "daily_build_s": done["daily"]}
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
    marker.write_text(json.dumps({"first": times[0], "daily": statistics.median(times[1:]),
                                  "source": source}))
    return {"first_build_s": times[0], "daily_build_s": statistics.median(times[1:])}


def _measure(run: Callable[[Lake], list[dict[str, Any]]], lakes: dict[str, Lake],
             runs: int) -> tuple[dict[str, dict[str, float]], dict[str, list[dict[str, Any]]]]:
    """Each lake's median wall ms, rows and bytes, and the rows of its counted run; runs
    alternate between the lakes, so a change of load on the shared machine hits all of
    them alike."""
    for lake in lakes.values():
        run(lake)  # warm: page cache, imports, query translation
    times: dict[str, list[float]] = {name: [] for name in lakes}
    for _ in range(runs):
        for name, lake in lakes.items():
            t0 = time.perf_counter()
            run(lake)
            times[name].append((time.perf_counter() - t0) * 1000)
    out, answers = {}, {}
    for name, lake in lakes.items():
        counting = CountingFS(lake.fs)
        answers[name] = run(Lake(lake.uri, counting.fs, lake.root))
        out[name] = {"ms": statistics.median(times[name]), "rows": len(answers[name]),
                     "bytes": counting.bytes_read}
    return out, answers


def _digest(rows: list[dict[str, Any]]) -> str:
    """A hash of the full answer: every column of every row, in item_key order."""
    h = hashlib.sha256()
    for row in sorted(rows, key=lambda r: str(r["item_key"])):
        h.update(json.dumps(row, sort_keys=True, default=str).encode())
    return h.hexdigest()[:12]


def _plan_ms(lake: Lake, table: str, at_ms: int, runs: int) -> float:
    snapshots.plan(lake, table, at_ms)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        snapshots.plan(lake, table, at_ms)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_size(changes: int, *, runs: int, items: int = 100_000,
               days_asked: tuple[int, ...] = DAYS_ASKED, out: Path = OUT) -> dict[str, Any]:
    spec = LakeSpec(changes, items=items)
    out_dir = out / (f"lake-{changes // 1_000_000}m" if items == 100_000
                     else f"lake-{changes}-{items}")
    gen = generate(spec, out_dir, naive=False)
    compacted = out_dir / "compacted"
    compact_s = _compacted_copy(Path(gen.lake), compacted)
    snapped = out_dir / "daily-snapshots"
    builds = _daily_snapshots(compacted, snapped, spec)
    table = spec.table
    lakes = {"none": Lake.open(str(compacted)), "daily": Lake.open(str(snapped))}
    def as_of(at_ms: int) -> Callable[[Lake], list[dict[str, Any]]]:
        return lambda lake: lookups.table_as_of(lake, table, at_ms)

    instants = []
    for day in days_asked:
        at_ms = START_MS + (day - 1) * DAY_MS + DAY_MS // 2
        measured, answers = _measure(as_of(at_ms), lakes, runs)
        digests = {name: _digest(rows) for name, rows in answers.items()}
        if answers["daily"] != answers["none"]:
            raise AssertionError(
                f"{changes:,} changes, day {day}: table_as_of with daily snapshots "
                f"({len(answers['daily']):,} rows, {digests['daily']}) differs from the "
                f"history ({len(answers['none']):,} rows, {digests['none']})")
        explain: list[str] = []
        lookups.table_as_of(lakes["daily"], table, at_ms, explain=explain)
        if explain[0].startswith("snapshot: none"):
            raise AssertionError(f"{changes:,} changes, day {day}: no usable snapshot: "
                                 + "; ".join(explain))
        instants.append({"day": day, "at": iso_ms(at_ms), "results": measured,
                         "identical": True, "digest": digests["daily"],
                         "plan_ms": _plan_ms(lakes["daily"], table, at_ms, runs),
                         "explain": explain})
    last_ms = START_MS + (days_asked[-1] - 1) * DAY_MS + DAY_MS // 2
    restored, _ = _measure(
        lambda lake: restore.plan_restore(lake, table, last_ms).items, lakes, min(runs, 3))
    return {"changes": changes, "items": items, "compact_seconds": compact_s, **builds,
            "lake_bytes": sum(f.size for f in lakes["none"].data_files()),
            "snapshot_bytes": sum(f.size for f in lakes["daily"].snapshot_files()),
            "instants": instants, "restore": {"day": days_asked[-1], "results": restored}}


def main(quick: bool = False) -> dict[str, Any]:
    """Quick: the 1M-change lake only, 2 runs; else three lakes, 3 runs."""
    lakes = [(1_000_000, 100_000)] if quick else \
        [(1_000_000, 100_000), (1_000_000, 10_000), (3_000_000, 100_000)]
    runs = 2 if quick else 3
    started, load = time.perf_counter(), os.getloadavg()
    sizes = [bench_size(n, items=items, runs=runs) for n, items in lakes]
    return {"load_average": load, "load_average_end": os.getloadavg(), "runs": runs,
            "seconds": time.perf_counter() - started, "sizes": sizes}


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def markdown(result: dict[str, Any]) -> str:
    """The tables for docs/benchmarks.md."""
    load, end = (", ".join(f"{x:.2f}" for x in result[k])
                 for k in ("load_average", "load_average_end"))
    lines = [f"Load average at the start: {load}; at the end: {end}. Median of "
             f"{result['runs']} warm runs; the whole run took {result['seconds'] / 60:.0f} "
             "min.", "",
             "| changes | items | as-of at | rows | ms, none | ms, daily | plan ms | "
             "MiB read, none | MiB read, daily | none / daily | identical |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for size in result["sizes"]:
        for inst in size["instants"]:
            none, daily = inst["results"]["none"], inst["results"]["daily"]
            lines.append(
                f"| {size['changes']:,} | {size['items']:,} | day {inst['day']} 12:00 | "
                f"{daily['rows']:,} | {none['ms']:,.0f} | {daily['ms']:,.0f} | "
                f"{inst['plan_ms']:,.1f} | {_mib(none['bytes'])} | {_mib(daily['bytes'])} | "
                f"{none['ms'] / daily['ms']:,.1f}x | {'yes' if inst['identical'] else 'NO'} |")
    lines += ["", "| changes | items | restore at | rows | ms, none | ms, daily | "
              "MiB read, none | MiB read, daily |", "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for size in result["sizes"]:
        r = size["restore"]["results"]
        lines.append(f"| {size['changes']:,} | {size['items']:,} | day "
                     f"{size['restore']['day']} 12:00 | {r['daily']['rows']:,} | "
                     f"{r['none']['ms']:,.0f} | {r['daily']['ms']:,.0f} | "
                     f"{_mib(r['none']['bytes'])} | {_mib(r['daily']['bytes'])} |")
    lines.append("")
    for size in result["sizes"]:
        first, last = size["instants"][0], size["instants"][-1]
        grow = {k: last["results"][k]["ms"] / first["results"][k]["ms"]
                for k in ("none", "daily")}
        lines.append(
            f"- {size['changes']:,} changes, {size['items']:,} items: from day "
            f"{first['day']} to day {last['day']} the as-of grows {grow['none']:.1f}x "
            f"without snapshots, {grow['daily']:.1f}x with them (rows "
            f"{first['results']['daily']['rows']:,} to {last['results']['daily']['rows']:,}); "
            f"compacted lake {size['lake_bytes'] / 2**20:,.0f} MiB; 30 daily snapshots "
            f"{size['snapshot_bytes'] / 2**20:,.0f} MiB; first build "
            f"{size['first_build_s']:,.1f} s, a daily build {size['daily_build_s']:,.1f} s "
            "(median).")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    res = main("--quick" in sys.argv)
    print(json.dumps(res, indent=1, default=str))
    print(markdown(res))
