"""``ddbtrail history`` and ``ddbtrail as-of``: one item's changes, items at an instant.

Both run the saved queries (item_history, item_as_of, table_as_of) on the lake.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ddbtrail.cli._app import ItemKeyOpt, LakeOpt, SinceOpt, TableOpt, app, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_client
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.cli.capture import cli_logging
from ddbtrail.cli.who import (
    CloudTrailOption,
    ToleranceOption,
    attributed_history,
)
from ddbtrail.core.attribution import DEFAULT_TOLERANCE_S
from ddbtrail.core.timefmt import INSTANT_HELP, iso_ms, parse_instant
from ddbtrail.lake.files import Lake
from ddbtrail.lake.tables import require_table
from ddbtrail.query import lookups, who


def _key(the_lake: Lake, table: str, key: list[str], endpoint_url: str | None,
         region: str | None, profile: str | None) -> str:
    # Key types from DescribeTable when AWS is named, else from the lake.
    client = aws_client("dynamodb", endpoint_url, region, profile) \
        if endpoint_url or region or profile else None
    return lookups.resolve_item_key(the_lake, table, key, client=client)


@app.command()
def history(
    *,
    table: TableOpt,
    key: ItemKeyOpt,
    since: SinceOpt = None,
    lake: LakeOpt = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    cloudtrail: CloudTrailOption = None,
    tolerance: ToleranceOption = DEFAULT_TOLERANCE_S,
    output: OutputOption = Output.table,
) -> None:
    """Every change of one item, oldest first, with what changed.

    json/csv print the full rows of the item_history query (images included) plus
    what_changed; with --cloudtrail also actor, actor_match (exact | ambiguous | none),
    actor_candidates, source_ip, user_agent, cloudtrail_event, cloudtrail_event_id.
    """
    since_ms = parse_instant(since, what="--since") if since is not None else None
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    require_table(the_lake, table)
    item_key = _key(the_lake, table, key, endpoint_url, region, profile)
    if cloudtrail:
        rows = attributed_history(the_lake, table, item_key, cloudtrail, tolerance,
                                  endpoint_url=endpoint_url, region=region, profile=profile)
    else:
        rows = [{**r, "what_changed": lookups.describe_change(r)}
                for r in lookups.item_history(the_lake, table, item_key)]
    rows = [r for r in rows if since_ms is None or r["timestamp"] >= since_ms]
    if output is Output.table:
        shown = [{**r, "by": who.by_label(r) if cloudtrail else
                  "TTL" if r["ttl_delete"] else r["user_identity"]} for r in rows]
        render(shown, output, title=f"{table} {item_key}",
               columns=["sequence_number", "event_time", "action", "what_changed", "by"],
               wrap=["what_changed", "by"])
    else:
        render(rows, output)


@app.command("as-of")
def as_of(
    *,
    table: TableOpt,
    at: Annotated[str, typer.Option(help=f"The instant: {INSTANT_HELP}.")],
    key: Annotated[list[str] | None, typer.Option(
        "--key", "-k", help="ATTR=VALUE of one item's key; omit for every item.")] = None,
    lake: LakeOpt = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    output: OutputOption = Output.table,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Print (to stderr) the state snapshot used and the files and "
        "bytes read.")] = False,
) -> None:
    """The item(s) as they were at an instant; items deleted by then are absent.

    With --output json each line is one item's attributes, in the plain encoding of
    new_image (numbers keep every digit; binary is base64).
    """
    at_ms = parse_instant(at, what="--at")
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    require_table(the_lake, table)
    read: list[str] = []
    with cli_logging():  # an unreadable snapshot file: one warning line naming it
        if key:
            item_key = _key(the_lake, table, key, endpoint_url, region, profile)
            found = lookups.item_as_of(the_lake, table, item_key, at_ms, explain=read)
            rows = [found] if found else []
        else:
            rows = lookups.table_as_of(the_lake, table, at_ms, explain=read)
    for line in read if explain else []:
        err_console.print(f"explain: {line}", markup=False, highlight=False)
    if output is Output.json:
        # The image text as stored: re-encoding would risk the exact digits.
        for r in rows:
            sys.stdout.write((r["item"] if r["item"] is not None else r["keys"]) + "\n")
    else:
        render(rows, output, title=f"{table} at {iso_ms(at_ms)}",
               columns=["item_key", "last_event_time", "last_action", "item"], wrap=["item"])
