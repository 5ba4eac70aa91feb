"""The demo's tour: ``ddbtrail.local.demo`` runs the pipeline, this prints it with Rich."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ddbtrail.capture.runner.esm import RunStats
from ddbtrail.core.codec import JsonNumber, parse_plain
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.lake.files import Lake
from ddbtrail.local.demo import (
    DEFAULT_CHANGES,
    DemoResult,
    DemoSteps,
    WorkloadStats,
    run_demo,
    trail_root,
    trail_uri,
)
from ddbtrail.query.who import by_label


def write_demo_report(result: DemoResult, path: str) -> str:
    """Write the HTML report (``ddbtrail report``) of the demo table; returns its path."""
    from ddbtrail.cli._report_html import write_report
    from ddbtrail.lake.cloudtrail import TrailLogs

    trail = TrailLogs(Lake(uri=trail_uri(result.lake), fs=result.lake.fs,
                           root=trail_root(result.lake)))
    result.report = str(write_report(result.lake, path, table=result.table,
                                     cloudtrail=trail))
    return result.report


class ConsoleSteps(DemoSteps):
    """Tells each stage of the demo on a Rich console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        # One transient line while the long stages run (nothing when not a terminal).
        self.line = Live(Text(""), console=console, transient=True,
                         refresh_per_second=4) if console.is_terminal else None
        self.total_changes = 0

    def _show(self, text: str) -> None:
        if self.line is not None:
            self.line.start()
            self.line.update(Text(text), refresh=True)

    def _done(self) -> None:
        if self.line is not None:
            self.line.stop()

    def writing(self, made: int, total: int) -> None:
        self.total_changes = total
        self._show(f"making changes: {made:,} of {total:,}")

    def capturing(self, stats: RunStats) -> None:
        self._show(f"capturing the stream: {stats.records:,} records (of about "
                   f"{self.total_changes:,} changes), shards {stats.shards_done}/"
                   f"{stats.shards_total} done")

    def replaced(self, lake_uri: str, table: str) -> None:
        self.console.print(f"[dim]replaced the previous demo data of {table} in "
                           f"{lake_uri}[/dim]")

    def started(self, endpoint_url: str, table: str) -> None:
        self.console.print(f"embedded AWS (moto) at {endpoint_url}; table [bold]{table}[/bold] "
                           "(customer_id S, order_id N) with a NEW_AND_OLD_IMAGES stream")

    def wrote(self, workload: WorkloadStats, seconds: float) -> None:
        self._done()
        self.console.print(f"made {workload.changes:,} changes ({workload.calls:,} "
                           f"BatchWriteItem calls) in {seconds:.1f} s")

    def captured(self, stats: RunStats, files: list[str], fmt: str, seconds: float,
                 lake_uri: str, checkpoints: str) -> None:
        self._done()
        self.console.print(
            f"captured {stats.records:,} stream records into {lake_uri} "
            f"({len(files)} {fmt} file{'s' if len(files) != 1 else ''}) in {seconds:.1f} s; "
            f"checkpoints in {checkpoints}")


def run_tour(lake: Lake, *, changes: int = DEFAULT_CHANGES, fmt: str = "parquet",
             seed: int = 7, console: Console | None = None, report: str | None = None,
             clock: Callable[[], float] = time.perf_counter) -> DemoResult:
    """Run the demo and print the tour on ``console`` (None: no output).

    ``report``: also write the HTML report (``ddbtrail report``) to this path.
    """
    result = run_demo(lake, changes=changes, fmt=fmt, seed=seed, clock=clock,
                      steps=ConsoleSteps(console) if console is not None else None)
    started = clock()  # the read-back is already in tour_seconds
    if console is not None:
        print_tour(result, console)
    if report:
        write_demo_report(result, report)
        if console is not None:
            console.print(f"\nHTML report: [bold]{result.report}[/bold] (opens offline)")
    result.tour_seconds += clock() - started
    return result


def pretty_plain(text: str, indent: str = "  ") -> str:
    """Plain JSON text re-indented with every number written exactly as stored.

    (Parsing into floats to pretty-print would turn 1.5E-129 into 1.5e-129 and round
    38-digit numbers.)
    """

    def render(value: Any, depth: int) -> str:
        pad, inner = indent * depth, indent * (depth + 1)
        if isinstance(value, JsonNumber):
            return str(value)
        if isinstance(value, dict):
            if not value:
                return "{}"
            body = ",\n".join(f"{inner}{json.dumps(k, ensure_ascii=False)}: "
                              f"{render(v, depth + 1)}" for k, v in value.items())
            return "{\n" + body + "\n" + pad + "}"
        if isinstance(value, list):
            if not value:
                return "[]"
            body = ",\n".join(inner + render(v, depth + 1) for v in value)
            return "[\n" + body + "\n" + pad + "]"
        return json.dumps(value, ensure_ascii=False)

    return render(parse_plain(text), 0)


