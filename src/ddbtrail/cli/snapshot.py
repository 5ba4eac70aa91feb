"""``ddbtrail snapshot``: write a table's state at an instant, for fast as-of and restore."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ddbtrail.cli._app import LakeOpt, TableOpt, app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.cli._run import cli_logging
from ddbtrail.core.timefmt import INSTANT_HELP, iso_ms, parse_instant
from ddbtrail.lake.files import Lake
from ddbtrail.lake.tables import require_table
from ddbtrail.query import snapshots


@app.command("snapshot")
def snapshot_command(
    *,
    table: TableOpt,
    at: Annotated[str | None, typer.Option(
        help=f"The instant: {INSTANT_HELP} [default: the end of the last closed UTC day]."
        )] = None,
    lake: LakeOpt = None,
    settle: Annotated[int | None, typer.Option(
        help="Seconds a row may take to reach the lake after it is ingested; a build with "
        "--at later than now minus this warns that rows may still be buffered. Correctness "
        "does not depend on it: a change at or before --at delivered after the build makes "
        "the snapshot stale, and a stale snapshot is never read [default: 900 on S3 "
        "(Firehose's longest buffer), the local delivery's 300 s buffer for a local "
        "folder].")] = None,
    status: Annotated[bool, typer.Option(
        "--status", help="List the table's snapshots and whether each is stale; write "
        "nothing.")] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    output: OutputOption = Output.table,
) -> None:
    """Write the state of every item of --table at --at into the lake's snapshots.

    Built from the previous snapshot plus the changes since it, so only the first reads
    the whole history. as-of, restore and the table_as_of query then start from the
    latest snapshot at or before their instant; the answers do not change.
    """
    now_ms = int(time.time() * 1000)
    at_ms = snapshots.default_instant(now_ms) if at is None else parse_instant(at, what="--at")
    if not status:
        snapshots.check_instant(at_ms, now_ms)
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    require_table(the_lake, table)
    with cli_logging():  # an unreadable snapshot file: one warning line naming it
        _run(the_lake, table, at_ms, now_ms, settle=settle, status=status, output=output)


def _run(the_lake: Lake, table: str, at_ms: int, now_ms: int, *, settle: int | None,
         status: bool, output: Output) -> None:
    if status:
        # late_changes -1: a file of the build's partition cannot be read (warned).
        rows = [{"snapshot_at": b.instant, "made_at": b.made_at,
                 "items": snapshots.items_in(the_lake, b) if b.late_changes >= 0 else None,
                 "late_changes": b.late_changes if b.late_changes >= 0 else None,
                 "stale": b.stale} for b in snapshots.status(the_lake, table)]
        render(rows, output, title=f"snapshots of {table}",
               columns=["snapshot_at", "made_at", "items", "late_changes", "stale"])
        return
    result = snapshots.build(the_lake, table, at_ms, settle_seconds=settle, now_ms=now_ms)
    base = (f"snapshot {result.base.instant}" if result.base else "the whole history")
    console.print(f"snapshot of {table} at {iso_ms(result.snapshot_ms)}: {result.items} "
                  f"item(s), from {base} + {result.changes_read} change(s); {result.path}",
                  markup=False, highlight=False, soft_wrap=True)
    for b in result.ignored:
        why = "unreadable" if b.late_changes < 0 else "stale"
        console.print(f"ignored {why} snapshot {b.instant} (made {b.made_at})",
                      markup=False, highlight=False, soft_wrap=True)
    if result.settling:
        err_console.print(f"note: --at {iso_ms(result.snapshot_ms)} is within the settle "
                          "window: changes at or before it may still be buffered; if they "
                          "arrive, this snapshot goes stale and is no longer read (see "
                          "--status)", markup=False, highlight=False, soft_wrap=True)
