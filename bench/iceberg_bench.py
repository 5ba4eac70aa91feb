"""Iceberg lookup benchmark (issue 17): the 1M-change lake in four layouts, side by side.

* ``raw``: Hive-layout Parquet as Firehose leaves it (96 files a day, arrival order);
* ``compacted``: the same after ``ddbtrail compact`` (key-sorted, small row groups);
* ``iceberg``: the same rows appended to the lake's Iceberg table ``ddbtrail.changes``, one
  commit per hour of Firehose files (4 files), as a Firehose Iceberg stream commits;
* ``iceberg-compacted``: that table after ``ddbtrail compact`` (one commit per partition).

Lookups are the real code paths (``ddbtrail.query.lookups``: the saved .sql on DuckDB);
Iceberg files are planned by pyiceberg (partition values, then ``item_key`` bounds). Bytes:
``data`` is what DuckDB read from data files (a counting pyarrow filesystem); ``rchar`` is
every byte the process read (catalog, manifests and data). Latency: wall time, warm page
cache, median over keys x runs. ``python -m bench.iceberg_bench [--quick]``.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.gen_lake import DAY_MS, START_MS, LakeSpec, generate
from bench.iostat import CountingFS, rchar
from bench.lookup_bench import HOT_RANK, OUT, TYPICAL_RANKS, _compacted_copy
from ddbtrail.core.row import arrow_schema
from ddbtrail.lake.compact import compact_iceberg_partition, plan_iceberg
from ddbtrail.lake.files import Lake
from ddbtrail.lake.iceberg import IcebergLake
from ddbtrail.query import lookups

LAYOUTS = ("raw", "compacted", "iceberg", "iceberg-compacted")
FILES_PER_COMMIT = 4


def _iceberg_copy(raw: Path, dest: Path, table: str) -> float:
    """The raw lake's rows appended to a fresh Iceberg lake; seconds (cached)."""
    marker = dest / "_ddbtrail" / "ingested.txt"
    if marker.exists():
        return float(marker.read_text())
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ice = IcebergLake(Lake.open(str(dest)), create=True)
    files = sorted(raw.rglob("*.parquet"))
    schema = arrow_schema(include_partitions=True)
    started = time.perf_counter()
    import pyarrow as pa

    for start in range(0, len(files), FILES_PER_COMMIT):
        chunk = files[start:start + FILES_PER_COMMIT]
        parts = []
        for f in chunk:
            dt = f.parent.name.removeprefix("dt=")
            t = pq.read_table(f)
            t = t.append_column("table_name", pa.array([table] * t.num_rows))
            t = t.append_column("dt", pa.array([dt] * t.num_rows))
            parts.append(t.select(schema.names).cast(schema))
        ice.append(pa.concat_tables(parts))
    seconds = time.perf_counter() - started
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(seconds))
    return seconds


def _iceberg_compact(lake_dir: Path) -> float:
    """Compact the Iceberg lake in place with ``ddbtrail compact``'s rules; seconds."""
    ice = IcebergLake(Lake.open(str(lake_dir)))
    started = time.perf_counter()
    results = [compact_iceberg_partition(ice, p)
               for p in plan_iceberg(ice, before="2100-01-01", today="2099-12-31")]
    seconds = time.perf_counter() - started
    bad = [r.error for r in results if r.error]
    if bad:
        raise RuntimeError(f"Iceberg compaction failed: {bad[:3]}")
    return seconds


def _measure(run: Callable[[], int], counted: Callable[[], int], runs: int) -> dict[str, float]:
    run()  # warm: page cache, imports, query translation
    times, rchars = [], []
    rows = 0
    for _ in range(runs):
        r0 = rchar()
        t0 = time.perf_counter()
        rows = run()
        times.append((time.perf_counter() - t0) * 1000)
        rchars.append(rchar() - r0)
    return {"ms": statistics.median(times), "rows": rows,
            "rchar": statistics.median(rchars), "data": counted()}


def _files(lake_dir: Path) -> tuple[int, int]:
    """Data files a reader of the current state sees, and their bytes."""
    lake = Lake.open(str(lake_dir))
    from ddbtrail.lake.iceberg import open_if_present

    ice = open_if_present(lake)
    if ice is not None:
        planned = ice.plan()
        return len(planned), sum(p.file.size for p in planned)
    files = lake.data_files()
    return len(files), sum(f.size for f in files)


