"""``ddbtrail compact``: rewrite partitions into a few key-sorted Parquet files."""

from __future__ import annotations

import datetime as dt_mod
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ddbtrail.cli._app import LakeOpt, app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt
from ddbtrail.cli._errors import UsageError
from ddbtrail.core.timefmt import INSTANT_HELP, iso_ms, parse_instant
from ddbtrail.lake.compact import (
    Skipped,
    check_before,
    compact_iceberg_partition,
    compact_partition,
    failed,
    plan,
    plan_iceberg,
    skipped,
    today_utc,
)
from ddbtrail.lake.files import Lake
from ddbtrail.lake.iceberg import open_if_present
from ddbtrail.lake.tables import require_table


def _say_skipped(skips: list[Skipped], cutoff: str) -> None:
    """Why partitions were left alone, so "0 partition(s)" is never unexplained."""
    still_open = [f"{s.table_name}/dt={s.dt}" for s in skips if s.reason == "open"]
    done = [s for s in skips if s.reason == "compacted"]
    if still_open:
        shown = ", ".join(still_open[:5]) + (" ..." if len(still_open) > 5 else "")
        console.print(f"skipped {len(still_open):,} partition(s) still being written (dt on "
                      f"or after {cutoff}, UTC): {shown}; they are compacted once closed",
                      markup=False, highlight=False)
    if done:
        console.print(f"skipped {len(done):,} partition(s) already compacted (nothing new "
                      "since the last run)", markup=False, highlight=False)


def _mb(n: int | None) -> str:
    return "" if n is None else f"{n / 1_048_576:,.1f}"


def _ago(what: str, value: float | None, unit: str) -> dt_mod.datetime | None:
    if value is None:
        return None
    if value < 0:
        raise UsageError(f"{what} {value}: must be 0 or more {unit}")
    delta = dt_mod.timedelta(days=value) if unit == "days" else dt_mod.timedelta(hours=value)
    return dt_mod.datetime.now(dt_mod.UTC) - delta


@app.command("compact")
def compact_command(
    *,
    lake: LakeOpt = None,
    table: Annotated[str | None, typer.Option(help="Only this table's partitions.")] = None,
    before: Annotated[str | None, typer.Option(
        help=f"Only partitions with dt before this instant's date (UTC): {INSTANT_HELP} "
        "[default: today; on an Iceberg lake up to tomorrow, to compact today's partition "
        "too].")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List what would be compacted; change nothing.")] = False,
    expire_snapshots: Annotated[float | None, typer.Option(
        "--expire-snapshots", metavar="DAYS",
        help="Iceberg: afterwards expire snapshots older than DAYS (never the current).")]
        = None,
    remove_orphans: Annotated[float | None, typer.Option(
        "--remove-orphans", metavar="HOURS",
        help="Iceberg: afterwards delete data files no snapshot references, older than "
        "HOURS (younger ones may belong to a commit in flight).")] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Compact partitions: dedup by event_id, sort by item_key, small row groups.

    Hive layout: closed partitions; new files are written whole before any old file is
    deleted, so readers never miss a change. Iceberg: one atomic commit per partition.
    Exits 1 if any partition failed (its old files are kept).
    """
    expire_at = _ago("--expire-snapshots", expire_snapshots, "days")
    orphans_at = _ago("--remove-orphans", remove_orphans, "hours")
    # Every instant form; from here on a date (what partitions are named by).
    before = iso_ms(parse_instant(before, what="--before"))[:10] if before else None
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    if table is not None:
        require_table(the_lake, table)
    ice = open_if_present(the_lake)
    # Checked first: an Iceberg lake takes dates up to tomorrow, its Hive files never.
    ice_parts = plan_iceberg(ice, table=table, before=before) if ice else []
    hive_before = min(before, today_utc()) if before and ice else before
    hive_parts = plan(the_lake, table=table, before=hive_before)
    skips = skipped(the_lake, table=table, before=hive_before)
    if ice is None and (expire_at or orphans_at):
        raise UsageError("--expire-snapshots and --remove-orphans need an Iceberg lake")
    count = len(hive_parts) + len(ice_parts)
    out = Table(title=f"{'Would compact' if dry_run else 'Compacted'} {count} partition(s)")
    for col in ("table", "dt", "files", "MB before", "rows", "duplicates", "files after",
                "MB after"):
        out.add_column(col, justify="left" if col in ("table", "dt") else "right",
                       no_wrap=col in ("table", "dt"))
    results: list[Any] = []
    with Progress(TextColumn("compact {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True, disable=dry_run or not err_console.is_terminal) as progress:
        task = progress.add_task("", total=count)
        for part in hive_parts:
            progress.update(task, description=f"{part.table_name}/dt={part.dt}")
            results.append(compact_partition(the_lake, part, dry_run=dry_run))
            progress.advance(task)
        for ipart in ice_parts:
            assert ice is not None
            progress.update(task, description=f"{ipart.table_name}/dt={ipart.dt} (iceberg)")
            results.append(compact_iceberg_partition(ice, ipart, dry_run=dry_run))
            progress.advance(task)
    for r in results:
        out.add_row(r.table_name, r.dt, str(r.files_before), _mb(r.bytes_before),
                    "" if r.rows_before is None else f"{r.rows_before:,}",
                    "" if r.duplicates is None else f"{r.duplicates:,}",
                    "" if r.files_after is None else str(r.files_after),
                    _mb(r.bytes_after))
    console.print(out)
    _say_skipped(skips, check_before(hive_before))
    if ice is not None and not dry_run:
        if expire_at is not None:
            n = ice.expire_snapshots(expire_at)
            console.print(f"expired {n} snapshot(s) older than {expire_at:%Y-%m-%dT%H:%M:%SZ}")
        if orphans_at is not None:
            removed = ice.remove_orphans(orphans_at)
            console.print(f"removed {len(removed)} orphan data file(s)")
    bad = failed(results)
    for r in bad:
        err_console.print(f"error: table_name={r.table_name}/dt={r.dt}: {r.error}",
                          markup=False, highlight=False)
    if bad:
        raise typer.Exit(1)

