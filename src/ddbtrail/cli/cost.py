"""``ddbtrail cost``: monthly cost of ddbtrail's design beside the naive one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ddbtrail.cli._app import LakeFormat, app, console


@app.command("cost")
def cost_command(
    *,
    changes_per_day: Annotated[int, typer.Option(
        "--changes-per-day", help="Item changes (stream records) per day.")],
    avg_item_kb: Annotated[float, typer.Option(
        "--avg-item-kb", help="Average item size in KB (KiB).")],
    lookups_per_day: Annotated[int, typer.Option(
        "--lookups-per-day", help="Item history / as-of lookups per day, on Athena.")] = 0,
    template: Annotated[Path | None, typer.Option(
        "--template", help="The deployment to price: its synthesised template, e.g. "
        "cdk.out/ddbtrail.template.json [default: the stack's defaults].")] = None,
    fmt: Annotated[LakeFormat | None, typer.Option(
        "--format", help="Lake format [default: the template's, else parquet].")] = None,
    history_days: Annotated[int, typer.Option(
        "--history-days", help="Days of history kept and covered by a lookup.")] = 30,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", help="Lambda event source mapping BatchSize [default: as "
        "deployed].")] = None,
    memory_mb: Annotated[int | None, typer.Option(
        "--memory-mb", help="Capture Lambda memory [default: as deployed].")] = None,
    arm64: Annotated[bool | None, typer.Option(
        "--arm64/--x86-64", help="Capture Lambda architecture [default: as deployed].")] = None,
    pack_rows: Annotated[bool | None, typer.Option(
        "--pack-rows/--no-pack-rows", help="Rows share Firehose records [default: as "
        "deployed; the stack packs jsonl, not parquet or iceberg].")] = None,
    cloudtrail: Annotated[bool | None, typer.Option(
        "--cloudtrail/--no-cloudtrail", help="The trail of write data events (-c "
        "create_trail) [default: as deployed].")] = None,
    items: Annotated[int, typer.Option(
        "--items", help="Live items per table, for the daily snapshots (default: as many "
        "as changes per day).")] = 0,
) -> None:
    """Estimate the monthly AWS bill per component (30 days, us-east-1 prices).

    What is deployed (format, buffer, schedules, memory, evidence) comes from --template or
    the stack's defaults; prices and workload figures are data shipped with ddbtrail
    (ddbtrail/data/prices.json, cost_inputs.json), each with its source and date. Each
    line says, in brackets, which of its figures came from the stack and which were
    measured or assumed.
    """
    from ddbtrail.api import cost

    est = cost(template=template, changes_per_day=changes_per_day, avg_item_kb=avg_item_kb,
               lookups_per_day=lookups_per_day, format=fmt.value if fmt else None,
               history_days=history_days, batch_size=batch_size, memory_mb=memory_mb,
               arm64=arm64, pack_rows=pack_rows, cloudtrail=cloudtrail, live_items=items)
    d = est.deployment
    table = Table(title=f"Monthly cost, USD: {changes_per_day:,} changes/day of "
                        f"{avg_item_kb:g} KB items, {lookups_per_day:,} lookups/day, {d.format}")
    table.add_column("component")
    table.add_column("ddbtrail", justify="right")
    table.add_column("naive", justify="right")
    table.add_column("how, and where its figures came from", overflow="fold")
    for line in est.lines:
        how = f"{line.basis}\n[{line.provenance}]" if line.sources else line.basis
        table.add_row(line.component, f"{line.ddbtrail:,.2f}", f"{line.naive:,.2f}",
                      Text(how))
    table.add_section()
    ratio = est.total_naive / est.total_ddbtrail if est.total_ddbtrail else float("nan")
    table.add_row("total", f"{est.total_ddbtrail:,.2f}", f"{est.total_naive:,.2f}",
                  f"naive / ddbtrail = {ratio:,.1f}x")
    console.print(table)
    where = f"read from {d.source}" if d.label == "stack" else d.source
    console.print(f"Deployment: {where}. \"stack\": read from it; \"measured\": "
                  "python -m bench; \"assumed\": not measurable locally; \"given\": your "
                  "option (ddbtrail/data/cost_inputs.json; docs/benchmarks.md).",
                  highlight=False)
    console.print("Naive: TypeDeserializer + json.dumps + one PutRecord per change, plain JSON "
                  "Lines, no partitions; every lookup a full scan.", highlight=False)
