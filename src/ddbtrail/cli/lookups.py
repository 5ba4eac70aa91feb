"""``ddbtrail history`` and ``ddbtrail as-of``: one item's changes, items at an instant.

Presentation of ``dt.history`` and ``dt.as_of`` (the saved queries item_history,
item_as_of and table_as_of on the lake).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ddbtrail.cli._app import ItemKeyOpt, LakeOpt, SinceOpt, TableOpt, app, err_console
from ddbtrail.cli._args import (
    CloudTrailOption,
    Problems,
    ToleranceOption,
    open_lake,
    parse_key_options,
)
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.cli._run import cli_logging
from ddbtrail.core.attribution import DEFAULT_TOLERANCE_S
from ddbtrail.core.timefmt import INSTANT_HELP, iso_ms, parse_instant


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
    import ddbtrail.api as dt
    from ddbtrail.query import who

    values = parse_key_options(key)
    problems = Problems()
    found = dt.history(open_lake(lake, endpoint_url, region, profile), table, values,
                       since=since, cloudtrail=cloudtrail or None, tolerance=tolerance,
                       on_problem=problems)
    problems.say()
    rows = found.to_pylist()
    if output is Output.table:
        shown = [{**r, "by": who.by_label(r) if cloudtrail else
                  "TTL" if r["ttl_delete"] else r["user_identity"]} for r in rows]
        item = rows[0]["keys"] if rows else ", ".join(key)
        render(shown, output, title=f"{table} {item}",
               columns=["sequence_number", "event_time", "action", "what_changed", "by"],
               wrap=["what_changed", "by"])
    else:
        render(rows, output, columns=found.column_names)


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
    allow_future: Annotated[bool, typer.Option(
        "--allow-future", help="Accept an --at in the future (today's state).")] = False,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Print (to stderr) the state snapshot used and the files and "
        "bytes read.")] = False,
) -> None:
    """The item(s) as they were at an instant; items deleted by then are absent.

    With --output json each line is one item's attributes, in the plain encoding of
    new_image (numbers keep every digit; binary is base64).
    """
    import ddbtrail.api as dt

    read: list[str] = []
    with cli_logging():  # an unreadable snapshot file: one warning line naming it
        found = dt.as_of(open_lake(lake, endpoint_url, region, profile), table, at,
                         key=parse_key_options(key) if key else None,
                         allow_future=allow_future, explain=read)
    rows = found.to_pylist()
    for line in read if explain else []:
        err_console.print(f"explain: {line}", markup=False, highlight=False)
    if output is Output.json:
        # The image text as stored: re-encoding would risk the exact digits.
        for r in rows:
            sys.stdout.write((r["item"] if r["item"] is not None else r["keys"]) + "\n")
    else:
        at_text = iso_ms(parse_instant(at, what="at"))
        render(rows, output, title=f"{table} at {at_text}",
               columns=["item_key", "last_event_time", "last_action", "item"], wrap=["item"])
