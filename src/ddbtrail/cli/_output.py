"""``--output table|json|csv`` rendering, shared by every command.

``json`` prints one JSON object per line; ``csv`` a header and one line per row (lists and
maps as JSON text); ``table`` a rich table on the terminal.
"""

from __future__ import annotations

import csv
import enum
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ddbtrail.cli._app import console


class Output(enum.StrEnum):
    """How a command prints its rows."""

    table = "table"
    json = "json"
    csv = "csv"


OutputOption = Annotated[Output, typer.Option(
    "--output", "-o", help="table (for people), json (one object per line) or csv.")]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def render(rows: Sequence[Mapping[str, Any]], output: Output, *,
           columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print ``rows`` (only ``columns``, in that order, when given) in the chosen format."""
    cols = list(columns) if columns is not None else list(rows[0]) if rows else []
    if output is Output.json:
        for r in rows:
            sys.stdout.write(json.dumps({c: r.get(c) for c in cols}, ensure_ascii=False,
                                        default=str) + "\n")
    elif output is Output.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cols)
        for r in rows:
            writer.writerow([_cell(r.get(c)) for c in cols])
    else:
        table = Table(title=title, show_lines=False)
        for c in cols:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*(Text(_cell(r.get(c))) for c in cols))
        console.print(table)
        if not rows:
            console.print("(no rows)", style="dim")
