"""``ddbtrail capture``: read a table's stream into the lake, as the deployed pipeline does."""

from __future__ import annotations

from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.capture.runner.esm import RunnerSettings
from ddbtrail.capture.runner.pipeline import build_capture
from ddbtrail.cli._app import FormatOpt, LakeFormat, LakeOpt, app, console
from ddbtrail.cli._aws import ProfileOpt, aws_client, aws_failure
from ddbtrail.cli._errors import UsageError
from ddbtrail.cli._run import (
    BatchSizeOpt,
    MaxRetriesOpt,
    RedactionPolicyOpt,
    cli_logging,
    fail_on_failed_records,
    progress_line,
    read_policy,
    run_shown,
)
from ddbtrail.core.exceptions import LakeError
from ddbtrail.delivery.local import FORMATS
from ddbtrail.lake.files import Lake


@app.command("capture")
def capture_command(
    *,
    table: Annotated[str, typer.Option("--table", help="DynamoDB table whose stream to read.")],
    lake: LakeOpt = None,
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", help="AWS endpoint URL (DynamoDB, Streams and an s3:// lake).")]
        = None,
    region: Annotated[str | None, typer.Option(
        "--region", help="AWS region [default: AWS_REGION, or the profile's].")] = None,
    profile: ProfileOpt = None,
    fmt: FormatOpt = LakeFormat.parquet,
    once: Annotated[bool, typer.Option(
        "--once", help="Drain every shard to its current end, flush, and exit.")] = False,
    batch_size: BatchSizeOpt = 1000,
    max_retries: MaxRetriesOpt = 10,
    bisect: Annotated[bool, typer.Option(
        help="Split a failing batch in two and retry each half.")] = True,
    checkpoint_interval: Annotated[float, typer.Option(
        help="Seconds between checkpoints (each flushes the delivery stream).")] = 60.0,
    redaction_policy: RedactionPolicyOpt = None,
) -> None:
    """Capture a table's stream into the lake, resuming from checkpoints.

    The same code path as the capture Lambda, with a local delivery stream in Firehose's
    place. Without --once it runs until Ctrl-C, showing records/s and lag.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose parquet, jsonl or iceberg")
    if checkpoint_interval <= 0:
        raise UsageError("--checkpoint-interval must be > 0")
    settings = RunnerSettings(batch_size=batch_size, max_retry_attempts=max_retries,
                              bisect_on_error=bisect, checkpoint_interval=checkpoint_interval)
    policy = read_policy(redaction_policy)
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    _check_writable(the_lake)
    progress = progress_line(once)
    try:
        with cli_logging():
            ddb = aws_client("dynamodb", endpoint_url, region, profile)
            streams = aws_client("dynamodbstreams", endpoint_url, region, profile)
            run = build_capture(table, the_lake, ddb=ddb, streams=streams, fmt=fmt,
                                settings=settings, on_progress=progress, redaction=policy)
            stats = run_shown(lambda: run.run(once=once), run.runner.stop, progress)
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(f"capture {table}", exc, resource=f"table {table}") from exc
    files = len(run.delivery.stats.files)
    console.print(
        f"captured {stats.records:,} records of {table} into {the_lake.uri} "
        f"({files} file{'s' if files != 1 else ''}, {fmt}); checkpoints saved",
        markup=False, highlight=False)
    fail_on_failed_records(stats)


def _check_writable(lake: Lake) -> None:
    """Fail early, in one line, if the lake cannot hold ddbtrail's state."""
    path = lake.state_path("checkpoints")
    try:
        lake.fs.create_dir(path, recursive=True)
    except OSError as exc:
        raise LakeError(f"lake {lake.uri}: cannot be written ({exc})") from exc
