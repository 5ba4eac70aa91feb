"""The CloudTrail table (``cloudtrail_logs``) on DuckDB, as Athena sees it.

Same columns and types as the Athena table AWS documents (``core.cloudtrail.ATHENA_COLUMNS``,
partition ``timestamp`` yyyy/MM/dd), filled from the log files of a ``TrailLogs`` location
through ``core.cloudtrail.athena_row``: objects in string columns become JSON text and
booleans ``true``/``false``, as Athena's JSON SerDe reads them. Saved queries that read
the table (item_history_with_actor) then run unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from ddbtrail.core.cloudtrail import (
    ATHENA_COLUMNS,
    ATHENA_PARTITION,
    ATHENA_TABLE,
    athena_row,
    split_type,
)
from ddbtrail.core.timefmt import parse_timestamp
from ddbtrail.lake.cloudtrail import TrailLogs


def arrow_type(hive_type: str) -> pa.DataType:
    """Arrow type of a Hive type string (string, struct<..>, array<..>, map<string,string>)."""
    if hive_type == "string":
        return pa.string()
    if hive_type.startswith("struct<"):
        fields = []
        for part in split_type(hive_type[7:-1]):
            name, _, sub = part.partition(":")
            fields.append(pa.field(name, arrow_type(sub)))
        return pa.struct(fields)
    if hive_type.startswith("array<"):
        return pa.list_(arrow_type(hive_type[6:-1]))
    if hive_type.startswith("map<"):
        key, value = split_type(hive_type[4:-1])
        return pa.map_(arrow_type(key), arrow_type(value))
    raise ValueError(f"no Arrow type for Hive type {hive_type!r}")


def arrow_schema() -> pa.Schema:
    """The table's schema, partition column last."""
    return pa.schema([pa.field(n, arrow_type(t)) for n, t in ATHENA_COLUMNS]
                     + [pa.field(ATHENA_PARTITION, pa.string())])


def _arrow_rows(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    fixed = []
    for row in rows:
        out = dict(row)
        # pyarrow wants a map as a list of pairs.
        ident = out.get("useridentity")
        if ident and ident.get("sessioncontext") and ident["sessioncontext"].get(
                "webidfederationdata"):
            wif = ident["sessioncontext"]["webidfederationdata"]
            if isinstance(wif.get("attributes"), Mapping):
                wif["attributes"] = list(wif["attributes"].items())
        fixed.append(out)
    return pa.Table.from_pylist(fixed, schema=arrow_schema())


def days_between(from_iso: str | None, to_iso: str | None) -> list[str] | None:
    """Day folders (YYYY-MM-DD) from ``from_iso`` to the day after ``to_iso`` (CloudTrail
    delivers files minutes after their events); None (every day) without both."""
    if not from_iso or not to_iso:
        return None
    first = datetime.fromtimestamp(parse_timestamp(from_iso) / 1000, UTC).date()
    last = datetime.fromtimestamp(parse_timestamp(to_iso) / 1000, UTC).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 2)]


def register(con: duckdb.DuckDBPyConnection, trail: TrailLogs | None,
             days: Iterable[str] | None = None) -> list[str]:
    """Create ``cloudtrail_logs`` on ``con`` from the log files of ``days`` (YYYY-MM-DD;
    every day when None), or empty when ``trail`` is None. Returns the problems found."""
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    if trail is not None:
        for _, day, document in trail.documents(days, problems):
            records = document.get("Records") if isinstance(document, Mapping) else None
            if not isinstance(records, list):
                continue
            rows.extend(athena_row(r, day) for r in records if isinstance(r, Mapping))
    con.register("_cloudtrail_rows", _arrow_rows(rows))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ATHENA_TABLE} AS SELECT * FROM _cloudtrail_rows")
    return problems


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """An empty ``cloudtrail_logs`` unless the connection has one (queries still run)."""
    present = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
                          [ATHENA_TABLE]).fetchall()
    if not present[0][0]:
        register(con, None)
