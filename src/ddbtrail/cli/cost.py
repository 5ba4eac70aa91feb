"""``ddbtrail cost``: monthly cost of ddbtrail's design beside the naive one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ddbtrail.cli._app import FormatOpt, LakeFormat, app, console
from ddbtrail.cost import Workload, estimate


@app.command("cost")
def cost_command(
    *,
    changes_per_day: Annotated[int, typer.Option(
        "--changes-per-day", help="Item changes (stream records) per day.")],
    avg_item_kb: Annotated[float, typer.Option(
        "--avg-item-kb", help="Average item size in KB (KiB).")],
    lookups_per_day: Annotated[int, typer.Option(
        "--lookups-per-day", help="Item history / as-of lookups per day, on Athena.")] = 0,
    fmt: FormatOpt = LakeFormat.parquet,
    history_days: Annotated[int, typer.Option(
        "--history-days", help="Days of history kept and covered by a lookup.")] = 30,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Lambda event source mapping BatchSize.")] = 100,
    memory_mb: Annotated[int, typer.Option("--memory-mb", help="Lambda memory.")] = 256,
    arm64: Annotated[bool, typer.Option("--arm64", help="Lambda on Graviton.")] = False,
    pack_rows: Annotated[bool | None, typer.Option(
        "--pack-rows/--no-pack-rows", help="Rows share Firehose records (default: as the "
        "stack deploys, packed for jsonl, not for parquet or iceberg).")] = None,
    cloudtrail: Annotated[bool, typer.Option(
        "--cloudtrail", help="Add the trail of write data events (-c create_trail).")] = False,
    items: Annotated[int, typer.Option(
        "--items", help="Live items per table, for the daily snapshots (default: as many "
        "as changes per day).")] = 0,
) -> None:
    """Estimate the monthly AWS bill per component (30 days, us-east-1 prices).

    Prices and measured workload figures are data shipped with ddbtrail
    (ddbtrail/data/prices.json, cost_inputs.json), each with its source and date.
    """
    est = estimate(Workload(
        changes_per_day=changes_per_day, avg_item_kb=avg_item_kb,
        lookups_per_day=lookups_per_day, format=fmt, history_days=history_days,
        batch_size=batch_size, memory_mb=memory_mb, arm64=arm64, pack_rows=pack_rows,
        cloudtrail=cloudtrail, live_items=items))
    table = Table(title=f"Monthly cost, USD: {changes_per_day:,} changes/day of "
                        f"{avg_item_kb:g} KB items, {lookups_per_day:,} lookups/day, {fmt}")
    table.add_column("component")
    table.add_column("ddbtrail", justify="right")
    table.add_column("naive", justify="right")
    table.add_column("how", overflow="fold")
    for line in est.lines:
        table.add_row(line.component, f"{line.ddbtrail:,.2f}", f"{line.naive:,.2f}", line.basis)
    table.add_section()
    ratio = est.total_naive / est.total_ddbtrail if est.total_ddbtrail else float("nan")
    table.add_row("total", f"{est.total_ddbtrail:,.2f}", f"{est.total_naive:,.2f}",
                  f"naive / ddbtrail = {ratio:,.1f}x")
    console.print(table)
    console.print("Naive: TypeDeserializer + json.dumps + one PutRecord per change, plain JSON "
                  "Lines, no partitions; every lookup a full scan. Inputs: ddbtrail/data/"
                  "cost_inputs.json; see docs/benchmarks.md.", highlight=False)
