"""``ddbtrail history`` and ``ddbtrail as-of``: one item's changes, items at an instant.

Both run the saved queries (item_history, item_as_of, table_as_of) on the lake.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ddbtrail.cli._app import app
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.cli.who import (
    CloudTrailOption,
    ToleranceOption,
    attributed_history,
)
from ddbtrail.core.attribution import DEFAULT_TOLERANCE_S
from ddbtrail.core.exceptions import QueryError, UsageError
from ddbtrail.core.timefmt import parse_timestamp
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups, who

TableOption = Annotated[str, typer.Option("--table", "-t", help="DynamoDB table name.")]
LakeOption = Annotated[str | None, typer.Option(
    help="Lake path or s3:// URI [default: DDBTRAIL_LAKE or ./ddbtrail-lake].")]
EndpointOption = Annotated[str | None, typer.Option(
    help="AWS endpoint URL (DynamoDB for key types, S3 for an s3:// lake).")]
RegionOption = Annotated[str | None, typer.Option(help="AWS region.")]


@app.command()
def history(
    *,
    table: TableOption,
    key: Annotated[list[str], typer.Option(
        "--key", "-k", help="ATTR=VALUE of the item's key; repeat for a sort key.")],
    lake: LakeOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    cloudtrail: CloudTrailOption = None,
    tolerance: ToleranceOption = DEFAULT_TOLERANCE_S,
    output: OutputOption = Output.table,
) -> None:
    """Every change of one item, oldest first, with what changed.

    json/csv print the full rows of the item_history query (images included) plus
    what_changed; with --cloudtrail also actor, actor_match (exact | ambiguous | none),
    actor_candidates, source_ip, user_agent, cloudtrail_event, cloudtrail_event_id.
    """
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region)
    item_key = lookups.resolve_item_key(the_lake, table, key, endpoint_url=endpoint_url,
                                        region=region)
    if cloudtrail:
        rows = attributed_history(the_lake, table, item_key, cloudtrail, tolerance,
                                  endpoint_url=endpoint_url, region=region)
    else:
        rows = [{**r, "what_changed": lookups.describe_change(r)}
                for r in lookups.item_history(the_lake, table, item_key)]
    if output is Output.table:
        shown = [{**r, "by": who.by_label(r) if cloudtrail else
                  "TTL" if r["ttl_delete"] else r["user_identity"]} for r in rows]
        render(shown, output, title=f"{table} {item_key}",
               columns=["sequence_number", "event_time", "action", "what_changed", "by"])
    else:
        render(rows, output)


@app.command("as-of")
def as_of(
    *,
    table: TableOption,
    at: Annotated[str, typer.Option(help="The instant, ISO-8601, e.g. 2024-05-01T12:00:00Z.")],
    key: Annotated[list[str] | None, typer.Option(
        "--key", "-k", help="ATTR=VALUE of one item's key; omit for every item.")] = None,
    lake: LakeOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    output: OutputOption = Output.table,
) -> None:
    """The item(s) as they were at an instant; items deleted by then are absent.

    With --output json each line is one item's attributes, in the plain encoding of
    new_image (numbers keep every digit; binary is base64).
    """
    try:
        at_ms = parse_timestamp(at, what="--at")
    except QueryError as exc:
        raise UsageError(str(exc)) from exc
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region)
    if key:
        item_key = lookups.resolve_item_key(the_lake, table, key, endpoint_url=endpoint_url,
                                            region=region)
        found = lookups.item_as_of(the_lake, table, item_key, at_ms)
        rows = [found] if found else []
    else:
        rows = lookups.table_as_of(the_lake, table, at_ms)
    if output is Output.json:
        # The image text as stored: re-encoding would risk the exact digits.
        for r in rows:
            sys.stdout.write((r["item"] if r["item"] is not None else r["keys"]) + "\n")
    else:
        render(rows, output, title=f"{table} at {at}",
               columns=["item_key", "last_event_time", "last_action", "item"])
