"""Comparing one statement's rows on DuckDB and on Trino: the canonical form.

Both engines' rows become ``canonical`` values, then the result is a sorted list (by the
JSON text of each row): row order is compared only where a test says so. Normalisation:
Decimal with no fraction -> int, other Decimal and float -> float rounded to 9 places,
datetime -> ISO-8601 UTC with microseconds, date -> ISO date, bytes -> hex, tuples ->
lists, maps -> dicts with sorted string keys. Nothing else is changed: a string stays
the exact text each engine produced.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa


def canonical(value: Any) -> Any:
    """One value in the form both engines' results are compared in."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else round(float(value), 9)
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):
            return {str(k): canonical(v) for k, v in sorted(value, key=lambda kv: str(kv[0]))}
        return [canonical(x) for x in value]
    return str(value)


def canonical_rows(table: pa.Table, *, ordered: bool = False) -> list[list[Any]]:
    """The rows as lists of canonical values, sorted unless ``ordered``."""
    names = table.column_names
    rows = [[canonical(row[n]) for n in names] for row in table.to_pylist()]
    return rows if ordered else sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
