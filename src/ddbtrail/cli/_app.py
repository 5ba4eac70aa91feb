"""The Typer application and what every command shares."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from ddbtrail.core.timefmt import INSTANT_HELP

# Help lists commands in pipeline order: try, capture, query, see, operate.
COMMAND_ORDER = (
    "demo", "flatten", "capture", "backfill",
    "history", "who", "as-of", "queries", "query", "report", "schema", "views",
    "restore", "replicate", "copy", "redrive", "compact", "snapshot", "cost",
    "doctor", "verify",
)

# Every command describes --lake the same way.
LAKE_HELP = "Lake: a folder or s3://bucket/prefix [default: $DDBTRAIL_LAKE or ./ddbtrail-lake]."
LakeOpt = Annotated[str | None, typer.Option("--lake", help=LAKE_HELP)]


class LakeFormat(enum.StrEnum):
    """The lake's formats (an enum, so --help lists them and a typo is exit 2); the same
    as ``core.formats.LAKE_FORMATS`` (tests/unit/test_api_rules.py checks)."""

    parquet = "parquet"
    jsonl = "jsonl"
    iceberg = "iceberg"


# Options several commands share, described once.
TableOpt = Annotated[str, typer.Option("--table", "-t", help="DynamoDB table name.")]
ItemKeyOpt = Annotated[list[str], typer.Option(
    "--key", "-k", help="ATTR=VALUE of the item's key; repeat for a sort key.")]
SinceOpt = Annotated[str | None, typer.Option(
    help=f"Only changes at or after this instant: {INSTANT_HELP}.")]


FormatOpt = Annotated[LakeFormat, typer.Option(
    "--format", help="Lake format (iceberg: one Iceberg table, ddbtrail.changes).")]


class _PipelineOrder(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:  # Typer's own click Context
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda n: rank.get(n, len(rank)))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command's whole first sentence, wrapped, never cut off with '...'."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="ddbtrail",
    cls=_PipelineOrder,
    help="Item-level audit trail and change lake for Amazon DynamoDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from ddbtrail import __version__

        typer.echo(f"ddbtrail {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")]
        = False,
) -> None:
    """Item-level audit trail and change lake for Amazon DynamoDB."""
