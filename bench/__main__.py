"""``python -m bench [--quick]``: run every benchmark, rewrite docs/benchmarks.md's results.

Runs, in one process and one sitting (so ratios compare like with like):

* bench/capture_bench.py (issue 2, 1a): handler compute, Firehose calls and billed units,
  ddbtrail vs naive;
* bench/demo_bench.py (1b): end-to-end local pipeline throughput, when present;
* bench/lookup_bench.py (1c): history and as-of lookups on 1M (and 10M) change lakes.

Results go between the ``<!-- bench:results -->`` markers of docs/benchmarks.md, with the
machine, the versions and the date; the raw numbers to bench/.out/results.json.
``--quick`` runs the 1M lake only and fewer repetitions.
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


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def run(quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "machine": machine(), "quick": quick}
    capture = _optional("bench.capture_bench")
    if capture is not None:
        print("capture bench ...", flush=True)
        results["capture"] = capture.main(records=10_000, runs=3 if quick else 5)
    demo = _optional("bench.demo_bench")
    if demo is not None:
        print("demo bench ...", flush=True)
        results["demo"] = demo.main(quick)
    from bench import lookup_bench

    print("lookup bench ...", flush=True)
    results["lookup"] = lookup_bench.main(quick)
    results["cost_inputs"] = cost_inputs(results)
    return results


def cost_inputs(results: dict[str, Any]) -> dict[str, float]:
    """The figures data/cost_inputs.json takes from a run (the largest lake)."""
    from ddbtrail.cost import lookup_bytes_compacted, measured_inputs

    out: dict[str, float] = {}
    cap = results.get("capture")
    if cap:
        out["handler_ms_per_record"] = 1000 * cap["ddbtrail"]["cpu_s"] / cap["records"]
        out["naive_ms_per_record"] = 1000 * cap["naive"]["cpu_s"] / cap["records"]
    size = results["lookup"]["sizes"][-1]
    gen = size["generated"]
    out["parquet_ratio"] = size["parquet_ratio"]
    out["jsonl_gzip_ratio"] = size["jsonl_gzip_ratio"]
    out["parquet_footer_bytes_per_row_group"] = size["footer"]["footer_bytes_per_row_group"]
    out["row_overhead_bytes"] = size["row_overhead_bytes"]
    rows_per_day = gen["rows"] / gen["spec"]["days"]
    stored_row = size["compacted_bytes"] / gen["rows"]
    model = lookup_bytes_compacted(rows_per_day, stored_row, gen["spec"]["days"],
                                   {**measured_inputs(), **out, "lookup_calibration": 1.0})
    out["lookup_calibration"] = size["lookups"]["item_history/typical/compacted"]["bytes"] / model
    return out


def capture_markdown(cap: dict[str, Any]) -> str:
    mod = _optional("bench.capture_bench")
    if mod is not None and hasattr(mod, "markdown"):
        return str(mod.markdown(cap))
    return "```\n" + json.dumps(cap, indent=1) + "\n```"


def markdown(results: dict[str, Any]) -> str:
    from bench import lookup_bench

    parts = [f"Run {results['date']}{' (--quick)' if results['quick'] else ''} on: "
             f"{results['machine']}.", ""]
    if "capture" in results:
        parts += ["### (a) Capture handler vs naive (bench/capture_bench.py)", "",
                  capture_markdown(results["capture"]), ""]
    else:
        parts += ["### (a) Capture handler vs naive", "", "bench/capture_bench.py was missing "
                  "in this run.", ""]
    if "demo" in results:
        demo = _optional("bench.demo_bench")
        body = demo.markdown(results["demo"]) if demo is not None and hasattr(
            demo, "markdown") else "```\n" + json.dumps(results["demo"], indent=1) + "\n```"
        parts += ["### (b) End-to-end local pipeline (bench/demo_bench.py)", "", body, ""]
    else:
        parts += ["### (b) End-to-end local pipeline", "", "bench/demo_bench.py was missing "
                  "in this run.", ""]
    parts += ["### (c) Lookups: history and as-of (bench/lookup_bench.py)", "",
              lookup_bench.markdown(results["lookup"]),
              "Cost-model inputs measured in this run (copy into "
              "src/ddbtrail/data/cost_inputs.json):", "",
              "| input | value |", "|---|---:|"]
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
