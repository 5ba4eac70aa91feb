"""Typed BI views of one table, generated from the schema learnt from the lake.

Two Athena views per DynamoDB table, one typed column per top-level attribute:

- ``<table>_changes_typed``: every change, repeated deliveries removed (one row per
  event_id); attribute columns hold the item after the change (before it, for a REMOVE).
- ``<table>_current``: each live item's latest state (items whose last change is a
  REMOVE are left out).

The SQL is Athena's (Trino) dialect, written as one ``.sql`` file per view, and parses
with sqlglot. On DuckDB it runs through the same sqlglot transpilation as the saved
queries, plus one rewrite (``exact_decimals``): DuckDB's JSON functions read non-integer
numbers as doubles, so a DECIMAL column is read with ``from_json`` instead, which keeps
every digit. Column types follow ``schema_infer.column_type``; docs/bi.md has the rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from ddbtrail.catalog.glue import DATABASE_NAME, TABLE_NAME
from ddbtrail.catalog.schema_infer import (
    ColumnType,
    TableSchema,
    column_names,
    column_type,
    sanitize_identifier,
)
from ddbtrail.core.exceptions import ConfigError, InvalidArgument, QueryError
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.query.duck import quote_identifier, sql_string

if TYPE_CHECKING:
    import boto3
    import duckdb
    from sqlglot import exp

    from ddbtrail.lake.files import Lake

ViewKind = Literal["changes_typed", "current"]
VIEW_KINDS: Final[tuple[ViewKind, ...]] = ("changes_typed", "current")
BINARY_MODES: Final = ("base64", "varbinary")
# AWS::Athena::NamedQuery QueryString limit.
NAMED_QUERY_MAX_CHARS: Final = 262_144
CATALOG_FILE: Final = "ddbtrail.duckdb"

# The change time as a timestamp without zone holding UTC time, to the millisecond, whatever
# the engine and session time zone (some BI tools reject zoned types). Read from event_time:
# Trino, so Athena, refuses date_add('millisecond', <epoch ms>, ...) (the amount must fit an
# int).
_AS_TIMESTAMP: Final = ("CAST(from_iso8601_timestamp(event_time) AT TIME ZONE 'UTC' "
                        "AS timestamp(3))")
# System columns of each view: (column, SQL expression over the ranked row, type, comment).
_CHANGE_COLUMNS: Final = (
    ("event_id", "event_id", "varchar", "stream eventID (unique per row)"),
    ("sequence_number", "sequence_number", "varchar",
     "stream SequenceNumber; order one item's changes by (length, value)"),
    ("action", "action", "varchar", "INSERT | MODIFY | REMOVE | SNAPSHOT"),
    ("item_key", "item_key", "varchar", "canonical item key, compact JSON"),
    ("event_time", "event_time", "varchar", "change time, ISO-8601 UTC"),
    ("changed_at", _AS_TIMESTAMP, "timestamp", "change time as a timestamp (UTC, no zone)"),
    ("ttl_delete", "ttl_delete", "boolean", "true when DynamoDB TTL made the REMOVE"),
    ("user_identity", "user_identity", "varchar", "principal of a TTL (service) delete"),
    ("dt", "dt", "varchar", "partition: change date YYYY-MM-DD (UTC); filter on it to prune"),
)
_CURRENT_COLUMNS: Final = (
    ("item_key", "item_key", "varchar", "canonical item key, compact JSON (one row per item)"),
    ("last_event_id", "event_id", "varchar", "eventID of the item's latest change"),
    ("last_action", "action", "varchar", "INSERT | MODIFY | SNAPSHOT"),
    ("last_sequence_number", "sequence_number", "varchar", "SequenceNumber of that change"),
    ("last_event_time", "event_time", "varchar", "time of that change, ISO-8601 UTC"),
    ("last_changed_at", _AS_TIMESTAMP, "timestamp", "that time as a timestamp (UTC, no zone)"),
)
RESERVED_COLUMNS: Final = frozenset(c[0] for c in _CHANGE_COLUMNS + _CURRENT_COLUMNS)


@dataclass(frozen=True, slots=True)
class ViewColumn:
    """One attribute column: where it comes from and how it is typed."""

    column: str
    attribute: str
    type: ColumnType
    comment: str


@dataclass(frozen=True, slots=True)
class GeneratedView:
    """One generated view: its name, kind and ``CREATE OR REPLACE VIEW`` statement (Athena)."""

    name: str
    kind: ViewKind
    sql: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.sql"


@dataclass(frozen=True, slots=True)
class ViewSet:
    """The views of one table and the warnings about how they type its attributes."""

    table: str
    views: tuple[GeneratedView, ...]
    columns: tuple[ViewColumn, ...]
    warnings: tuple[str, ...]

    def view(self, kind: ViewKind) -> GeneratedView:
        return next(v for v in self.views if v.kind == kind)


def view_name(table: str, kind: ViewKind) -> str:
    """``<table>_changes_typed`` or ``<table>_current``, the table name sanitized."""
    return f"{sanitize_identifier(table)}_{kind}"


# --------------------------------------------------------------------------- SQL pieces


def json_path(attribute: str) -> str:
    """Athena JSON path of a top-level attribute: ``$["name"]`` (``\\`` and ``"`` escaped).

    Bracket notation takes any characters, where ``$.name`` takes only letters, digits
    and ``_``.
    """
    return '$["' + attribute.replace("\\", "\\\\").replace('"', '\\"') + '"]'


def extract_expression(attribute: str, kind: str, sql_type: str, image: str = "image") -> str:
    """The Athena expression reading ``attribute`` from the JSON text column ``image``.

    Scalars are read as text (json_extract_scalar returns a number's exact digits) and
    TRY_CAST to the type: a value that does not fit (drift after the views were made)
    reads as NULL instead of failing the query. Sets, lists and maps become JSON text.
    """
    path = sql_string(json_path(attribute))
    scalar = f"json_extract_scalar({image}, {path})"
    if kind == "varchar":
        return scalar
    if kind in ("bigint", "decimal", "boolean"):
        return f"TRY_CAST({scalar} AS {sql_type.upper()})"
    if kind == "binary":
        return f"from_base64({scalar})"
    if kind == "json":
        return f"json_format(json_extract({image}, {path}))"
    raise ValueError(f"unknown column kind {kind!r}")


def plan_columns(schema: TableSchema, *, binary: str = "base64") -> list[ViewColumn]:
    """One column per attribute, in attribute-name order, named per ``column_names``."""
    if binary not in BINARY_MODES:
        raise InvalidArgument("binary", binary, f"must be one of {', '.join(BINARY_MODES)}")
    names = column_names((s.name for s in schema.attributes), RESERVED_COLUMNS)
    out = []
    for stats in schema.attributes:
        ctype = column_type(stats, binary=binary)
        seen = ", ".join(f"{t} x{n}" for t, n in sorted(stats.types.items()))
        out.append(ViewColumn(names[stats.name], stats.name, ctype,
                              f"attribute {json.dumps(stats.name)} ({seen})"))
    return out


def _header(view: tuple[str, str, str], schema: TableSchema,
            system: Sequence[tuple[str, str, str, str]], columns: Sequence[ViewColumn],
            warnings: Sequence[str]) -> list[str]:
    # The saved queries' header (ddbtrail.query.saved.parse_query reads it): name, kind,
    # question, note, parameters, output.
    name, question, grain = view
    window = "no changes"
    if schema.first_ms is not None and schema.last_ms is not None:
        window = (f"{schema.changes} changes from {iso_ms(schema.first_ms)} to "
                  f"{iso_ms(schema.last_ms)}")
    width = max([len(c[0]) for c in system] + [len(c.column) for c in columns] + [8])
    lines = [
        f"-- name: {name}",
        "-- kind: view",
        f"-- question: {question}",
        f"-- note: grain: {grain}. Generated by `ddbtrail views` from {window}; regenerate",
        "--   when `ddbtrail schema` reports drift. Values that no longer fit their column's",
        "--   type read as NULL.",
    ]
    lines += [f"--   warning: {json.dumps(w, ensure_ascii=True)[1:-1]}" for w in warnings]
    lines += ["-- parameters:", "-- output:"]
    lines += [f"--   {col:<{width}}  {typ:<15} {comment}" for col, _e, typ, comment in system]
    lines += [f"--   {c.column:<{width}}  {c.type.sql_type:<15} {c.comment}" for c in columns]
    return lines


def _select_list(system: Sequence[tuple[str, str, str, str]],
                 columns: Sequence[ViewColumn]) -> str:
    items = [f"    {expr} AS {quote_identifier(col)}" for col, expr, _t, _c in system]
    items += [f"    {extract_expression(c.attribute, c.type.kind, c.type.sql_type)} AS "
              f"{quote_identifier(c.column)}" for c in columns]
    return ",\n".join(items)


def render_views(schema: TableSchema, *, binary: str = "base64",
                 source: str = TABLE_NAME) -> ViewSet:
    """The two views of ``schema.table`` over the ``source`` table (Glue's ``changes``).

    Raises QueryError if a generated statement does not parse as Athena SQL.
    """
    columns = plan_columns(schema, binary=binary)
    warnings = tuple(schema.warnings(binary=binary))
    table_literal = sql_string(schema.table)
    changes_name = view_name(schema.table, "changes_typed")
    current_name = view_name(schema.table, "current")

    changes_sql = "\n".join([
        *_header((changes_name,
                  f"Every change of DynamoDB table {json.dumps(schema.table)}, repeated "
                  "deliveries removed, one typed column per attribute (the item after the "
                  "change; before it for a REMOVE).",
                  "one row per change (event_id)"), schema, _CHANGE_COLUMNS, columns,
                 warnings),
        f"CREATE OR REPLACE VIEW {quote_identifier(changes_name)} AS",
        "SELECT",
        _select_list(_CHANGE_COLUMNS, columns),
        "FROM (",
        "    SELECT",
        "        *,",
        "        COALESCE(new_image, old_image, keys) AS image,",
        "        row_number() OVER (PARTITION BY event_id ORDER BY ingested_at) AS copy_number",
        f"    FROM {quote_identifier(source)}",
        f"    WHERE table_name = {table_literal}",
        ") AS deduped",
        "WHERE copy_number = 1",
        "",
    ])
    current_sql = "\n".join([
        *_header((current_name,
                  f"The current state of every live item of DynamoDB table "
                  f"{json.dumps(schema.table)}, one typed column per attribute.",
                  "one row per live item (item_key)"), schema, _CURRENT_COLUMNS, columns,
                 warnings),
        f"CREATE OR REPLACE VIEW {quote_identifier(current_name)} AS",
        "SELECT",
        _select_list(_CURRENT_COLUMNS, columns),
        "FROM (",
        "    SELECT",
        "        *,",
        "        COALESCE(new_image, keys) AS image,",
        "        row_number() OVER (",
        "            PARTITION BY item_key",
        '            ORDER BY "timestamp" DESC,',
        "                     length(sequence_number) DESC, sequence_number DESC",
        "        ) AS recency",
        f"    FROM {quote_identifier(source)}",
        f"    WHERE table_name = {table_literal}",
        ") AS ranked",
        "WHERE recency = 1",
        "  AND action <> 'REMOVE'",
        "",
    ])
    views = (GeneratedView(changes_name, "changes_typed", changes_sql),
             GeneratedView(current_name, "current", current_sql))
    extra: list[str] = []
    for view in views:
        parse_athena(view.sql)
        if len(view.sql) > NAMED_QUERY_MAX_CHARS:
            extra.append(f"view {view.name}: {len(view.sql)} characters, more than an Athena "
                         f"named query holds ({NAMED_QUERY_MAX_CHARS}); apply it directly")
    return ViewSet(schema.table, views, tuple(columns), warnings + tuple(extra))


def parse_athena(sql: str) -> exp.Expr:
    """Parse one statement as Athena SQL; QueryError names what sqlglot rejected."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        return sqlglot.parse_one(sql, read="athena")
    except SqlglotError as exc:
        raise QueryError(f"generated view does not parse as Athena SQL: {exc}") from exc


def write_views(view_set: ViewSet, out_dir: str | Path) -> list[Path]:
    """Write each view to ``<out_dir>/<view>.sql`` (folder created); returns the paths."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for view in view_set.views:
            path = folder / view.file_name
            path.write_text(view.sql, encoding="utf-8")
            paths.append(path)
    except OSError as exc:
        raise InvalidArgument("out", str(out_dir), f"cannot write ({exc.strerror})") from exc
    return paths


# --------------------------------------------------------------------------- DuckDB


def exact_decimals(node: exp.Expr) -> exp.Expr:
    """sqlglot rewrite: read DECIMAL columns from JSON on DuckDB without a double.

    ``TRY_CAST(json_extract_scalar(x, '$["k"]') AS DECIMAL(p, s))`` (or DuckDB's
    ``x ->> '$.k'``) becomes ``struct_extract(from_json(x, '{"k": "DECIMAL(p, s)"}'), 'k')``:
    DuckDB's from_json parses the number's text straight into a DECIMAL, where ``->>``
    reads it as a double and keeps ~17 digits. A value of another type reads as NULL, as
    TRY_CAST does. Use with ``tree.transform``; other nodes come back unchanged.
    """
    from sqlglot import exp

    if not isinstance(node, exp.Cast) or not node.to.is_type(exp.DataType.Type.DECIMAL):
        return node
    inner = node.this
    if not isinstance(inner, exp.JSONExtractScalar):
        return node
    path = inner.expression
    parts = path.expressions if isinstance(path, exp.JSONPath) else []
    if len(parts) != 2 or not isinstance(parts[0], exp.JSONPathRoot) \
            or not isinstance(parts[1], exp.JSONPathKey) or not isinstance(parts[1].this, str):
        return node
    key = parts[1].this
    spec = json.dumps({key: node.to.sql(dialect="duckdb")}, ensure_ascii=False)
    parsed = exp.Anonymous(this="from_json",
                           expressions=[inner.this.copy(), exp.Literal.string(spec)])
    return exp.Anonymous(this="struct_extract", expressions=[parsed, exp.Literal.string(key)])


def rewrite_exact_decimals(tree: exp.Expr) -> exp.Expr:
    """``exact_decimals`` over a whole tree: the shape of ``ddbtrail.query.saved.REWRITES``."""
    return tree.transform(exact_decimals)


def to_duckdb(view: GeneratedView) -> str:
    """The view as DuckDB SQL, translated as the saved queries are.

    The same sqlglot path as ``ddbtrail.query.saved.to_duckdb`` (parse as Athena, its
    REWRITES, generate DuckDB), plus ``rewrite_exact_decimals``; views take no parameters.
    Raises QueryError when the SQL cannot be translated.
    """
    from ddbtrail.query import saved as queries

    queries.parse_query(view.sql, Path(view.file_name))  # the header must be a valid one
    return queries.transpile(view.sql, f"view {view.name}", (rewrite_exact_decimals,))


def apply_duckdb(view_set: ViewSet, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create the views in a DuckDB connection that has a ``changes`` relation.

    Returns the view names. Raises QueryError naming the view DuckDB rejected.
    """
    import duckdb

    created = []
    for view in view_set.views:
        sql = to_duckdb(view)
        try:
            con.execute(sql)
        except duckdb.Error as exc:
            raise QueryError(f"view {view.name}: DuckDB rejected it ({exc})") from exc
        created.append(view.name)
    return created


def default_catalog_path(lake: Lake) -> str:
    """``<lake>/_ddbtrail/ddbtrail.duckdb`` for a local lake; an s3:// lake needs a path."""
    if not lake.is_local:
        raise InvalidArgument("duckdb", None, f"lake {lake.uri} is on S3: give the path of "
                              "the local DuckDB catalog file")
    return lake.state_path(CATALOG_FILE)


def apply_duckdb_catalog(view_set: ViewSet, lake: Lake, path: str | Path) -> list[str]:
    """Create ``changes`` and the views in the DuckDB database file ``path`` (created).

    Returns the names created. Raises QueryError when DuckDB rejects a statement, and
    InvalidArgument when the file cannot be opened (a BI tool holding it open for writing).
    """
    from ddbtrail.query.duck import open_catalog

    con = open_catalog(lake, path)
    try:
        return [TABLE_NAME, *apply_duckdb(view_set, con)]
    finally:
        con.close()


# --------------------------------------------------------------------------- Athena


def apply_athena(view_set: ViewSet, *, database: str = DATABASE_NAME,
                 workgroup: str | None = None, s3_output: str | None = None,
                 boto3_session: boto3.Session | None = None,
                 endpoint_url: str | None = None) -> list[str]:
    """Run each CREATE OR REPLACE VIEW in Athena through awswrangler; returns query ids.

    Waits for each statement. ``endpoint_url`` overrides the Athena and S3 endpoints (as
    ``ddbtrail.query.saved.run_athena`` does). Raises QueryError naming the view Athena fails.
    """
    try:
        import awswrangler as wr
    except ImportError as exc:
        raise ConfigError("creating views in Athena needs awswrangler: pip install "
                          "'ddbtrail[athena]'") \
            from exc
    if endpoint_url:
        wr.config.athena_endpoint_url = endpoint_url
        wr.config.s3_endpoint_url = endpoint_url
    ids = []
    for view in view_set.views:
        try:
            result: Any = wr.athena.start_query_execution(
                sql=view.sql, database=database, workgroup=workgroup or "primary",
                s3_output=s3_output,
                wait=True, boto3_session=boto3_session)
        except Exception as exc:  # awswrangler and botocore raise many kinds
            raise QueryError(f"view {view.name}: Athena failed it ({exc})") from exc
        state = (result.get("Status", {}).get("State") if isinstance(result, dict) else None)
        if state not in (None, "SUCCEEDED"):
            reason = result.get("Status", {}).get("StateChangeReason", "")
            raise QueryError(f"view {view.name}: Athena query {state} {reason}".rstrip())
        ids.append(str(result.get("QueryExecutionId", "")) if isinstance(result, dict) else "")
    return ids

