"""``ddbtrail demo``: the whole pipeline on one machine, no AWS account needed."""

from __future__ import annotations

from typing import Annotated

import typer

from ddbtrail.cli._app import FormatOpt, LakeFormat, app, console
from ddbtrail.cli._errors import UsageError
from ddbtrail.cli._run import cli_logging
from ddbtrail.delivery.local import FORMATS
from ddbtrail.lake.files import Lake


@app.command("demo")
def demo_command(
    *,
    lake: Annotated[str | None, typer.Option(
        help="Lake folder (default ./ddbtrail-lake or $DDBTRAIL_LAKE). The demo replaces "
        "its own table's data there.")] = None,
    changes: Annotated[int, typer.Option(help="How many changes to make.")] = 2000,
    fmt: FormatOpt = LakeFormat.parquet,
    report: Annotated[str, typer.Option(
        help="Also write the HTML report here; empty to skip.")] = "ddbtrail-demo-report.html",
    seed: Annotated[int, typer.Option(help="Seed of the random workload.")] = 7,
) -> None:
    """Start embedded AWS, make changes to a sample table, capture them, and tour the lake.

    Inserts, updates, deletes, TTL deletes and re-inserts of every attribute type go
    through the stream runner and the local delivery stream into the lake; the tour then
    reads them back with the same saved queries Athena runs.
    """
    from ddbtrail.cli._tour import run_tour

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose parquet, jsonl or iceberg")
    the_lake = Lake.open(lake)
    with cli_logging():
        run_tour(the_lake, changes=changes, fmt=fmt, seed=seed, console=console,
                 report=report or None)
