"""``ddbtrail doctor``: is the deployed trail healthy? One line per check."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer
from rich.text import Text

from ddbtrail.cli._app import LAKE_HELP, app, console, err_console
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_session
from ddbtrail.cli._errors import UsageError, options_in
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.health import FAIL, OK, Check, canary, discover, run_checks

_STYLE = {OK: "green", "warn": "yellow", FAIL: "bold red"}
_COLUMNS = ("check", "status", "detail", "fix")


class Engine(enum.StrEnum):
    """Where the canary's changes are queried."""

    duckdb = "duckdb"
    athena = "athena"


def _line(check: Check) -> None:
    """One check on one line: status, name, detail, and the fix when it is not ok."""
    text = Text(f"{check.status.upper():<4}", style=_STYLE.get(check.status, ""))
    text.append(f"  {check.name}: {options_in(check.detail)}")
    if check.fix and check.status != OK:
        text.append(f"  fix: {options_in(check.fix)}",
                    style="dim" if check.status != FAIL else "")
    console.print(text, soft_wrap=True, highlight=False)


def _row(check: Check) -> dict[str, Any]:
    return {"check": check.name, "status": check.status, "detail": options_in(check.detail),
            "fix": options_in(check.fix) if check.status != OK else ""}


@app.command("doctor")
def doctor_command(
    *,
    stack: Annotated[str, typer.Option(help="CloudFormation stack of the trail.")]
        = "ddbtrail",
    lake: Annotated[str | None, typer.Option(
        "--lake", help=f"{LAKE_HELP} Without it, doctor reads the stack's LakeUri output.")] = None,
    canary_table: Annotated[str | None, typer.Option(
        "--canary", metavar="TABLE", help="Also write and delete a marker item in TABLE "
        "and wait until both changes are queryable.")] = None,
    engine: Annotated[Engine, typer.Option(
        help="Where the canary is queried: duckdb (the lake) or athena.")] = Engine.duckdb,
    timeout: Annotated[float, typer.Option(
        help="Seconds the canary waits for its changes.")] = 900.0,
    poll: Annotated[float, typer.Option(
        help="Seconds between the canary's queries.")] = 15.0,
    max_age: Annotated[float, typer.Option(
        "--max-age", metavar="HOURS",
        help="A table's newest partition older than this is stale.")] = 24.0,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    output: OutputOption = Output.table,
) -> None:
    """Check a deployed trail: streams, mappings, on-failure queues, Firehose, freshness,
    Glue tables, workgroup, maintenance and compaction lag; one line per check, with a fix
    for each failure. Exits 0 when healthy, 1 when a check fails.
    """
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout:g}: must be more than 0 seconds")
    if poll <= 0:
        raise UsageError(f"--poll {poll:g}: must be more than 0 seconds")
    if max_age <= 0:
        raise UsageError(f"--max-age {max_age:g}: must be more than 0 hours")
    import boto3

    from ddbtrail.lake.files import Lake

    session = aws_session(region, profile) or boto3.Session()
    if session.region_name is None:
        from ddbtrail.cli._aws import NO_REGION
        from ddbtrail.core.exceptions import ConfigError

        raise ConfigError(NO_REGION)
    dep = discover(stack, boto3_session=session, endpoint_url=endpoint_url)
    lake_uri = lake or dep.lake_uri
    the_lake = (Lake.open(lake_uri, endpoint_url=endpoint_url, region=session.region_name,
                          profile=profile) if lake_uri else None)
    as_lines = output is Output.table
    checks = run_checks(stack, deployment=dep, lake=the_lake, max_partition_age_hours=max_age,
                        on_check=_line if as_lines else None, boto3_session=session,
                        endpoint_url=endpoint_url)
    if canary_table is not None:
        def progress(elapsed: float, rows: int) -> None:
            err_console.print(f"canary {canary_table}: waiting ({elapsed:,.0f} s, {rows} of "
                              "2 changes queryable)", markup=False, highlight=False)

        result = canary(canary_table, lake=the_lake, engine=engine.value,
                        database=dep.database, workgroup=dep.workgroup,
                        timeout_seconds=timeout, poll_seconds=poll, on_wait=progress,
                        boto3_session=session, endpoint_url=endpoint_url)
        checks.append(result)
        if as_lines:
            _line(result)
    if not as_lines:
        render([_row(c) for c in checks], output, columns=_COLUMNS, wrap=("detail", "fix"))
    if any(not c.ok for c in checks):
        raise typer.Exit(1)
