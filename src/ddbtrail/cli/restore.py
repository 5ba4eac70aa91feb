"""``ddbtrail restore``: write items as they were at an instant, from the lake; the
presentation of ``dt.restore``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ddbtrail.cli._app import LakeOpt, app, console, err_console
from ddbtrail.cli._args import open_lake, parse_key_options
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_failure
from ddbtrail.core.timefmt import INSTANT_HELP, iso_ms
from ddbtrail.query.restore import RestorePlan, parse_instant, wire_json


@app.command("restore")
def restore_command(
    *,
    table: Annotated[str, typer.Option("--table", help="Source table whose changes the lake "
                                       "holds.")],
    at: Annotated[str, typer.Option(
        "--at", help=f"The instant: {INSTANT_HELP}.")],
    to_table: Annotated[str, typer.Option("--to-table", help="Table to write the items to.")],
    key: Annotated[list[str] | None, typer.Option(
        "--key", help="Restore only this item: ATTR=VALUE, once per key attribute "
        "(e.g. --key pk=a --key sk=1). Default: every item.")] = None,
    lake: LakeOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the items (DynamoDB JSON, one per line); write nothing.")]
        = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Print (to stderr) the state snapshot used and the files and "
        "bytes read.")] = False,
) -> None:
    """Restore items exactly as they were at --at (types, digits, bytes) into --to-table.

    Puts only: target items that did not exist at that instant are left alone.
    """
    import ddbtrail.api as dt

    at_ms = parse_instant(at)
    the_lake = open_lake(lake, endpoint_url, region, profile)
    values = parse_key_options(key) if key else None
    read: list[str] = []

    def say_plan(plan: RestorePlan) -> None:
        # Before any write: what was read, and what cannot be restored.
        for line in read if explain else []:
            err_console.print(f"explain: {line}", markup=False, highlight=False)
        for absent in plan.absent:
            err_console.print(f"not restored: {absent} did not exist at {iso_ms(at_ms)}",
                              markup=False, highlight=False)

    try:
        with Progress(TextColumn("restore"), BarColumn(), MofNCompleteColumn(),
                      console=err_console, transient=True, disable=dry_run) as progress:
            task = progress.add_task(to_table, total=None)
            restored = dt.restore(
                the_lake, table, at, to_table=to_table, key=values, dry_run=dry_run,
                explain=read, on_plan=say_plan,
                progress=lambda done, total: progress.update(task, completed=done, total=total))
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(f"restore into {to_table}", exc, resource=f"table {to_table}") from exc
    plan, written = restored.plan, restored.written
    if dry_run:
        for item in plan.items:
            sys.stdout.write(wire_json(item) + "\n")
        err_console.print(f"dry run: would write {len(plan.items):,} item(s) of {table} as of "
                          f"{iso_ms(at_ms)} to {to_table}", markup=False, highlight=False)
        return
    console.print(f"restored {written:,} item(s) of {table} as of {iso_ms(at_ms)} into "
                  f"{to_table}", markup=False, highlight=False)
    if plan.absent:
        raise typer.Exit(1)
