"""``ddbtrail queries`` and ``ddbtrail query NAME``: the saved Athena queries."""

from __future__ import annotations

from typing import Annotated

import typer

from ddbtrail import queries as q
from ddbtrail.cli._app import app
from ddbtrail.cli._output import Output, OutputOption, render
from ddbtrail.exceptions import UsageError
from ddbtrail.lake import Lake, default_lake


@app.command("queries")
def list_queries(output: OutputOption = Output.table) -> None:
    """List the saved queries: name, kind, parameters and the question each answers."""
    rows = [{"name": x.name, "kind": x.kind,
             "parameters": ", ".join(p.name for p in x.parameters),
             "question": x.question} for x in q.catalogue()]
    render(rows, output, columns=["name", "kind", "parameters", "question"])


def parse_params(options: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; UsageError on a bad one."""
    values: dict[str, str] = {}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param {option!r}: expected NAME=VALUE")
        values[name.strip()] = value
    return values


@app.command("query")
def run_query(
    name: Annotated[str, typer.Argument(help="Saved query name (see 'ddbtrail queries').")],
    *,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="NAME=VALUE, once per parameter.")] = None,
    engine: Annotated[str, typer.Option(help="duckdb (the local lake) or athena.")] = "duckdb",
    lake: Annotated[str | None, typer.Option(
        help="Lake path or s3:// URI [default: DDBTRAIL_LAKE or ./ddbtrail-lake].")] = None,
    workgroup: Annotated[str | None, typer.Option(help="Athena workgroup.")] = None,
    database: Annotated[str, typer.Option(help="Glue database (athena).")] = "ddbtrail",
    s3_output: Annotated[str | None, typer.Option(
        help="Athena result location, if the workgroup sets none.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="AWS endpoint URL.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region.")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Run a saved query on the local lake (DuckDB) or on Athena; print its rows."""
    values = parse_params(param or [])
    query = q.load(name)
    if engine == "duckdb":
        table = q.run_local(query, values, Lake.open(lake or default_lake(),
                                                     endpoint_url=endpoint_url, region=region))
    elif engine == "athena":
        session = None
        if region:
            import boto3

            session = boto3.Session(region_name=region)
        table = q.run_athena(query, values, database=database, workgroup=workgroup,
                             s3_output=s3_output, boto3_session=session,
                             endpoint_url=endpoint_url)
    else:
        raise UsageError(f"--engine {engine!r}: expected duckdb or athena")
    render(table.to_pylist(), output, columns=table.column_names, title=query.name)
