"""Trino as an engine: the saved Athena SQL, unchanged, on any Trino server.

Athena (engine version 3) is Trino, so the text in ``athena_queries/`` runs as it is; the
values go as bound parameters (the ``trino`` client's PREPARE ... EXECUTE USING, as Athena's
ExecutionParameters), never pasted into the SQL.

``table_ddl`` turns the Glue TableInput the stack deploys (``glue/*.json``) into Trino's
CREATE TABLE for the Hive connector, so a Trino over the lake (the local one of
``ddbtrail.query.trino_local``, or a team's own on the Glue catalog) sees the same columns,
types, SerDe and partition projection as Athena.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from ddbtrail.core.exceptions import InvalidArgument, QueryError, QueryUsageError
from ddbtrail.query.duck import quote_identifier, sql_string

DEFAULT_PORT: Final = 8080


@dataclass(frozen=True, slots=True)
class TrinoSettings:
    """Where and how to reach a Trino server. ``password`` or ``jwt`` need ``https``."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    catalog: str = "hive"
    schema: str = "ddbtrail"
    user: str = "ddbtrail"
    https: bool = False
    password: str | None = None
    jwt: str | None = None
    verify: bool | str = True  # False, or a CA bundle path, for a private certificate


def connect(settings: TrinoSettings) -> Any:
    """A ``trino.dbapi`` connection. Raises InvalidArgument (``https``) for a password or token
    without ``https`` (the client would send it in clear)."""
    try:
        from trino import auth, dbapi
    except ImportError as exc:
        raise QueryError("the trino engine needs the trino client: pip install "
                         "'ddbtrail[trino]'") from exc
    authentication: Any = None
    if settings.password is not None and settings.jwt is not None:
        raise QueryUsageError("trino: give a password or a JWT, not both")
    if settings.password is not None:
        authentication = auth.BasicAuthentication(settings.user, settings.password)
    elif settings.jwt is not None:
        authentication = auth.JWTAuthentication(settings.jwt)
    if authentication is not None and not settings.https:
        raise InvalidArgument("https", settings.https, "a Trino password or JWT needs https")
    return dbapi.connect(  # type: ignore[no-untyped-call]
        host=settings.host, port=settings.port, user=settings.user,
        catalog=settings.catalog, schema=settings.schema,
        http_scheme="https" if settings.https else "http", auth=authentication,
        verify=settings.verify, session_properties={}, timezone="UTC")


