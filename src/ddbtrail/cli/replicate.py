"""``ddbtrail replicate``: copy a table's stream into another table, on the local runner."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.capture.replicate import ReplicateSettings, replicate_batch, target_client
from ddbtrail.capture.runner.checkpoint import CheckpointStore
from ddbtrail.capture.runner.esm import RunnerSettings, StreamRunner
from ddbtrail.capture.runner.pipeline import table_stream
from ddbtrail.cli._app import LAKE_HELP, app, console
from ddbtrail.cli._aws import (
    EndpointOpt,
    ProfileOpt,
    RegionOpt,
    aws_client,
    aws_failure,
    aws_session,
)
from ddbtrail.cli._run import (
    BatchSizeOpt,
    MaxRetriesOpt,
    cli_logging,
    fail_on_failed_records,
    progress_line,
    run_shown,
)
from ddbtrail.core.exceptions import PermanentAwsError
from ddbtrail.lake.files import Lake


def replicate_processor(target: Any, settings: ReplicateSettings) -> Any:
    """The replication Lambda's code path as a runner processor."""

    def process(event: dict[str, Any]) -> dict[str, Any]:
        result = replicate_batch(event, target=target, settings=settings)
        if result.permanent is not None:
            # Lambda retries such a batch until its on-failure destination; here the
            # user is at the terminal and can fix it now.
            raise PermanentAwsError(result.permanent)
        return result.response()

    return process


class DeleteMode(enum.StrEnum):
    """How a REMOVE reaches the target."""

    delete = "delete"
    tombstone = "tombstone"


@app.command("replicate")
def replicate_command(
    *,
    from_table: Annotated[str, typer.Option("--from-table", help="Source table (its stream).")],
    to_table: Annotated[str, typer.Option("--to-table", help="Target table.")],
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    to_endpoint_url: Annotated[str | None, typer.Option(
        help="Endpoint URL of the target (default: --endpoint-url).")] = None,
    to_region: Annotated[str | None, typer.Option(
        help="Region of the target (default: --region).")] = None,
    to_role_arn: Annotated[str | None, typer.Option(
        help="Role to assume for the target (another account).")] = None,
    lake: Annotated[str | None, typer.Option(
        help="Where checkpoints live. " + LAKE_HELP)] = None,
    delete_mode: Annotated[DeleteMode, typer.Option(
        help="REMOVE as a conditional delete or a tombstone item.")] = DeleteMode.delete,
    once: Annotated[bool, typer.Option(
        "--once", help="Drain every shard to its current end and exit.")] = False,
    batch_size: BatchSizeOpt = 100,
    max_retries: MaxRetriesOpt = 10,
) -> None:
    """Replicate a table's stream into a target table: puts and deletes, in order, guarded
    against stale replays by the source sequence number (attribute _ddbtrail_seq)."""
    settings = ReplicateSettings.from_env({
        "TARGET_TABLE": to_table, "TARGET_REGION": to_region or region or "",
        "TARGET_ROLE_ARN": to_role_arn or "", "DELETE_MODE": delete_mode.value})
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    progress = progress_line(once, verb="replicated")
    try:
        with cli_logging():
            ddb = aws_client("dynamodb", endpoint_url, region, profile)
            streams = aws_client("dynamodbstreams", endpoint_url, region, profile)
            target = target_client(settings, endpoint_url=to_endpoint_url or endpoint_url,
                                   session=aws_session(None, profile))
            stream = table_stream(ddb, from_table)
            runner = StreamRunner(
                streams, stream.stream_arn, replicate_processor(target, settings),
                CheckpointStore(the_lake, f"replicate-{from_table}-to-{to_table}"),
                RunnerSettings(batch_size=batch_size, max_retry_attempts=max_retries,
                               bisect_on_error=False, function_name="ddbtrail-replicate"),
                on_progress=progress)
            stats = run_shown(lambda: runner.run(once=once), runner.stop, progress)
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(f"replicate {from_table} -> {to_table}", exc,
                          resource=f"table {to_table}") from exc
    console.print(f"replicated {stats.records:,} records of {from_table} into {to_table}",
                  markup=False, highlight=False)
    fail_on_failed_records(stats)
