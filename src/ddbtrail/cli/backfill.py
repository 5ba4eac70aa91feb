"""``ddbtrail backfill``: SNAPSHOT rows for every item, so the lake knows items that predate
the stream."""

from __future__ import annotations

from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ddbtrail.capture.backfill import backfill
from ddbtrail.cli._app import LAKE_HELP, FormatOpt, LakeFormat, app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_client, aws_failure
from ddbtrail.delivery.local import LocalDeliveryStream
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
    restart: Annotated[bool, typer.Option(
        help="Start a new snapshot even if the last one did not finish.")] = False,
    consistent_read: Annotated[bool, typer.Option(help="Strongly consistent Scan.")] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Scan a table (parallel, rate-limited, resumable) and write one SNAPSHOT row per item.

    Rerun the same command to resume an interrupted run. For very large tables, prefer
    DynamoDB's export to S3 (see docs/jobs.md).
    """
    dynamodb = aws_client("dynamodb", endpoint_url, region, profile)
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    if delivery_stream:
        sink = aws_client("firehose", endpoint_url, region, profile)
        stream_name = delivery_stream
        local = None
    else:
        local = LocalDeliveryStream(the_lake, fmt=fmt)
        sink, stream_name = local, local.name
    total = 0
    try:
        with Progress(SpinnerColumn(), TextColumn("backfill {task.description}: "
                                                  "{task.completed} items"),
                      TimeElapsedColumn(), console=err_console, transient=True) as progress:
            task = progress.add_task(table, total=None)

            def advance(_segment: int, items: int) -> None:
                progress.advance(task, items)

            report = backfill(dynamodb=dynamodb, firehose=sink, delivery_stream=stream_name,
                              lake=the_lake, table=table, segments=segments, max_rcu=max_rcu,
                              consistent=consistent_read, restart=restart,
                              region=region or dynamodb.meta.region_name, progress=advance)
            total = report.items
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(f"backfill of {table}", exc, resource=f"table {table}") from exc
    finally:
        if local is not None:
            local.close()
    for key in report.too_large:
        err_console.print(f"error: item {key} is too large for one delivery record; not "
                          "written", markup=False, highlight=False)
    console.print(
        f"snapshot {report.snapshot_id} of {table}: {total} items, {report.pages} pages, "
        f"{report.consumed_rcu:g} RCU{' (resumed)' if report.resumed else ''} -> "
        f"{the_lake.uri if local is not None else delivery_stream}",
        markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)