def execute(con: Any, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
    """Run one statement; the result as an Arrow table (columns in result order, values
    as the client returns them). Raises the client's errors."""
    cursor = con.cursor()
    try:
        cursor.execute(sql, list(params) if params else None)
        data = cursor.fetchall()
        names = [d[0] for d in cursor.description or []]
    finally:
        cursor.close()
    columns = {name: [row[i] for row in data] for i, name in enumerate(names)}
    try:
        return pa.table(columns) if names else pa.table({})
    except (pa.ArrowException, TypeError, ValueError):
        # Mixed values (a JSON column) keep their text form.
        return pa.table({k: [None if v is None else _text(v) for v in vs]
                         for k, vs in columns.items()})


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def run_sql(name: str, sql: str, params: Sequence[Any],
            settings: TrinoSettings | None = None, *, con: Any = None) -> pa.Table:
    """Run query ``name``'s SQL on Trino with ``params`` bound in ``?`` order (on ``con``,
    or a connection to ``settings``). Raises QueryError naming the query and Trino's error
    on one line; QueryUsageError for bad connection settings."""
    own = con is None
    con = con or connect(settings or TrinoSettings())
    try:
        return execute(con, sql, params)
    except Exception as exc:  # the client raises its own, requests' and socket errors
        raise QueryError(f"query {name} failed on Trino: {error_line(exc)}") from exc
    finally:
        if own:
            con.close()


def error_line(exc: BaseException) -> str:
    """Trino's message for ``exc`` on one line (the client puts it in ``message``)."""
    message = getattr(exc, "message", None) or str(exc)
    text = str(message).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- DDL

# Glue (Hive) column types to Trino's.
_SCALARS: Final = {"string": "varchar", "int": "integer", "bigint": "bigint",
                   "boolean": "boolean", "double": "double", "timestamp": "timestamp(3)",
                   "date": "date", "binary": "varbinary"}
# A Glue SerDe to the Hive connector's ``format``.
FORMATS: Final = {
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe": "PARQUET",
    "org.apache.hive.hcatalog.data.JsonSerDe": "JSON",
    "org.openx.data.jsonserde.JsonSerDe": "OPENX_JSON",
}
CLOUDTRAIL_FILE: Final = "records.jsonl"
# The lake's root in the Glue definitions: the bucket and the ``lake/`` prefix.
_LOCATION: Final = re.compile(r"s3://[^/]+/lake/")


_RELATIVE: Final = re.compile(r"\s*NOW\s*([+-])\s*(\d+)\s*(YEAR|MONTH|WEEK)S?\s*\Z", re.I)
_DAYS_PER: Final = {"YEAR": 366, "MONTH": 31, "WEEK": 7}


def trino_date_bound(bound: str) -> str:
    """A date projection bound as Trino takes it. Athena accepts ``NOW-5YEARS``; Trino only
    DAY, HOUR, MINUTE or SECOND units, so years, months and weeks become days, rounded up
    (366, 31, 7 per unit): the projected range is never shorter than Athena's."""
    m = _RELATIVE.match(bound)
    if m is None:
        return bound.strip()
    sign, count, unit = m.groups()
    return f"NOW{sign}{int(count) * _DAYS_PER[unit.upper()]}DAYS"


def trino_type(glue_type: str) -> str:
    """A Glue/Hive type as Trino spells it (``array<string>`` -> ``array(varchar)``,
    ``struct<a:string>`` -> ``row("a" varchar)``, ``map<k,v>`` -> ``map(k, v)``)."""
    from ddbtrail.core.cloudtrail import split_type

    t = glue_type.strip().lower()
    if t.startswith("array<") and t.endswith(">"):
        return f"array({trino_type(t[6:-1])})"
    if t.startswith("struct<") and t.endswith(">"):
        fields = [part.partition(":") for part in split_type(t[7:-1])]
        return "row(" + ", ".join(f"{quote_identifier(n)} {trino_type(sub)}"
                                  for n, _, sub in fields) + ")"
    if t.startswith("map<") and t.endswith(">"):
        key, value = split_type(t[4:-1])
        return f"map({trino_type(key)}, {trino_type(value)})"
    if t in _SCALARS:
        return _SCALARS[t]
    raise QueryError(f"Glue type {glue_type!r} has no Trino form here")


def _projection(params: Mapping[str, str], column: str,
                table_names: Sequence[str] | None) -> str:
    """The column's partition projection properties, from Glue's ``projection.<col>.*``."""
    prefix = f"projection.{column}."
    kind = params.get(prefix + "type")
    if kind is None:
        return ""
    props = [f"partition_projection_type = {sql_string(kind)}"]
    if kind == "enum":
        names = list(table_names) if table_names else params[prefix + "values"].split(",")
        props.append("partition_projection_values = ARRAY["
                     + ", ".join(sql_string(n) for n in names) + "]")
    elif kind == "date":
        props.append(f"partition_projection_format = {sql_string(params[prefix + 'format'])}")
        props.append("partition_projection_range = ARRAY["
                     + ", ".join(sql_string(trino_date_bound(r))
                                 for r in params[prefix + "range"].split(","))
                     + "]")
        if prefix + "interval" in params:
            props.append(f"partition_projection_interval = {int(params[prefix + 'interval'])}")
        if prefix + "interval.unit" in params:
            props.append("partition_projection_interval_unit = "
                         + sql_string(params[prefix + "interval.unit"]))
    return " WITH (" + ", ".join(props) + ")"


def table_ddl(table_input: Mapping[str, Any], *, name: str, location: str,
              table_names: Sequence[str] | None = None) -> str:
    """Trino CREATE TABLE (Hive connector) for a Glue TableInput: its columns and
    partition keys with their types, its SerDe as ``format``, its partition projection
    (``table_names`` replaces the enum of source tables when given) and its location
    template, with the ``s3://<bucket>/lake/`` prefix replaced by ``location`` (which ends in
    ``/``). Raises QueryError for a SerDe or type with no Trino form."""
    storage = table_input["StorageDescriptor"]
    serde = storage["SerdeInfo"]["SerializationLibrary"]
    if serde not in FORMATS:
        raise QueryError(f"table {table_input['Name']}: SerDe {serde} has no Trino format")
    params = table_input.get("Parameters", {})
    columns = [f"{quote_identifier(c['Name'])} {trino_type(c['Type'])}" for c in storage["Columns"]]
    keys = table_input.get("PartitionKeys", [])
    columns += [f"{quote_identifier(k['Name'])} {trino_type(k['Type'])}"
                f"{_projection(params, k['Name'], table_names)}" for k in keys]
    props = [f"format = {sql_string(FORMATS[serde])}",
             f"external_location = {sql_string(_LOCATION.sub(location, storage['Location']))}"]
    if keys:
        props.append("partitioned_by = ARRAY["
                     + ", ".join(sql_string(k["Name"]) for k in keys) + "]")
    if params.get("projection.enabled") == "true":
        props.append("partition_projection_enabled = true")
        template = params.get("storage.location.template")
        if template:
            props.append("partition_projection_location_template = "
                         + sql_string(_LOCATION.sub(location, template)))
    return (f"CREATE TABLE {name} (\n  " + ",\n  ".join(columns) + "\n) WITH (\n  "
            + ",\n  ".join(props) + "\n)")


# --------------------------------------------------------------------------- CloudTrail


def cloudtrail_table_input(location: str, start_day: str) -> dict[str, Any]:
    """The ``cloudtrail_logs`` TableInput the stack deploys (infra/constructs/cloudtrail.py),
    with Trino's nearest equivalent of its storage: Trino has no CloudTrailInputFormat, so
    the table reads JSON Lines, one record per line (``write_cloudtrail_jsonl``), with the
    same columns, JSON SerDe and ``timestamp`` projection."""
    from ddbtrail.core.cloudtrail import (
        ATHENA_COLUMNS,
        ATHENA_PARTITION,
        ATHENA_TABLE,
        athena_table_properties,
    )

    return {
        "Name": ATHENA_TABLE,
        "Parameters": {"EXTERNAL": "TRUE", "classification": "cloudtrail",
                       **athena_table_properties(location, start_day)},
        "PartitionKeys": [{"Name": ATHENA_PARTITION, "Type": "string"}],
        "StorageDescriptor": {
            "Location": location,
            "Columns": [{"Name": n, "Type": t} for n, t in ATHENA_COLUMNS],
            "SerdeInfo": {"SerializationLibrary": "org.apache.hive.hcatalog.data.JsonSerDe"},
        },
    }


def write_cloudtrail_jsonl(trail: Any, folder: Any, days: Sequence[str] | None = None) -> int:
    """Write the records of ``trail``'s log files (a ``TrailLogs``) as JSON Lines under
    ``folder`` (a Path), one file per day folder ``yyyy/MM/dd``, each record shaped as
    the Athena table reads it (``core.cloudtrail.athena_row``). Returns the record count."""
    from ddbtrail.core.cloudtrail import ATHENA_PARTITION, athena_row

    by_day: dict[str, list[str]] = {}
    for _, day, document in trail.documents(days):
        records = document.get("Records") if isinstance(document, Mapping) else None
        for record in records if isinstance(records, list) else []:
            if isinstance(record, Mapping):
                row = athena_row(record, day)
                row.pop(ATHENA_PARTITION)
                by_day.setdefault(day, []).append(json.dumps(row, ensure_ascii=False))
    for day, lines in by_day.items():
        target = folder / day
        target.mkdir(parents=True, exist_ok=True)
        (target / CLOUDTRAIL_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sum(len(lines) for lines in by_day.values())
