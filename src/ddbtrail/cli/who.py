"""``ddbtrail who``: who changed one item, and how; presentation of ``dt.who``."""

from __future__ import annotations

from typing import Any

from ddbtrail.cli._app import ItemKeyOpt, LakeOpt, SinceOpt, TableOpt, app
from ddbtrail.cli._args import (
    CloudTrailOption,
    Problems,
    ToleranceOption,
    open_lake,
    parse_key_options,
)
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.core.attribution import DEFAULT_TOLERANCE_S


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
    import ddbtrail.api as dt
    from ddbtrail.query import who

    values = parse_key_options(key)
    problems = Problems()
    found = dt.who(open_lake(lake, endpoint_url, region, profile), table, values,
                   cloudtrail=cloudtrail or "", since=since, tolerance=tolerance,
                   on_problem=problems)
    problems.say()
    rows = found.to_pylist()
    if output is Output.table:
        shown = [{**r, "by": who.by_label(r), "how": _how(r)} for r in rows]
        render(shown, output, title=f"who changed {table} {', '.join(key)}",
               columns=["event_time", "action", "by", "actor_match", "how", "what_changed"],
               wrap=["by", "how", "what_changed"])
    else:
        render(rows, output, columns=list(who.WHO_COLUMNS))
