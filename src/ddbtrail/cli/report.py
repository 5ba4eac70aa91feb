"""``ddbtrail report``: write the HTML dashboard of a lake's changes."""

from __future__ import annotations

from typing import Annotated

import typer

from ddbtrail.cli import _report_html as page
from ddbtrail.cli._app import LakeOpt, SinceOpt, app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt
from ddbtrail.core.exceptions import TableNotInLake
from ddbtrail.core.timefmt import parse_instant
from ddbtrail.lake.cloudtrail import TrailLogs
from ddbtrail.lake.files import Lake
from ddbtrail.lake.tables import lake_tables, require_table
from ddbtrail.query import report as rep


@app.command("report")
def report_command(
    *,
    out: Annotated[str, typer.Option(help="HTML file to write.")] = "report.html",
    lake: LakeOpt = None,
    table: Annotated[str | None, typer.Option(
        help="Only this DynamoDB table [default: every table in the lake].")] = None,
    since: SinceOpt = None,
    top: Annotated[int, typer.Option(
        min=1, max=1000, help="How many items and attributes the top charts show.")
    ] = rep.DEFAULT_TOP,
    latest: Annotated[int, typer.Option(
        min=1, max=1000, help="How many rows the latest-changes table shows.")
    ] = rep.DEFAULT_LATEST,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    cloudtrail: Annotated[str | None, typer.Option(
        "--cloudtrail", envvar="DDBTRAIL_CLOUDTRAIL",
        help="CloudTrail logs (folder or s3://) for the changes-by-principal section.")
    ] = None,
) -> None:
    """Write one self-contained HTML dashboard (opens offline) of the lake's changes.

    The figures come from the saved queries in athena_queries/, run on DuckDB.
    """
    since_ms = parse_instant(since, what="--since") if since is not None else None
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    if table is not None:
        require_table(the_lake, table)
    elif not lake_tables(the_lake):
        raise TableNotInLake(f"lake {the_lake.uri}: no changes of any table (check --lake)")
    trail = (TrailLogs.open(cloudtrail, endpoint_url=endpoint_url, region=region)
             if cloudtrail else None)
    data = rep.collect(the_lake, table=table, since_ms=since_ms, top=top, latest=latest,
                       cloudtrail=trail)
    path = page.save(page.render_html(data), out)
    if data.total_changes == 0:
        err_console.print(f"note: no changes in lake {the_lake.uri} since {since}; the report "
                          "says so", markup=False, highlight=False)
    console.print(f"wrote {path} ({data.total_changes:,} changes, "
                  f"{len(data.tables)} table{'s' if len(data.tables) != 1 else ''})",
                  markup=False, highlight=False, soft_wrap=True)
