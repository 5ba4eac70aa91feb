"""``ddbtrail flatten``: show the rows a captured Lambda event would deliver."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ddbtrail.cli._app import app, err_console
from ddbtrail.cli._errors import UsageError, options_in
from ddbtrail.core.exceptions import MalformedEvent
from ddbtrail.core.flatten import event_records, flatten_records, row_json


@app.command()
def flatten(
    file: Annotated[str, typer.Argument(help="Event JSON file, or - for standard input.")] = "-",
    table: Annotated[str | None, typer.Option(
        help="Table name, for events whose eventSourceARN names none.")] = None,
) -> None:
    """Print the rows a Lambda DynamoDB Streams event would deliver, one JSON per line.

    Bad records are named on stderr; the others are still printed. Exits 1 if any
    record was bad.
    """
    try:
        if file != "-":
            raw = Path(file).read_bytes()
        elif hasattr(sys.stdin, "buffer"):
            raw = sys.stdin.buffer.read()
        else:  # a text stream without bytes (an embedding program's)
            raw = sys.stdin.read().encode("utf-8", "surrogateescape")
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"{file}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                             f"offset {exc.start}); an event is UTF-8 JSON") from exc
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(f"{file}: not valid JSON ({exc})") from exc
    bad = 0
    now_ms = int(time.time() * 1000)
    for item in flatten_records(event_records(event), ingested_at_ms=now_ms, table_name=table):
        if item.error is not None:
            bad += 1
            err_console.print(f"error: {options_in(str(item.error))}", markup=False,
                              highlight=False)
        else:
            assert item.row is not None
            sys.stdout.write(row_json(item.row) + "\n")
    if bad:
        raise typer.Exit(1)
