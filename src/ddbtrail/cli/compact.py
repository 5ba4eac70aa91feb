"""``ddbtrail compact``: rewrite partitions into a few key-sorted Parquet files."""

from __future__ import annotations

import datetime as dt_mod
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ddbtrail.api._evidence import replacement_digests
from ddbtrail.api._lake import Lake as ApiLake
from ddbtrail.cli._app import LakeOpt, app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_session
from ddbtrail.cli._errors import UsageError
from ddbtrail.core.timefmt import INSTANT_HELP
from ddbtrail.lake import iceberg
from ddbtrail.lake.compact import CompactReport, Skipped, compact
from ddbtrail.lake.files import Lake


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
    pending = [s for s in skips if s.reason == "pending"]
    if pending:
        console.print(f"skipped {len(pending):,} partition(s) whose last compaction awaits "
                      "its signed digest (the next seal completes it)",
                      markup=False, highlight=False)


def _mb(n: int | None) -> str:
    return "" if n is None else f"{n / 1_048_576:,.1f}"


def _age(option: str, value: float | None, unit: str) -> dt_mod.timedelta | None:
    if value is None:
        return None
    if value < 0:
        raise UsageError(f"{option} {value:g}: must be 0 or more {unit}")
    return dt_mod.timedelta(days=value) if unit == "days" else dt_mod.timedelta(hours=value)


def _render(report: CompactReport, dry_run: bool) -> None:
    out = Table(title=f"{'Would compact' if dry_run else 'Compacted'} "
                f"{len(report.partitions)} partition(s)")
    for col in ("table", "dt", "files", "MB before", "rows", "duplicates", "files after",
                "MB after"):
        out.add_column(col, justify="left" if col in ("table", "dt") else "right",
                       no_wrap=col in ("table", "dt"))
    for r in report.partitions:
        out.add_row(r.table_name, r.dt, str(r.files_before), _mb(r.bytes_before),
                    "" if r.rows_before is None else f"{r.rows_before:,}",
                    "" if r.duplicates is None else f"{r.duplicates:,}",
                    "" if r.files_after is None else str(r.files_after),
                    _mb(r.bytes_after))
    console.print(out)
    _say_skipped(report.skipped, report.cutoff)
    if report.expired_snapshots is not None:
        console.print(f"expired {report.expired_snapshots} snapshot(s)")
    if report.removed_files is not None:
        data = [f for f in report.removed_files if "/data/" in f]
        console.print(f"removed {len(data)} orphan data file(s) and "
                      f"{len(report.removed_files) - len(data)} unneeded metadata file(s)")


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
        help="Iceberg: afterwards delete data files, old metadata.json versions and "
        "manifests no live snapshot needs, older than HOURS (younger ones may belong to a "
        "commit in flight).")] = None,
    register_here: Annotated[bool, typer.Option(
        "--register-here",
        help="Iceberg: first register a copied or moved lake's table again where it is now "
        "(its current snapshot's files; older snapshots are not carried over).")] = False,
    key: Annotated[str | None, typer.Option(
        "--key", help="A sealed lake (with digests): the signing key of each replacement's "
        "digest, a KMS key ARN or alias, or an Ed25519 key file [default: the local key "
        "file, for a folder lake].")] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Compact partitions: dedup by event_id, sort by item_key, small row groups.

    Hive layout: closed partitions; new files are written whole before any old file is
    deleted, so readers never miss a change. Iceberg: one atomic commit per partition.
    A sealed lake is sealed up to now first, and each replacement writes its own signed
    digest before the old files go, so `ddbtrail verify` still proves it.
    Exits 1 if any partition failed (its old files are kept).
    """
    expire = _age("--expire-snapshots", expire_snapshots, "days")
    orphans = _age("--remove-orphans", remove_orphans, "hours")
    if register_here and dry_run:
        raise UsageError("--register-here writes a new catalog; run it without --dry-run")
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    if register_here:
        n = iceberg.register_here(the_lake)
        console.print(f"registered the Iceberg table again at {the_lake.uri} with {n} data "
                      "file(s); the old catalog is kept as catalog.db.moved")
    on_replace = None if dry_run else replacement_digests(
        ApiLake(the_lake, aws_session(region, profile), endpoint_url), table=table, key=key)
    with Progress(TextColumn("compact {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True, disable=dry_run or not err_console.is_terminal) as progress:
        task = progress.add_task("", total=None)

        def show(done: int, total: int, partition: str) -> None:
            progress.update(task, completed=done, total=total, description=partition)

        report = compact(the_lake, table=table, before=before, dry_run=dry_run,
                         expire_snapshots=expire, remove_orphans=orphans, progress=show,
                         on_replace=on_replace)
    _render(report, dry_run)
    for r in report.failed:
        err_console.print(f"error: table_name={r.table_name}/dt={r.dt}: {r.error}",
                          markup=False, highlight=False)
    if report.failed:
        raise typer.Exit(1)
