"""The Typer application and what every command shares."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="ddbtrail",
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
