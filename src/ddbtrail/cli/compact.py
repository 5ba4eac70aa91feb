"""``ddbtrail compact``: rewrite closed partitions into a few key-sorted Parquet files."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated

import typer
from rich.table import Table

from ddbtrail.cli._app import app, console, err_console
from ddbtrail.lake.compact import compact_partition, failed, plan
from ddbtrail.lake.files import Lake


def _mb(n: int | None) -> str:
    return "" if n is None else f"{n / 1_048_576:,.1f}"


@app.command("compact")
def compact_command(
    *,
    lake: Annotated[str | None, typer.Option(
        help="Lake: a folder or s3://bucket/prefix (default DDBTRAIL_LAKE or ./ddbtrail-lake).")]
        = None,
    table: Annotated[str | None, typer.Option(help="Only this table's partitions.")] = None,
    before: Annotated[str | None, typer.Option(
        help="Only partitions with dt before this date, YYYY-MM-DD (default: today, UTC).")]
        = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List what would be compacted; change nothing.")] = False,
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", help="S3 endpoint URL, for an s3:// lake (e.g. moto).")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of an s3:// lake.")] = None,
) -> None:
    """Compact closed partitions: dedup by event_id, sort by item_key, small row groups.

    New files are written whole before any old file is deleted, so readers never miss a
    change. Exits 1 if any partition failed (its old files are kept).
    """
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region)
    parts = plan(the_lake, table=table, before=before)
    out = Table(title=f"{'Would compact' if dry_run else 'Compacted'} {len(parts)} partition(s)")
    for col in ("table", "dt", "files", "MB before", "rows", "duplicates", "files after",
                "MB after"):
        out.add_column(col, justify="left" if col in ("table", "dt") else "right",
                       no_wrap=col in ("table", "dt"))
    results = []
    with nullcontext() if dry_run else console.status("compacting"):
        for part in parts:
            r = compact_partition(the_lake, part, dry_run=dry_run)
            results.append(r)
            out.add_row(r.table_name, r.dt, str(r.files_before), _mb(r.bytes_before),
                        "" if r.rows_before is None else f"{r.rows_before:,}",
                        "" if r.duplicates is None else f"{r.duplicates:,}",
                        "" if r.files_after is None else str(r.files_after),
                        _mb(r.bytes_after))
    console.print(out)
    bad = failed(results)
    for r in bad:
        err_console.print(f"error: table_name={r.table_name}/dt={r.dt}: {r.error}",
                          markup=False, highlight=False)
    if bad:
        raise typer.Exit(1)

