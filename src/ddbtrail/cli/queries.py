"""``ddbtrail queries`` and ``ddbtrail query NAME``: the saved Athena queries."""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer

from ddbtrail.cli._app import LakeOpt, app
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_session
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.core.settings import parse_assignments
from ddbtrail.lake.cloudtrail import TrailLogs
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved as q
from ddbtrail.query.trino import DEFAULT_PORT, TrinoSettings

_TRINO = "Trino (--engine trino)"


class Engine(enum.StrEnum):
    """Where a saved query runs."""

    duckdb = "duckdb"
    athena = "athena"
    trino = "trino"


@app.command("queries")
def list_queries(output: OutputOption = Output.table) -> None:
    """List the saved queries: name, kind, parameters and the question each answers."""
    import ddbtrail.api as dt

    rows = [{**r, "parameters": ", ".join(r["parameters"])} for r in dt.queries().to_pylist()]
    render(rows, output, columns=["name", "kind", "parameters", "question"])


def parse_params(options: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; UsageError on a bad or repeated one."""
    return parse_assignments(options, option="--param", expected="NAME=VALUE")


@app.command("query")
def run_query(
    name: Annotated[str, typer.Argument(help="Saved query name (see 'ddbtrail queries').")],
    *,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="NAME=VALUE, once per parameter.")] = None,
    engine: Annotated[Engine, typer.Option(
        help="duckdb (the local lake), athena, or trino.")] = Engine.duckdb,
    lake: LakeOpt = None,
    workgroup: Annotated[str | None, typer.Option(help="Athena workgroup.")] = None,
    database: Annotated[str, typer.Option(help="Glue database (athena).")] = "ddbtrail",
    s3_output: Annotated[str | None, typer.Option(
        help="Athena result location, if the workgroup sets none.")] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    cloudtrail: Annotated[str | None, typer.Option(
        "--cloudtrail", envvar="DDBTRAIL_CLOUDTRAIL",
        help="CloudTrail logs (folder or s3://) as cloudtrail_logs, for duckdb.")] = None,
    output: OutputOption = Output.table,
    sql: Annotated[bool, typer.Option(
        "--sql", help="Print its Athena SQL, fragments expanded, instead of running it.")]
        = False,
    trino_host: Annotated[str, typer.Option(envvar="DDBTRAIL_TRINO_HOST",
                                            rich_help_panel=_TRINO)] = "127.0.0.1",
    trino_port: Annotated[int, typer.Option(envvar="DDBTRAIL_TRINO_PORT",
                                            rich_help_panel=_TRINO)] = DEFAULT_PORT,
    trino_catalog: Annotated[str, typer.Option(
        envvar="DDBTRAIL_TRINO_CATALOG", rich_help_panel=_TRINO,
        help="Catalog holding the changes table (hive, or a Glue-backed one).")] = "hive",
    trino_schema: Annotated[str, typer.Option(envvar="DDBTRAIL_TRINO_SCHEMA",
                                              rich_help_panel=_TRINO)] = "ddbtrail",
    trino_user: Annotated[str, typer.Option(envvar="DDBTRAIL_TRINO_USER",
                                            rich_help_panel=_TRINO)] = "ddbtrail",
    trino_https: Annotated[bool, typer.Option(
        envvar="DDBTRAIL_TRINO_HTTPS", rich_help_panel=_TRINO,
        help="TLS; needed with a password or JWT.")] = False,
    trino_password: Annotated[str | None, typer.Option(
        envvar="DDBTRAIL_TRINO_PASSWORD", rich_help_panel=_TRINO,
        help="Password (basic authentication).")] = None,
    trino_jwt: Annotated[str | None, typer.Option(
        envvar="DDBTRAIL_TRINO_JWT", rich_help_panel=_TRINO,
        help="JWT (bearer authentication).")] = None,
) -> None:
    """Run a saved query on the local lake (DuckDB), on Athena or on Trino; print its rows."""
    if sql:  # the text to paste into Athena: the file itself may use fragments
        sys.stdout.write(q.load(name).sql + "\n")
        return
    values = parse_params(param or [])
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile) \
        if engine == "duckdb" else None
    trail = (TrailLogs.open(cloudtrail, endpoint_url=endpoint_url, region=region,
                            profile=profile)
             if cloudtrail and engine == "duckdb" else None)
    table = q.run(name, values, engine=engine.value, lake=the_lake, database=database,
                  workgroup=workgroup, s3_output=s3_output,
                  boto3_session=aws_session(region, profile), endpoint_url=endpoint_url,
                  cloudtrail=trail,
                  trino=TrinoSettings(host=trino_host, port=trino_port, catalog=trino_catalog,
                                      schema=trino_schema, user=trino_user,
                                      https=trino_https, password=trino_password,
                                      jwt=trino_jwt))
    render(table.to_pylist(), output, columns=table.column_names, title=name)
