"""End-to-end local pipeline: time ``ddbtrail demo --changes 10000`` (issue 3, bench b).

Runs the console script as a user would (interpreter start, embedded moto, 10,000
changes, stream runner, local delivery stream, DuckDB tour, HTML report) in a fresh
temporary lake, and reports wall time, CPU time (user + system of the child) and the
stages the demo prints. CPU time is what the run costs on an idle machine; wall time
also shows the machine's load, which is printed with the result.

    python -m bench.demo_bench [--changes N] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLI = shutil.which("ddbtrail", path=str(Path(sys.executable).parent)) or "ddbtrail"
_WRITES = re.compile(r"made ([\d,]+) changes .* in ([\d.]+) s")
_CAPTURE = re.compile(r"captured ([\d,]+) stream records .* in ([\d.]+) s")


def run_once(changes: int) -> dict[str, Any]:
    """One ``ddbtrail demo`` run in a fresh lake; wall and CPU seconds, stage seconds."""
    with tempfile.TemporaryDirectory(prefix="ddbtrail-demo-bench-") as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [CLI, "demo", "--changes", str(changes), "--lake", f"{tmp}/lake",
             "--report", f"{tmp}/report.html"],
            capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"})
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"ddbtrail demo failed ({proc.returncode}): {proc.stderr.strip()}")
    writes = _WRITES.search(proc.stdout)
    capture = _CAPTURE.search(proc.stdout)
    captured = int(capture.group(1).replace(",", "")) if capture else 0
    if captured != changes:
        raise SystemExit(f"ddbtrail demo captured {captured} of {changes} changes")
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "writes_s": float(writes.group(2)) if writes else None,
        "capture_s": float(capture.group(2)) if capture else None,
        "tour_ok": "History of customer_id=C0001" in proc.stdout,
    }


def main(quick: bool = False, changes: int = 10_000, runs: int | None = None) -> dict[str, Any]:
    """Median of ``runs`` demo runs (1 with ``quick``, else 3)."""
    runs = runs or (1 if quick else 3)
    load = os.getloadavg()[0]
    results = [run_once(changes) for _ in range(runs)]

    def median(key: str) -> float | None:
        values = [r[key] for r in results if r[key] is not None]
        return statistics.median(values) if values else None

    return {
        "changes": changes,
        "runs": runs,
        "wall_s": median("wall_s"),
        "cpu_s": median("cpu_s"),
        "writes_s": median("writes_s"),
        "capture_s": median("capture_s"),
        "records_per_s_capture": changes / (median("capture_s") or float("nan")),
        "tour_ok": all(r["tour_ok"] for r in results),
        "load_average_at_start": load,
        "cores": os.cpu_count(),
    }


def markdown(result: dict[str, Any]) -> str:
    """A one-row markdown table of the result."""
    return "\n".join([
        f"`ddbtrail demo --changes {result['changes']:,}` end to end (console script, "
        f"median of {result['runs']} run(s); {result['cores']} cores, load average "
        f"{result['load_average_at_start']:.1f} at start).",
        "",
        "| changes | wall s | CPU s (user+sys) | writes s | capture s | capture records/s "
        "| tour |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {result['changes']:,} | {result['wall_s']:.1f} | {result['cpu_s']:.1f} | "
        f"{result['writes_s']:.1f} | {result['capture_s']:.1f} | "
        f"{result['records_per_s_capture']:,.0f} | "
        f"{'printed' if result['tour_ok'] else 'MISSING'} |",
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(markdown(main(changes=args.changes, runs=args.runs)))
