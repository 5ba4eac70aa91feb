"""``ddbtrail schema``: the attributes a table's items carry, learnt from the lake, and drift."""

from __future__ import annotations

import enum
import json
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ddbtrail.cli._app import LakeOpt, SinceOpt, app, console, err_console
from ddbtrail.cli._args import Bucket, BucketOption, open_lake
from ddbtrail.cli._aws import EndpointOpt, ProfileOpt, RegionOpt


class SchemaOutput(enum.StrEnum):
    """How ``schema`` prints its report."""

    table = "table"
    json = "json"


@app.command("schema")
def schema_command(
    *,
    table: Annotated[str, typer.Option(help="DynamoDB table name.")],
    lake: LakeOpt = None,
    since: SinceOpt = None,
    bucket: BucketOption = Bucket.day,
    output: Annotated[SchemaOutput, typer.Option(
        "--output", "-o", help="table (for people) or json (one document).")] = SchemaOutput.table,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Report every top-level attribute of TABLE's items, learnt from the change lake.

    For each attribute: the DynamoDB types seen and how often, first and last seen, the
    share of items that carry it, and the column type `ddbtrail views` would give it.
    Then drift: attributes that appeared, disappeared or changed type, and when.
    """
    import ddbtrail.api as dt

    schema = dt.schema(open_lake(lake, endpoint_url, region, profile), table, since=since,
                       bucket=bucket.value)
    report = schema.to_json()
    if output is SchemaOutput.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return
    _print_report(report)


def _print_report(report: dict[str, object]) -> None:
    attrs = Table(title=f"{report['table']}: {report['changes']:,} changes, "
                        f"{report['items']:,} items ({report['live_items']:,} live), "
                        f"{report['first_change']} to "
                        f"{report['last_change']}")
    for col in ("attribute", "column", "sql type", "types seen", "first seen", "last seen",
                "items", "live"):
        attrs.add_column(col, overflow="fold")
    for a in report["attributes"]:  # type: ignore[attr-defined]
        types = ", ".join(f"{t} x{n}" for t, n in a["types"].items())
        attrs.add_row(Text(json.dumps(a["name"], ensure_ascii=False)), a["column"],
                      a["sql_type"], types, a["first_seen"], a["last_seen"],
                      _pct(a["item_share"]), _pct(a["live_share"]))
    console.print(attrs)
    drift = report["drift"]
    if drift:
        dt = Table(title=f"drift (between {report['bucket']}s)")
        for col in ("at", "kind", "attribute", "before", "after", "detail"):
            dt.add_column(col, overflow="fold")
        for d in drift:  # type: ignore[attr-defined]
            dt.add_row(d["at"], d["kind"], Text(json.dumps(d["attribute"], ensure_ascii=False)),
                       "/".join(d["before"]), "/".join(d["after"]), d["detail"])
        console.print(dt)
    else:
        console.print("no drift", style="dim")
    for warning in report["warnings"]:  # type: ignore[attr-defined]
        err_console.print(f"warning: {warning}", markup=False, highlight=False)


def _pct(share: object) -> str:
    return f"{share:.0%}" if isinstance(share, float) else ""