def bench(changes: int, *, runs: int) -> dict[str, Any]:
    spec = LakeSpec(changes)
    out_dir = OUT / f"lake-{changes // 1_000_000}m"
    gen = generate(spec, out_dir, naive=False)
    raw_dir = Path(gen.lake)
    compact_s = _compacted_copy(raw_dir, out_dir / "compacted")
    ice_dir = out_dir / "iceberg"
    ingest_s = _iceberg_copy(raw_dir, ice_dir, spec.table)
    at_ms = START_MS + spec.days * DAY_MS // 2
    table = spec.table
    keys = [spec.key_of_rank(r) for r in TYPICAL_RANKS] + [spec.key_of_rank(HOT_RANK)]

    def lookups_of(lake: Lake) -> dict[str, Callable[[str], int]]:
        return {
            "item_history": lambda k: len(lookups.item_history(lake, table, k)),
            "item_as_of": lambda k: int(lookups.item_as_of(lake, table, k, at_ms) is not None),
        }

    def one_layout(lake_dir: Path) -> dict[str, Any]:
        lake = Lake.open(str(lake_dir))
        out: dict[str, Any] = {}
        for kind in ("item_history", "item_as_of"):
            samples = []
            for key in keys:
                def counted(kind: str = kind, key: str = key) -> int:
                    cfs = CountingFS(lake.fs)
                    lookups_of(Lake(lake.uri, cfs.fs, lake.root))[kind](key)
                    return int(cfs.bytes_read)
                samples.append(_measure(lambda kind=kind, key=key: lookups_of(lake)[kind](key),
                                        counted, runs))
            typical = samples[:len(TYPICAL_RANKS)]
            out[kind] = {k: statistics.median(s[k] for s in typical)
                         for k in ("ms", "rows", "rchar", "data")}
            out[kind + "/hot"] = samples[-1]

        def whole() -> int:
            return len(lookups.table_as_of(lake, table, at_ms))

        def whole_counted() -> int:
            cfs = CountingFS(lake.fs)
            lookups.table_as_of(Lake(lake.uri, cfs.fs, lake.root), table, at_ms)
            return int(cfs.bytes_read)

        out["table_as_of"] = _measure(whole, whole_counted, 1)
        out["files"], out["bytes"] = _files(lake_dir)
        return out

    results = {"raw": one_layout(raw_dir), "compacted": one_layout(out_dir / "compacted"),
               "iceberg": one_layout(ice_dir)}
    ice_compact_s = _iceberg_compact(ice_dir)
    results["iceberg-compacted"] = one_layout(ice_dir)
    # Compacting again finds nothing to do: the sorted files are left alone.
    assert not plan_iceberg(IcebergLake(Lake.open(str(ice_dir))), before="2100-01-01",
                            today="2099-12-31")
    shutil.rmtree(ice_dir)  # rebuilt next run: the compacted table is not the raw one
    return {"changes": changes, "files_per_commit": FILES_PER_COMMIT,
            "hive_compact_seconds": compact_s, "iceberg_ingest_seconds": ingest_s,
            "iceberg_compact_seconds": ice_compact_s, "layouts": results}


def markdown(result: dict[str, Any]) -> str:
    """The table for docs/benchmarks.md."""
    lay = result["layouts"]
    lines = [
        f"{result['changes']:,} changes, 30 days, 100k items; Iceberg ingested in "
        f"{result['iceberg_ingest_seconds']:,.0f} s ({result['files_per_commit']} Firehose "
        f"files per commit), compacted by `ddbtrail compact` in "
        f"{result['iceberg_compact_seconds']:,.0f} s (Hive: "
        f"{result['hive_compact_seconds']:,.0f} s). Typical keys (ranks "
        f"{', '.join(f'{r:,}' for r in TYPICAL_RANKS)}), median of keys x runs; hot = rank 1.",
        "",
        "| lookup | layout | data files | median ms | rows | data bytes read | all bytes "
        "read (rchar) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for kind in ("item_history", "item_history/hot", "item_as_of", "item_as_of/hot",
                 "table_as_of"):
        for name in LAYOUTS:
            r = lay[name][kind]
            lines.append(f"| {kind} | {name} | {lay[name]['files']:,} | {r['ms']:,.0f} | "
                         f"{r['rows']:,.0f} | {r['data'] / 2**20:,.2f} MiB | "
                         f"{r['rchar'] / 2**20:,.2f} MiB |")
    return "\n".join(lines) + "\n"


def main(quick: bool = False) -> dict[str, Any]:
    return bench(1_000_000, runs=3 if quick else 5)


if __name__ == "__main__":
    import json

    res = main(quick="--quick" in sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "iceberg.json").write_text(json.dumps(res, indent=1))
    sys.stdout.write(markdown(res))
