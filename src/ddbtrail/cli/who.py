"""``ddbtrail who``: who changed one item, and how, from the lake and CloudTrail logs.

``history --cloudtrail`` shares ``attributed_history``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import typer

from ddbtrail.cli._app import ItemKeyOpt, LakeOpt, SinceOpt, TableOpt, app, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_client
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.core.attribution import DEFAULT_TOLERANCE_S
from ddbtrail.core.exceptions import UsageError
from ddbtrail.core.timefmt import parse_instant
from ddbtrail.lake.cloudtrail import TrailLogs
from ddbtrail.lake.files import Lake
from ddbtrail.lake.tables import require_table
from ddbtrail.query import lookups, who

CloudTrailOption = Annotated[str | None, typer.Option(
    "--cloudtrail", envvar="DDBTRAIL_CLOUDTRAIL",
    help="CloudTrail logs: a folder or s3://bucket/prefix in CloudTrail's AWSLogs/ layout "
         "[env: DDBTRAIL_CLOUDTRAIL].")]
ToleranceOption = Annotated[int, typer.Option(
    min=0, max=60,
    help="Extra seconds, either side, a write event may lie from its change (0: the "
         "second before, its own and the second after).")]
_SHOWN_PROBLEMS: Final = 10


def attributed_history(lake: Lake, table: str, item_key: str, cloudtrail: str,
                       tolerance: int, *, endpoint_url: str | None,
                       region: str | None, profile: str | None = None
                       ) -> list[dict[str, Any]]:
    """History rows with what_changed and the actor fields; problems go to stderr."""
    trail = TrailLogs.open(cloudtrail, endpoint_url=endpoint_url, region=region,
                           profile=profile)
    found = who.item_history_with_actors(lake, table, item_key, trail, tolerance_s=tolerance)
    for line in found.problems[:_SHOWN_PROBLEMS]:
        err_console.print(f"warning: {line}", markup=False, highlight=False)
    if len(found.problems) > _SHOWN_PROBLEMS:
        err_console.print(f"warning: {len(found.problems) - _SHOWN_PROBLEMS} more CloudTrail "
                          "records could not be read", markup=False)
    return [{**r, "what_changed": lookups.describe_change(r)} for r in found.rows]


def _how(row: dict[str, Any]) -> str:
    parts = [str(row[k]) for k in ("cloudtrail_event", "source_ip", "user_agent") if row.get(k)]
    return " · ".join(parts)


@app.command("who")
def who_changed(
    *,
    table: TableOpt,
    key: ItemKeyOpt,
    cloudtrail: CloudTrailOption = None,
    since: SinceOpt = None,
    tolerance: ToleranceOption = DEFAULT_TOLERANCE_S,
    lake: LakeOpt = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    output: OutputOption = Output.table,
) -> None:
    """Who changed one item, and how: each change with its principal from CloudTrail.

    A principal is named only when the match is certain (exact); when writes of the item
    by others lie within a second or so it says ambiguous and lists the candidates.
    """
    if not cloudtrail:
        raise UsageError("--cloudtrail: give the CloudTrail log folder or s3:// prefix "
                         "(or set DDBTRAIL_CLOUDTRAIL)")
    since_ms = parse_instant(since, what="--since") if since else None
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    require_table(the_lake, table)
    client = aws_client("dynamodb", endpoint_url, region, profile) \
        if endpoint_url or region or profile else None
    item_key = lookups.resolve_item_key(the_lake, table, key, client=client)
    rows = attributed_history(the_lake, table, item_key, cloudtrail, tolerance,
                              endpoint_url=endpoint_url, region=region, profile=profile)
    if since_ms is not None:
        rows = [r for r in rows if int(r["timestamp"]) >= since_ms]
    shown = [{**r, "by": who.by_label(r), "how": _how(r)} for r in rows]
    if output is Output.table:
        render(shown, output, title=f"who changed {table} {item_key}",
               columns=["event_time", "action", "by", "actor_match", "how", "what_changed"],
               wrap=["by", "how", "what_changed"])
    else:
        render(shown, output, columns=[
            "event_time", "action", "actor", "actor_match", "actor_candidates", "source_ip",
            "user_agent", "cloudtrail_event", "cloudtrail_event_id", "what_changed",
            "sequence_number", "event_id", "timestamp"])
