"""Iceberg benchmark (issue 28 part 2): the lake's Iceberg table at the scale of the Hive one.

For each generated lake (1M and 10M changes, 30 days, 100k items, 96 Firehose files a day;
``bench/gen_lake.py``), in one run:

* **append**: the raw lake's rows appended to a fresh ``ddbtrail.changes`` in
  ``<OUT>/iceberg-<n>m``, one commit per ``FILES_PER_COMMIT`` Firehose files (an hour of
  them, as a Firehose Iceberg stream commits), through ``IcebergLake.append``: manifests
  merged, snapshots expired by the retention policy as it goes. Rows/s, commits, commit
  time early and late (flat when the metadata is bounded);
* **compaction**: that table after ``ddbtrail compact``'s rules (one commit per partition),
  against Hive compaction of the same rows (``ddbtrail.lake.compact.compact`` on a Hive copy,
  cached by ``bench.lookup_bench._compacted_copy``);
* **lookups** on the compacted table, warm, in process, interleaved so load hits all alike:
  ``query.lookups.item_history`` / ``item_as_of`` (files planned by partition values, then
  per-file ``item_key`` bounds) against ONE PLAIN DUCKDB QUERY a user would write,
  ``SELECT * FROM read_parquet([files]) WHERE item_key = ? ORDER BY sequence_number`` on a
  long-lived connection, over the table's current data files and over the raw Hive lake.
  p50 and p95 over keys x runs; bytes: ``data`` (what ddbtrail read from data files, a
  counting filesystem: warm, and cold on its first call) and ``rchar`` (every byte the
  process read).

Once per run, **metadata after 1,000 commits**: a small synthetic series of 1,000 appends,
with the live metadata (current metadata.json, manifest lists and manifests of live
snapshots) and everything in the metadata folder, and every row read back.

``python -m bench.iceberg_bench [--quick]`` (quick: 1M only, fewer runs).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.gen_lake import DAY_MS, START_MS, LakeSpec, build_table, generate
from bench.iostat import CountingFS, rchar
from bench.lookup_bench import HOT_RANK, OUT, TYPICAL_RANKS, _compacted_copy
from ddbtrail.core.row import arrow_schema
from ddbtrail.lake import iceberg
from ddbtrail.lake.compact import compact_iceberg_partition, plan_iceberg
from ddbtrail.lake.files import Lake
from ddbtrail.lake.iceberg import IcebergLake
from ddbtrail.query import lookups

FILES_PER_COMMIT = 4
SERIES_COMMITS = 1_000
SERIES_ROWS = 50_000
RAW_RUNS = 2  # runs of the plain query on the raw lake (it reads every file every time)
HOT_RUNS_10M = 3
PLAIN_SQL = "SELECT * FROM read_parquet({files}) WHERE item_key = ? ORDER BY sequence_number"


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _table_stats(lake: Lake) -> dict[str, Any]:
    """Snapshots, manifests of the current snapshot, and metadata bytes: live (what a
    commit or a reader of the table reads) and on disk (until orphans are removed)."""
    ice = IcebergLake(lake)
    table = ice.table()
    snapshot = table.current_snapshot()
    live = ice.referenced_metadata()
    folder = Path(lake.root, "ddbtrail", "changes", "metadata")
    return {
        "snapshots": len(table.metadata.snapshots),
        "manifests": len(snapshot.manifests(table.io)) if snapshot else 0,
        "metadata_json_bytes": os.path.getsize(iceberg.file_path(lake,
                                                                 table.metadata_location)),
        "live_metadata_bytes": sum(os.path.getsize(p) for p in live),
        "live_metadata_files": len(live),
        "disk_metadata_bytes": sum(p.stat().st_size for p in folder.iterdir()),
        "disk_metadata_files": sum(1 for _ in folder.iterdir()),
    }


def _commit_times(ms: list[float]) -> dict[str, float]:
    tenth = max(len(ms) // 10, 1)
    return {"commits": len(ms), "first_tenth_ms": statistics.median(ms[:tenth]),
            "last_tenth_ms": statistics.median(ms[-tenth:]), "max_ms": max(ms)}


def _ingest(raw: Path, dest: Path, table: str) -> dict[str, Any]:
    """The raw lake's rows appended to a fresh Iceberg lake, one commit per
    ``FILES_PER_COMMIT`` files, in arrival order."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    lake = Lake.open(str(dest))
    ice = IcebergLake(lake, create=True)
    files = sorted(raw.rglob("*.parquet"))
    schema = arrow_schema(include_partitions=True)
    rows = 0
    commit_ms: list[float] = []
    started = time.perf_counter()
    for start in range(0, len(files), FILES_PER_COMMIT):
        parts = []
        for f in files[start:start + FILES_PER_COMMIT]:
            t = pq.read_table(f)
            dt = f.parent.name.removeprefix("dt=")
            t = t.append_column("table_name", pa.array([table] * t.num_rows))
            t = t.append_column("dt", pa.array([dt] * t.num_rows))
            parts.append(t.select(schema.names).cast(schema))
        batch = pa.concat_tables(parts)
        t0 = time.perf_counter()
        ice.append(batch)
        commit_ms.append((time.perf_counter() - t0) * 1000)
        rows += batch.num_rows
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "rows_per_s": rows / seconds,
            **_commit_times(commit_ms), **_table_stats(lake)}


