"""``ddbtrail backfill``: SNAPSHOT rows for every item, so the lake knows items that predate
the stream."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ddbtrail.capture.backfill import backfill
from ddbtrail.capture.redaction_key import policy_from_env
from ddbtrail.cli._app import LAKE_HELP, FormatOpt, LakeFormat, app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_client, aws_failure
from ddbtrail.cli._run import RedactionPolicyOpt, read_policy
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.delivery.targets import open_sink
from ddbtrail.lake.files import Lake


@app.command("backfill")
def backfill_command(
    *,
    table: Annotated[str, typer.Option("--table", help="DynamoDB table to snapshot.")],
    lake: Annotated[str | None, typer.Option(
        help=LAKE_HELP + " Checkpoints live here too.")] = None,
    segments: Annotated[int, typer.Option(help="Parallel Scan segments (threads).")] = 4,
    max_rcu: Annotated[float | None, typer.Option(
        "--max-rcu", help="Read capacity units per second for all segments together.")]
        = None,
    fmt: FormatOpt = LakeFormat.parquet,
    delivery_stream: Annotated[str | None, typer.Option(
        help="Send rows to this Firehose delivery stream instead of writing the lake "
        "directly.")] = None,
    new: Annotated[bool, typer.Option(
        "--new", help="Start a new snapshot, even if the last one finished or is "
        "unfinished (default: resume an unfinished one; a finished one is not repeated).")]
        = False,
    consistent_read: Annotated[bool, typer.Option(help="Strongly consistent Scan.")] = False,
    redaction_policy: RedactionPolicyOpt = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Scan a table (parallel, rate-limited, resumable) and write one SNAPSHOT row per item.

    Rerun the same command to resume an interrupted run. For very large tables, prefer
    DynamoDB's export to S3 (see docs/jobs.md).
    """
    policy = read_policy(redaction_policy) or policy_from_env()
    dynamodb = aws_client("dynamodb", endpoint_url, region, profile)
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    sink = open_sink("firehose" if delivery_stream else "local", lake=the_lake, fmt=fmt,
                     delivery_stream=delivery_stream,
                     client=lambda service: aws_client(service, endpoint_url, region, profile))
    local = sink if isinstance(sink, LocalDeliveryStream) else None
    total = 0
    estimate = _item_count(dynamodb, table)
    try:
        with Progress(SpinnerColumn(), TextColumn("backfill {task.description}"), BarColumn(),
                      TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                      console=err_console, transient=True) as progress:
            task = progress.add_task(table, total=estimate, counts="starting")
            seen = {"items": 0, "pages": 0}

            def advance(_segment: int, items: int) -> None:
                seen["items"] += items
                seen["pages"] += 1
                about = f" of ~{estimate:,} (DynamoDB's estimate)" if estimate else ""
                progress.update(task, advance=items, counts=(
                    f"{seen['items']:,} items{about}, {seen['pages']:,} pages"))

            report = backfill(dynamodb=dynamodb, sink=sink, lake=the_lake, table=table,
                              segments=segments, max_rcu=max_rcu,
                              consistent=consistent_read, restart=new,
                              region=region or dynamodb.meta.region_name, progress=advance,
                              redaction=policy)
            total = report.items
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(f"backfill of {table}", exc, resource=f"table {table}") from exc
    finally:
        if local is not None:
            local.close()
    if report.already_done:
        console.print(
            f"snapshot {report.snapshot_id} of {table} finished at {report.finished_at} "
            f"({report.items:,} items); nothing to do. Use --new to start another snapshot.",
            markup=False, highlight=False)
        return
    for key in report.too_large:
        err_console.print(f"error: item {key} is too large for one delivery record; not "
                          "written", markup=False, highlight=False)
    console.print(
        f"snapshot {report.snapshot_id} of {table}: {total:,} items, {report.pages:,} pages, "
        f"{report.consumed_rcu:g} RCU{' (resumed)' if report.resumed else ''} -> "
        f"{the_lake.uri if local is not None else delivery_stream}",
        markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def _item_count(dynamodb: Any, table: str) -> int | None:
    """DynamoDB's item count (updated about every six hours), for the progress bar only."""
    try:
        count = int(dynamodb.describe_table(TableName=table)["Table"].get("ItemCount", 0))
    except (ClientError, BotoCoreError, KeyError, TypeError, ValueError):
        return None  # the backfill itself names the error
    return count or None