def print_who(history: list[dict[str, Any]], console: Console) -> None:
    """"Who changed this order": each principal and what it did, from CloudTrail."""
    console.print()
    console.print("[bold]Who changed this order[/bold] (the stream does not say; the demo's "
                  "CloudTrail data events do, matched by table, key and second):")
    for row in history:
        match = row.get("actor_match")
        how = " from ".join(str(row[k]) for k in ("cloudtrail_event", "source_ip") if row.get(k))
        line = f"  {row['event_time']}  {row['action']:<7} {match:<9} {by_label(row)}"
        console.print(line + (f"  ({how})" if how and match == "exact" else ""),
                      markup=False, highlight=False, soft_wrap=True)


def print_tour(result: DemoResult, console: Console) -> None:
    """Print counts by action, the star item's history and its state at a past instant."""
    lake, table, history, state = result.lake, result.table, result.history, result.state
    counts = Table(title="Changes by action", title_justify="left")
    counts.add_column("action")
    counts.add_column("changes", justify="right")
    for kind, n in result.counts.items():
        counts.add_row(kind, f"{n:,}")
    counts.add_row("[bold]total[/bold]", f"[bold]{sum(result.counts.values()):,}[/bold]")
    console.print()
    console.print(counts)

    key_opts = "--key customer_id=C0001 --key order_id=1"
    hist = Table(title=f"History of customer_id=C0001, order_id=1 ({len(history)} changes, "
                 "oldest first)", title_justify="left")
    for col in ("event_time", "action", "status", "changed attributes", "by"):
        hist.add_column(col)
    for row in history:
        image = row.get("new_image") or row.get("old_image") or "{}"
        status = json.loads(image).get("status", "")
        names = row.get("changed_attributes") or []
        changed = (f"(whole item: {len(names)} attributes)"
                   if row["action"] in ("INSERT", "REMOVE") else ", ".join(names))
        hist.add_row(str(row["event_time"]), str(row["action"]), str(status), changed,
                     by_label(row))
    console.print()
    console.print(hist)
    print_who(history, console)

    at = iso_ms(result.as_of_ms) if result.as_of_ms else ""
    console.print()
    console.print(f"[bold]As of {at}[/bold] (after its third change) the item was:")
    if state is not None and state.get("item"):
        console.print(Syntax(pretty_plain(state["item"]), "json", background_color="default",
                             word_wrap=True))
    else:
        console.print("(absent)")
    if result.snapshots:
        _print_snapshots(result.snapshots, console)
    lake_opt = f"--lake {lake.uri}"
    console.print()
    console.print("[bold]Try next[/bold]")
    for cmd in (
        f"ddbtrail history {lake_opt} --table {table} {key_opts}",
        f"ddbtrail who {lake_opt} --table {table} {key_opts} --cloudtrail {result.cloudtrail}",
        f"ddbtrail as-of {lake_opt} --table {table} --at {at} {key_opts}",
        f"ddbtrail as-of {lake_opt} --table {table} --at {iso_ms(int(time.time() * 1000))} "
        "--output json",
        f"ddbtrail query hot_items {lake_opt} --param table_name={table} "
        f"--param from={iso_ms(result.started_ms)} --param to={iso_ms(result.ended_ms)}",
        "ddbtrail queries",
        f"ddbtrail report {lake_opt} --table {table} --cloudtrail {result.cloudtrail} "
        "--out report.html",
        *([f"ddbtrail compact {lake_opt} --before {_tomorrow()}"] if result.snapshots else []),
    ):
        console.print(f"  {cmd}", markup=False, highlight=False, soft_wrap=True)


def _tomorrow() -> str:
    import datetime as dt_mod

    return (dt_mod.datetime.now(dt_mod.UTC).date() + dt_mod.timedelta(days=1)).isoformat()


def _print_snapshots(snapshots: list[dict[str, Any]], console: Console) -> None:
    """The Iceberg table's snapshots: each commit of the lake itself, oldest first."""
    shown = Table(title=f"Snapshots of the Iceberg table ddbtrail.changes ({len(snapshots)}, "
                  "oldest first; * current)", title_justify="left")
    for col in ("snapshot", "at (UTC)", "by", "files", "rows"):
        shown.add_column(col, justify="right" if col in ("files", "rows") else "left",
                         no_wrap=True)
    for s in snapshots:
        by = (s["by"] or s["operation"]).removeprefix("ddbtrail.").removesuffix("-table")
        shown.add_row(f"{'*' if s['current'] else ' '}{s['snapshot_id']}",
                      s["committed_at"][11:19], by,
                      f"+{s['added_files']} -{s['deleted_files']}", f"{s['total_rows']:,}")
    console.print()
    console.print(shown)
