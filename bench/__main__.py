"""``python -m bench [--quick]``: run every benchmark, rewrite docs/benchmarks.md's results.

Runs, in one process and one sitting (so ratios compare like with like):

* bench/capture_bench.py (a): handler compute, Firehose calls and billed units, ddbtrail
  against the naive design, on every workload shape;
* bench/demo_bench.py (b): end-to-end local pipeline throughput;
* bench/lookup_bench.py (c): history and as-of on 1M and 10M change lakes, against the
  plain DuckDB query on the compacted and the raw files;
* bench/iceberg_bench.py (d): the same lakes as Iceberg tables;
* bench/snapshot_bench.py (e): table as-of over a month, with and without daily snapshots;
* bench/compaction_bench.py (f): raw against compacted bytes, compaction compute.

Results go between the ``<!-- bench:results -->`` markers of docs/benchmarks.md, with the
machine, the versions, the date and the load; the raw numbers to bench/.out/results.json.
``--quick`` runs the 1M lakes only and fewer repetitions.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    versions = ", ".join(f"{p} {_version(p)}" for p in
                         ("ddbtrail", "pyarrow", "duckdb", "sqlglot", "boto3", "numpy"))
    return (f"{cpu}, {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
            f"{versions}; load average at start {load:.1f}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


# (key, title, module): each module has main(quick) -> dict and markdown(dict) -> str.
SECTIONS = (
    ("capture", "(a) Capture handler vs naive, every workload shape", "bench.capture_bench"),
    ("demo", "(b) End-to-end local pipeline", "bench.demo_bench"),
    ("lookup", "(c) Lookups: history and as-of against the plain query", "bench.lookup_bench"),
    ("iceberg", "(d) Iceberg lakes at the same scale", "bench.iceberg_bench"),
    ("snapshot", "(e) Table as-of over a month, with and without daily snapshots",
     "bench.snapshot_bench"),
    ("compaction", "(f) Raw against compacted, and compaction compute",
     "bench.compaction_bench"),
)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def run(quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "machine": machine(), "quick": quick, "loads": {}}
    for key, _, name in SECTIONS:
        module = importlib.import_module(name)
        print(f"{key} bench ...", flush=True)
        started = time.perf_counter()
        if key == "capture":
            results[key] = module.main(records=10_000, runs=3 if quick else 5)
        else:
            results[key] = module.main(quick)
        results["loads"][key] = {"minutes": (time.perf_counter() - started) / 60,
                                 "load_at_end": _load()}
    results["cost_inputs"] = cost_inputs(results)
    return results


def cost_inputs(results: dict[str, Any]) -> dict[str, float]:
    """The figures src/ddbtrail/data/cost_inputs.json takes from a run."""
    out: dict[str, float] = {}
    cap = results["capture"]
    out["handler_ms_per_record"] = 1000 * cap["ddbtrail"]["cpu_s"] / cap["records"]
    out["naive_ms_per_record"] = 1000 * cap["naive"]["cpu_s"] / cap["records"]
    sizes = results["lookup"]["sizes"]
    with_naive = next((s for s in sizes if "parquet_ratio" in s), None)
    if with_naive is not None:
        for name in ("parquet_ratio", "jsonl_gzip_ratio", "row_overhead_bytes"):
            out[name] = with_naive[name]
    out["parquet_footer_bytes_per_row_group"] = sizes[-1]["footer"][
        "footer_bytes_per_row_group"]
    # From the lake closest to the model's example (the last: 333k rows a day).
    out.update(results["compaction"]["results"][-1]["inputs"])
    return out


def markdown(results: dict[str, Any]) -> str:
    parts = [f"Run {results['date']}{' (--quick)' if results['quick'] else ''} on: "
             f"{results['machine']}.", ""]
    for key, title, name in SECTIONS:
        module = importlib.import_module(name)
        load = results["loads"][key]
        body = module.markdown(results[key]["results"] if key == "compaction"
                               else results[key])
        parts += [f"### {title} ({name.replace('.', '/')}.py)", "",
                  f"Took {load['minutes']:.1f} min; load average (1 / 5 / 15 min) at its end "
                  f"{load['load_at_end']}.", "", body, ""]
    parts += ["Cost-model inputs measured in this run (copy into "
              "src/ddbtrail/data/cost_inputs.json):", "", "| input | value |", "|---|---:|"]
    parts += [f"| {k} | {v:,.4g} |" for k, v in results["cost_inputs"].items()]
    return "\n".join(parts) + "\n"


def rewrite_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else f"{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{section}{END}{tail}", encoding="utf-8")


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    results = run(quick)
    out = ROOT / "bench" / ".out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    section = markdown(results)
    rewrite_doc(section)
    print(section)


if __name__ == "__main__":
    main()