def _compact(lake_dir: Path) -> dict[str, Any]:
    """Compact the Iceberg lake in place with ``ddbtrail compact``'s rules."""
    lake = Lake.open(str(lake_dir))
    ice = IcebergLake(lake)
    started = time.perf_counter()
    parts = plan_iceberg(ice, before="2100-01-01", today="2099-12-31")
    results = [compact_iceberg_partition(ice, p) for p in parts]
    seconds = time.perf_counter() - started
    bad = [r.error for r in results if r.error]
    if bad:
        raise RuntimeError(f"Iceberg compaction failed: {bad[:3]}")
    # Compacting again finds nothing to do: the sorted files are left alone.
    assert not plan_iceberg(IcebergLake(lake), before="2100-01-01", today="2099-12-31")
    return {"seconds": seconds, "partitions": len(results),
            "rows": sum(r.rows_after for r in results), **_table_stats(lake)}


def _pcts(ms: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "samples": len(ms)}


def _lookups(ice_dir: Path, raw: Path, spec: LakeSpec, runs: int) -> dict[str, Any]:
    """Latency and bytes of ddbtrail's lookups and of the plain query, interleaved."""
    import duckdb

    lake = Lake.open(str(ice_dir))
    table = spec.table
    at_ms = START_MS + spec.days * DAY_MS // 2
    planned = IcebergLake(lake).plan()
    ice_files = [p.file.path for p in planned]
    full_bytes = sum(p.file.size for p in planned)
    raw_files = sorted(str(p) for p in raw.rglob("*.parquet"))
    raw_bytes = sum(os.path.getsize(p) for p in raw_files)
    con = duckdb.connect()
    sql = {name: PLAIN_SQL.format(files="[" + ", ".join(f"'{f}'" for f in files) + "]")
           for name, files in (("plain_iceberg", ice_files), ("plain_raw", raw_files))}

    def ddbtrail(kind: str, key: str, lk: Lake = lake) -> int:
        if kind == "item_history":
            return len(lookups.item_history(lk, table, key))
        return int(lookups.item_as_of(lk, table, key, at_ms) is not None)

    def plain(name: str, key: str) -> int:
        return len(con.execute(sql[name], [key]).fetchall())

    def counted(kind: str, key: str) -> tuple[int, int]:
        """Data bytes of the first lookup through a fresh filesystem (cold: footers
        too) and of the next one (warm, as the timed runs)."""
        cfs = CountingFS(lake.fs)
        counting = Lake(lake.uri, cfs.fs, lake.root)
        ddbtrail(kind, key, counting)
        cold = int(cfs.bytes_read)
        cfs.reset()
        ddbtrail(kind, key, counting)
        return cold, int(cfs.bytes_read)

    groups = {"typical": [spec.key_of_rank(r) for r in TYPICAL_RANKS],
              "hot": [spec.key_of_rank(HOT_RANK)]}
    methods: dict[str, Callable[[str], int]] = {
        "item_history": lambda k: ddbtrail("item_history", k),
        "item_as_of": lambda k: ddbtrail("item_as_of", k),
        "plain_iceberg": lambda k: plain("plain_iceberg", k),
        "plain_raw": lambda k: plain("plain_raw", k),
    }
    out: dict[str, Any] = {"full_scan_bytes": full_bytes, "raw_bytes": raw_bytes,
                           "files": len(ice_files), "raw_files": len(raw_files)}
    for group, keys in groups.items():
        ms: dict[str, list[float]] = {m: [] for m in methods}
        rc: dict[str, list[int]] = {m: [] for m in methods}
        rows: dict[str, list[int]] = {m: [] for m in methods}
        for key in keys:  # warm: page cache, imports, query translation
            for run in methods.values():
                run(key)
        # The hot key's history is 8% of the table: at 10M a run reads ~800k rows.
        group_runs = runs if group == "typical" or spec.changes < 10_000_000 else HOT_RUNS_10M
        for i in range(group_runs):
            for key in keys:
                for name, run in methods.items():
                    if name == "plain_raw" and i >= RAW_RUNS:
                        continue  # a scan of every raw file: the same cost on every run
                    r0 = rchar()
                    t0 = time.perf_counter()
                    rows[name].append(run(key))
                    ms[name].append((time.perf_counter() - t0) * 1000)
                    rc[name].append(rchar() - r0)
        for name in methods:
            entry: dict[str, Any] = {**_pcts(ms[name]), "rows": statistics.median(rows[name]),
                                     "rchar": statistics.median(rc[name])}
            if name in ("item_history", "item_as_of"):
                cold, warm = zip(*(counted(name, k) for k in keys), strict=True)
                entry["data"] = statistics.median(warm)
                entry["data_cold"] = statistics.median(cold)
                entry["data_pct_of_full_scan"] = 100 * entry["data"] / full_bytes
            out[f"{group}/{name}"] = entry
    con.close()
    return out


