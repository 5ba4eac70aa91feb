"""``ddbtrail views``: typed BI views of one table, written as .sql and optionally created."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from ddbtrail.catalog.glue import DATABASE_NAME
from ddbtrail.catalog.views import (
    apply_athena,
    apply_duckdb_catalog,
    default_catalog_path,
    render_views,
    write_views,
)
from ddbtrail.cli._app import LakeOpt, SinceOpt, app, err_console
from ddbtrail.cli._args import Bucket, BucketOption, open_lake
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt, aws_session
from ddbtrail.lake.files import Lake

DEFAULT_OUT = "views"


class Apply(enum.StrEnum):
    """Where --apply creates the views."""

    duckdb = "duckdb"
    athena = "athena"


class Binary(enum.StrEnum):
    """How B attributes appear in the views."""

    base64 = "base64"
    varbinary = "varbinary"


@app.command("views")
def views_command(
    *,
    table: Annotated[str, typer.Option(help="DynamoDB table name.")],
    lake: LakeOpt = None,
    out: Annotated[str, typer.Option(help="Folder for the .sql files.")] = DEFAULT_OUT,
    apply: Annotated[Apply | None, typer.Option(
        help="Also create the views: duckdb (a local catalog file) or athena.")] = None,
    duckdb_path: Annotated[str | None, typer.Option(
        "--duckdb", help="DuckDB catalog file for --apply duckdb "
                         "[default: <lake>/_ddbtrail/ddbtrail.duckdb].")] = None,
    binary: Annotated[Binary, typer.Option(
        help="B attributes as base64 text (base64) or bytes (varbinary).")] = Binary.base64,
    since: SinceOpt = None,
    bucket: BucketOption = Bucket.day,
    database: Annotated[str, typer.Option(help="Glue database (athena).")] = DATABASE_NAME,
    workgroup: Annotated[str | None, typer.Option(help="Athena workgroup.")] = None,
    s3_output: Annotated[str | None, typer.Option(
        help="Athena result location, if the workgroup sets none.")] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Generate TABLE's typed views, <table>_changes_typed and <table>_current.

    Column types come from the attributes seen in the lake (see 'ddbtrail schema' and
    docs/bi.md). Writes one Athena .sql file per view to --out; --apply creates them.
    """
    import ddbtrail.api as dt

    schema = dt.schema(open_lake(lake, endpoint_url, region, profile), table, since=since,
                       bucket=bucket.value)
    view_set = render_views(schema, binary=binary.value)
    for warning in view_set.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False)
    for path in write_views(view_set, out):
        typer.echo(f"wrote {path}")
    if apply == "duckdb":
        the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
        target = duckdb_path or default_catalog_path(the_lake)
        names = apply_duckdb_catalog(view_set, the_lake, target)
        typer.echo(f"created in DuckDB {target}: {', '.join(names)}")
    elif apply == "athena":
        ids = apply_athena(view_set, database=database, workgroup=workgroup,
                           s3_output=s3_output, boto3_session=aws_session(region, profile),
                           endpoint_url=endpoint_url)
        typer.echo(f"created in Athena database {database}: "
                   f"{', '.join(v.name for v in view_set.views)} (queries {', '.join(ids)})")
