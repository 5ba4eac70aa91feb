"""``ddbtrail redrive``: re-read failed batches named by on-failure messages, deliver them."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from ddbtrail.capture.batch import CaptureSettings
from ddbtrail.capture.redaction_key import policy_from_env
from ddbtrail.capture.redrive import RangeOutcome, RedriveReport, redrive
from ddbtrail.cli._app import FormatOpt, LakeFormat, LakeOpt, app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_client, aws_failure
from ddbtrail.cli._errors import UsageError
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.delivery.local import FORMATS, LocalDeliveryStream
from ddbtrail.delivery.targets import open_sink
from ddbtrail.evidence.receipts import LakeReceipts
from ddbtrail.lake.files import Lake

COLUMNS = ("status", "shard", "start", "end", "batch_size", "records", "rows",
           "message_age", "message_id")


def outcome_row(o: RangeOutcome) -> dict[str, Any]:
    """One output row per message."""
    r = o.range
    age = o.message_age_seconds
    return {
        "status": o.status, "shard": r.shard_id if r else None,
        "start": r.start if r else None, "end": r.end if r else None,
        "batch_size": r.batch_size if r else None, "records": o.records, "rows": o.rows,
        "message_age": None if age is None else f"{age / 3600:.1f} h",
        "message_id": o.message_id,
    }


@app.command("redrive")
def redrive_command(
    *,
    queue_url: Annotated[str, typer.Option(
        "--queue-url", help="SQS queue receiving the on-failure records (directly or "
        "through an SNS subscription).")],
    lake: LakeOpt = None,
    delivery_stream: Annotated[str | None, typer.Option(
        "--delivery-stream", help="Send to this Firehose delivery stream instead of the "
        "lake.")] = None,
    fmt: FormatOpt = LakeFormat.parquet,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List the ranges and how many records each still holds; deliver "
        "and delete nothing.")] = False,
    discard_trimmed: Annotated[bool, typer.Option(
        "--discard-trimmed", help="Delete the messages of trimmed ranges (after running "
        "'ddbtrail backfill'); their records still in the stream are delivered first.")]
        = False,
    max_messages: Annotated[int | None, typer.Option(
        help="Handle at most this many messages.")] = None,
    visibility_timeout: Annotated[int, typer.Option(
        help="Seconds a received message stays hidden from other consumers.")] = 300,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    output: OutputOption = Output.table,
) -> None:
    """Redrive failed batches: read each on-failure message's sequence range from the
    stream and deliver it through the capture path; delete a message only once its whole
    range is delivered. A range already trimmed from the stream (24 h) is an error naming
    the shard, the range and the time lost; its message stays.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose parquet, jsonl or iceberg")
    if max_messages is not None and max_messages < 1:
        raise UsageError("--max-messages must be at least 1")
    if not 0 <= visibility_timeout <= 43_200:
        raise UsageError("--visibility-timeout must be 0..43200 seconds")
    if delivery_stream and lake:
        raise UsageError("give --lake or --delivery-stream, not both")

    sqs = aws_client("sqs", endpoint_url, region, profile)
    streams = aws_client("dynamodbstreams", endpoint_url, region, profile)
    the_lake = None if delivery_stream else \
        Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    # A local stream is written only on flush, before messages are deleted.
    target = open_sink("firehose" if delivery_stream else "local", lake=the_lake, fmt=fmt,
                       name="ddbtrail-redrive", buffer_seconds=3600.0,
                       delivery_stream=delivery_stream,
                       client=lambda service: aws_client(service, endpoint_url, region, profile))
    local = target if isinstance(target, LocalDeliveryStream) else None
    where = the_lake.uri if the_lake is not None else f"Firehose {delivery_stream}"
    settings = CaptureSettings(redaction=policy_from_env())
    try:
        report = redrive(queue_url, sqs=sqs, streams=streams, sink=target, capture=settings,
                         dry_run=dry_run, discard_trimmed=discard_trimmed,
                         max_messages=max_messages, visibility_timeout=visibility_timeout,
                         receipts=LakeReceipts(the_lake) if the_lake is not None else None)
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(f"redrive {queue_url}", exc, resource=f"queue {queue_url}") from exc
    finally:
        if local is not None:
            local.close()  # rows of kept (trimmed) ranges too: duplicates at worst
    _print(report, output, where)


def _print(report: RedriveReport, output: Output, where: str) -> None:
    render([outcome_row(o) for o in report.outcomes], output, columns=COLUMNS,
           title="on-failure ranges" + (" (dry run)" if report.dry_run else ""))
    errors = [o for o in report.outcomes if o.error is not None]
    if len(errors) > 1:
        for o in errors:
            err_console.print(f"{o.status}: {o.error}", markup=False, highlight=False)
    m = report.metrics()
    if output is Output.table:
        verb = "would redrive" if report.dry_run else "redrove"
        ranges = len(report.by_status("listed")) if report.dry_run else int(m["RedrivenRanges"])
        console.print(
            f"{verb} {ranges} range(s), {sum(o.records for o in report.outcomes):,} "
            f"record(s){'' if report.dry_run else f' into {where}'}; "
            f"{int(m['KeptMessages'])} message(s) kept", markup=False, highlight=False)
    error = report.first_error()
    if error is not None:
        if len(errors) > 1:
            raise type(error)(f"{len(errors)} ranges not redriven (listed above); the "
                              f"first: {error}")
        raise error