def metadata_series(commits: int = SERIES_COMMITS) -> dict[str, Any]:
    """``commits`` small appends to a fresh table: commit time early and late, metadata
    after, and every row read back."""
    dest = OUT / "iceberg-series"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    lake = Lake.open(str(dest))
    ice = IcebergLake(lake, create=True)
    rows = build_table(LakeSpec(SERIES_ROWS, items=5_000))
    step = -(-rows.num_rows // commits)
    commit_ms = []
    started = time.perf_counter()
    for start in range(0, rows.num_rows, step):
        t0 = time.perf_counter()
        ice.append(rows.slice(start, step))
        commit_ms.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - started
    read_back = sum(pq.ParquetFile(p.file.path).metadata.num_rows for p in ice.plan())
    assert read_back == rows.num_rows, (read_back, rows.num_rows)
    stats = {"seconds": seconds, "rows": rows.num_rows, "read_back": read_back,
             **_commit_times(commit_ms), **_table_stats(lake)}
    shutil.rmtree(dest)
    return stats


def bench(changes: int, *, runs: int) -> dict[str, Any]:
    spec = LakeSpec(changes)
    out_dir = OUT / f"lake-{changes // 1_000_000}m"
    gen = generate(spec, out_dir, naive=False)
    raw_dir = Path(gen.lake)
    hive_compact_s = _compacted_copy(raw_dir, out_dir / "compacted")
    ice_dir = OUT / f"iceberg-{changes // 1_000_000}m"
    load_before = _load()
    append = _ingest(raw_dir, ice_dir, spec.table)
    compaction = _compact(ice_dir)
    looked = _lookups(ice_dir, raw_dir, spec, runs)
    return {"changes": changes, "files_per_commit": FILES_PER_COMMIT,
            "raw_files": gen.lake_files, "raw_bytes": gen.lake_bytes,
            "hive_compact_seconds": hive_compact_s, "append": append,
            "compaction": compaction, "lookups": looked, "runs": runs,
            "load": {"before": load_before, "after": _load()}}


def main(quick: bool = False) -> dict[str, Any]:
    """1M changes (and 10M unless ``quick``), then the 1,000-commit series."""
    sizes = [1_000_000] if quick else [1_000_000, 10_000_000]
    runs = 5 if quick else 10
    started = time.perf_counter()
    result: dict[str, Any] = {"sizes": [bench(n, runs=runs) for n in sizes],
                              "series": metadata_series()}
    result["seconds"] = time.perf_counter() - started
    return result


def _mib(n: float) -> str:
    return f"{n / 2**20:,.2f} MiB"


def markdown(result: dict[str, Any]) -> str:
    """Tables for docs/benchmarks.md's Iceberg section."""
    lines = []
    for size in result["sizes"]:
        a, c, lk = size["append"], size["compaction"], size["lookups"]
        lines += [
            f"#### {size['changes']:,} changes ({size['raw_files']:,} Firehose files, "
            f"{_mib(size['raw_bytes'])}; load average {size['load']['before']} before, "
            f"{size['load']['after']} after)",
            "",
            "| step | time | rate / size | commits | snapshots after | manifests after | "
            "live metadata | metadata on disk |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            f"| append ({size['files_per_commit']} Firehose files a commit) | "
            f"{a['seconds']:,.0f} s | {a['rows_per_s']:,.0f} rows/s | {a['commits']:,} "
            f"(median {a['first_tenth_ms']:,.0f} ms first tenth, {a['last_tenth_ms']:,.0f} ms "
            f"last) | {a['snapshots']} | {a['manifests']} | {_mib(a['live_metadata_bytes'])} | "
            f"{_mib(a['disk_metadata_bytes'])} |",
            f"| Iceberg compaction ({c['partitions']} partitions) | {c['seconds']:,.0f} s | "
            f"{c['rows']:,} rows | {c['partitions']} | {c['snapshots']} | {c['manifests']} | "
            f"{_mib(c['live_metadata_bytes'])} | {_mib(c['disk_metadata_bytes'])} |",
            f"| Hive compaction of the same rows | {size['hive_compact_seconds']:,.0f} s | | | "
            "| | | |",
            "",
            f"Lookups on the compacted table ({lk['files']} data files, "
            f"{_mib(lk['full_scan_bytes'])}; raw lake {lk['raw_files']:,} files), warm, in "
            f"process, p50/p95 over keys x {size['runs']} runs ({RAW_RUNS} on the raw lake"
            + (f", {HOT_RUNS_10M} for the hot key" if size["changes"] >= 10_000_000 else "")
            + "):",
            "",
            "| keys | query | p50 ms | p95 ms | rows (median) | data bytes read, warm (cold) | "
            "% of a full scan | all bytes read (rchar) | plain on same files / ddbtrail (p50) "
            "| plain on raw / ddbtrail (p50) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for group in ("typical", "hot"):
            same = lk[f"{group}/plain_iceberg"]["p50"]
            raw = lk[f"{group}/plain_raw"]["p50"]
            for name in ("item_history", "item_as_of", "plain_iceberg", "plain_raw"):
                r = lk[f"{group}/{name}"]
                ours = name in ("item_history", "item_as_of")
                label = {"plain_iceberg": "plain DuckDB, same Iceberg files",
                         "plain_raw": "plain DuckDB, raw Hive lake"}.get(name, f"ddbtrail {name}")
                lines.append(
                    f"| {group} | {label} | {r['p50']:,.0f} | {r['p95']:,.0f} | {r['rows']:,.0f} | "
                    + (f"{_mib(r['data'])} ({_mib(r['data_cold'])}) | "
                       f"{r['data_pct_of_full_scan']:.2f}% | " if ours
                       else "| | ")
                    + f"{_mib(r['rchar'])} | "
                    + (f"{same / r['p50']:.2f}x | {raw / r['p50']:.1f}x |" if ours else "| |"))
        lines.append("")
    s = result["series"]
    lines += [
        f"Metadata after {s['commits']:,} commits ({s['rows']:,} rows, all {s['read_back']:,} "
        f"read back): {s['snapshots']} snapshots, {s['manifests']} manifests in the current "
        f"snapshot; live metadata {_mib(s['live_metadata_bytes'])} in "
        f"{s['live_metadata_files']} files (current metadata.json "
        f"{s['metadata_json_bytes'] / 1024:,.0f} KiB), metadata folder "
        f"{_mib(s['disk_metadata_bytes'])} in {s['disk_metadata_files']} files until orphans "
        f"are removed. Commit time: median {s['first_tenth_ms']:,.0f} ms over the first "
        f"tenth, {s['last_tenth_ms']:,.0f} ms over the last (max {s['max_ms']:,.0f} ms).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    res = main(quick="--quick" in sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "iceberg.json").write_text(json.dumps(res, indent=1))
    sys.stdout.write(markdown(res))
