"""``ddbtrail copy``: send selected items to an SQS queue, typed, lossless and throttled."""

from __future__ import annotations

from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ddbtrail.capture.copy import DEFAULT_MAX_MESSAGE_BYTES, copy_items
from ddbtrail.capture.keys import key_schema, read_keys_file
from ddbtrail.cli._app import app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_client, aws_failure
from ddbtrail.cli._errors import UsageError
from ddbtrail.core.backoff import parse_rate
from ddbtrail.core.exceptions import InvalidValue


@app.command("copy")
def copy_command(
    *,
    from_table: Annotated[str, typer.Option("--from-table", help="Source DynamoDB table.")],
    keys_file: Annotated[str, typer.Option(
        "--keys-file", help="JSON Lines of keys, plain ({\"Id\": 101}) or typed "
        "({\"Id\": {\"N\": \"101\"}}); - for standard input.")],
    queue_url: Annotated[str, typer.Option("--queue-url", help="SQS queue URL.")],
    rate: Annotated[str | None, typer.Option(
        help="At most this many items per second, e.g. 50 or 50/s or 3000/min.")] = None,
    max_message_bytes: Annotated[int, typer.Option(
        help="Largest message (and batch) in bytes; up to 1 MiB if the queue allows it.")]
        = DEFAULT_MAX_MESSAGE_BYTES,
    consistent_read: Annotated[bool, typer.Option(
        help="Read with strongly consistent BatchGetItem.")] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    queue_endpoint_url: Annotated[str | None, typer.Option(
        help="Endpoint URL for SQS when it differs from --endpoint-url.")] = None,
) -> None:
    """Read items by key and send them to SQS for the sqs_copy Lambda to write.

    Items not found are listed on stderr; items too large for one message are named and
    make the command exit 1 (the others are still sent).
    """
    items_per_second = parse_rate(rate) if rate is not None else None
    source = aws_client("dynamodb", endpoint_url, region, profile)
    sqs = aws_client("sqs", queue_endpoint_url or endpoint_url, region, profile)
    try:
        schema = key_schema(source, from_table)
        try:
            keys = read_keys_file(keys_file, schema)
        except InvalidValue as exc:
            raise UsageError(str(exc)) from exc
        with Progress(TextColumn("copy {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err_console, transient=True) as progress:
            task = progress.add_task(from_table, total=len(keys))
            report = copy_items(source=source, sqs=sqs, table=from_table, keys=keys,
                                queue_url=queue_url, rate=items_per_second,
                                max_message_bytes=max_message_bytes,
                                consistent=consistent_read,
                                progress=lambda n: progress.advance(task, n))
    except (ClientError, BotoCoreError) as exc:
        on_queue = isinstance(exc, ClientError) and "Message" in exc.operation_name
        raise aws_failure(f"copy from {from_table}", exc, resource=f"queue {queue_url}"
                          if on_queue else f"table {from_table}") from exc
    for key in report.missing:
        err_console.print(f"not found: {key}", markup=False, highlight=False)
    for key in report.too_large:
        err_console.print(f"error: item {key} is larger than {max_message_bytes} bytes as a "
                          "message; not sent", markup=False, highlight=False)
    console.print(f"sent {report.sent:,} of {report.requested:,} items to {queue_url} "
                  f"({len(report.missing):,} not found, {len(report.too_large):,} too large, "
                  f"{report.calls:,} SendMessageBatch calls)", markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)
