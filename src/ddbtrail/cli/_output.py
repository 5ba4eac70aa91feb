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
from typing import Annotated, Any, Final

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


# Columns whose values are JSON text in the lake (images, keys, hints): printed as JSON
# objects by ``-o json`` everywhere, the text kept as stored (numbers keep every digit).
JSON_COLUMNS: Final = frozenset({"keys", "old_image", "new_image", "item", "type_hints"})
# Borders and padding of a column in the table style below.
_COLUMN_GAP: Final = 3
_MIN_WRAP_WIDTH: Final = 16


def _json_value(column: str, value: Any) -> str:
    if column in JSON_COLUMNS and isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            pass  # not JSON after all: a string, as any other
        else:
            return value
    return json.dumps(value, ensure_ascii=False, default=str)


def json_line(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """One row as one JSON object; JSON_COLUMNS are embedded as JSON, not as strings."""
    return "{" + ",".join(json.dumps(c, ensure_ascii=False) + ":" + _json_value(c, row.get(c))
                          for c in columns) + "}"


def render(rows: Sequence[Mapping[str, Any]], output: Output, *,
           columns: Sequence[str] | None = None, title: str | None = None,
           wrap: Sequence[str] = ()) -> None:
    """Print ``rows`` (only ``columns``, in that order, when given) in the chosen format.

    In a table only the ``wrap`` columns wrap (at spaces); every other value (times,
    sequence numbers, names) stays whole. When the whole values do not fit the terminal,
    each row is printed as a block of ``column  value`` lines instead.
    """
    cols = list(columns) if columns is not None else list(rows[0]) if rows else []
    if output is Output.json:
        for r in rows:
            sys.stdout.write(json_line(r, cols) + "\n")
    elif output is Output.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cols)
        for r in rows:
            writer.writerow([_cell(r.get(c)) for c in cols])
    else:
        cells = [[_cell(r.get(c)) for c in cols] for r in rows]
        need = sum(max([len(c)] + [len(row[i]) for row in cells]) if c not in wrap
                   else max(len(c), _MIN_WRAP_WIDTH) for i, c in enumerate(cols))
        if cols and need + _COLUMN_GAP * len(cols) + 1 > console.width:
            _render_blocks(cols, cells, title)
            return
        table = Table(title=title, show_lines=False)
        for c in cols:
            table.add_column(c, no_wrap=c not in wrap, min_width=len(c),
                             overflow="fold" if c in wrap else "ellipsis")
        for row in cells:
            table.add_row(*(Text(v) for v in row))
        console.print(table)
        if not rows:
            console.print("(no rows)", style="dim")


def _render_blocks(cols: Sequence[str], cells: Sequence[Sequence[str]],
                   title: str | None) -> None:
    """Rows as blocks of ``column  value`` lines, for terminals too narrow for a table."""
    if title:
        console.print(Text(title, style="italic"), justify="center")
    width = max(len(c) for c in cols)
    for n, row in enumerate(cells, 1):
        console.print(Text(f"-[ {n} ]" + "-" * max(0, min(console.width, 40) - 7), style="dim"))
        for c, v in zip(cols, row, strict=True):
            line = Text(f"{c:<{width}}  ", style="bold")
            line.append(v)
            console.print(line, overflow="fold")
