"""The Typer application and what every command shares."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

# Help lists commands in pipeline order: try, capture, query, see, operate.
COMMAND_ORDER = (
    "demo", "flatten", "capture",
    "history", "as-of", "queries", "query", "report", "schema", "views",
    "backfill", "restore", "replicate", "copy", "redrive", "compact", "cost",
)


class _PipelineOrder(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:  # Typer's own click Context
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda n: rank.get(n, len(rank)))


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


@app.callback()
def _root() -> None:
    """Item-level audit trail and change lake for Amazon DynamoDB."""
