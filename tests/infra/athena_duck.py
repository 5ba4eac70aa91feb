"""Athena's Step Functions integrations, answered on DuckDB over a local lake, for tests.

``startQueryExecution.sync`` binds the ExecutionParameters (SQL literals, one per ``?``)
into the QueryString and runs it on DuckDB with the project's transpiler
(``ddbtrail.query.saved.transpile``) and the project's ``changes`` view over the lake's
files (``ddbtrail.query.duck.stored_changes_sql``), read as Athena reads the Glue tables:
constant expressions folded (as Trino's planner does), then Hive partitions pruned from
the path. What each statement is:

* ``CREATE OR REPLACE VIEW v AS ...``: kept in this catalog (and checked to run); later
  statements see only the views the machine created, never the saved files directly;
* ``INSERT INTO snapshots <select>``: the SELECT's columns go into the snapshot table by
  position (as Athena's INSERT does), one new Parquet file per partition written, under
  ``<lake>/snapshots/table_name=<t>/snapshot_date=<d>/``, where ``ddbtrail`` reads them;
* any other statement: its rows are kept for ``getQueryResults``, in AWS's ResultSet
  shape (the header row first, every value a VarCharValue string, a null an empty Datum).

DuckDB's profiler records, per statement, which lake files it read, the bytes and rows it
scanned (``Statement``), so a test can tell a statement that reads only recent partitions
from one that reads the whole history.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlglot import exp

from ddbtrail.catalog import glue as catalog
from ddbtrail.core.exceptions import QueryError
from ddbtrail.core.row import snapshot_arrow_schema, snapshot_partition_path
from ddbtrail.lake.files import Lake
from ddbtrail.query import receipts_table, saved
from ddbtrail.query.duck import quote_identifier, sql_string, stored_changes_sql
from tests.infra.asl import StatesError

_VIEW = re.compile(r"\s*CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)\s+AS\s+(.*)\Z", re.I | re.S)
_INSERT = re.compile(r"\s*INSERT\s+INTO\s+(\w+)\s+(.*)\Z", re.I | re.S)
# An execution parameter is one SQL literal: a quoted string or a number.
_LITERAL = re.compile(r"'((?:[^']|'')*)'\Z|-?\d+(\.\d+)?\Z")


@dataclass
class Statement:
    """One query run: its id, kind, bound SQL and what it scanned."""

    query_id: str
    kind: str                       # view | insert | select
    sql: str
    parameters: list[str]
    files: set[str] = field(default_factory=set)   # the files the profiler names
    bytes_scanned: int = 0
    rows_scanned: int = 0
    # The most change files (not snapshots) one scan read: a statement may scan the same
    # range twice (a build's state and its partition counts), which re-reads no history.
    change_files_read: int = 0
    change_rows_scanned: int = 0
    rows_written: int = 0
    scans: list[dict[str, Any]] = field(default_factory=list)  # the profiler's table scans


class LocalAthena:
    """Athena for one lake, one database and one workgroup."""

    def __init__(self, lake: Lake, *, database: str, workgroup: str) -> None:
        self.lake = lake
        self.database = database
        self.workgroup = workgroup
        self.views: dict[str, str] = {}
        self.statements: list[Statement] = []
        self._results: dict[str, tuple[list[str], list[str], list[tuple[Any, ...]]]] = {}
        # Beside the (local) lake, in the test's own temporary folder.
        self._profile = Path(lake.root).parent / f".athena-profile-{uuid.uuid4().hex}.json"
        self._constants = duckdb.connect()
        self._constants.execute("SET TimeZone = 'UTC'")

    # ------------------------------------------------------------------ integrations

    def start_query_execution_sync(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """``arn:aws:states:::athena:startQueryExecution.sync``: GetQueryExecution's answer
        once the query succeeded. Raises StatesError(States.TaskFailed) when it fails."""
        sql = arguments.get("QueryString")
        if not isinstance(sql, str) or not sql.strip():
            raise StatesError("States.TaskFailed", "QueryString is empty")
        if arguments.get("WorkGroup") != self.workgroup:
            raise StatesError("States.TaskFailed",
                              f"WorkGroup {arguments.get('WorkGroup')!r} does not exist")
        database = arguments.get("QueryExecutionContext", {}).get("Database")
        if database != self.database:
            raise StatesError("States.TaskFailed", f"Database {database!r} does not exist")
        params = arguments.get("ExecutionParameters", [])
        query_id = str(uuid.uuid4())
        bound = self._bind(sql, params, query_id)
        st = Statement(query_id, "select", bound, list(params))
        try:
            if (m := _VIEW.match(bound)) is not None:
                st.kind = "view"
                self._create_view(m.group(1), m.group(2), st)
            elif (m := _INSERT.match(bound)) is not None:
                st.kind = "insert"
                self._insert(m.group(1), m.group(2), st)
            else:
                names, types, rows = self._select(bound, st)
                self._results[query_id] = (names, types, rows)
        except (duckdb.Error, QueryError) as exc:
            raise StatesError("States.TaskFailed",
                              f"query failed: {str(exc).splitlines()[0]}") from exc
        self.statements.append(st)
        return {"QueryExecution": {
            "QueryExecutionId": query_id, "Query": sql,
            "StatementType": "DDL" if st.kind == "view" else "DML",
            "QueryExecutionContext": {"Database": database},
            "ExecutionParameters": params, "WorkGroup": self.workgroup,
            "Status": {"State": "SUCCEEDED"},
            "Statistics": {"DataScannedInBytes": st.bytes_scanned}}}

    def get_query_results(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """``arn:aws:states:::athena:getQueryResults``: the ResultSet, header row first."""
        query_id = arguments.get("QueryExecutionId")
        if query_id not in self._results:
            raise StatesError("States.TaskFailed",
                              f"QueryExecutionId {query_id!r}: no such query with results")
        names, types, rows = self._results[query_id]
        header = {"Data": [{"VarCharValue": n} for n in names]}
        return {"ResultSet": {
            "Rows": [header, *({"Data": [_datum(v) for v in r]} for r in rows)],
            "ResultSetMetadata": {"ColumnInfo": [
                {"CatalogName": "hive", "Name": n, "Label": n, "Type": t, "Nullable": "UNKNOWN"}
                for n, t in zip(names, types, strict=True)]}},
            "UpdateCount": 0}

    # ------------------------------------------------------------------ statements

    def _bind(self, sql: str, params: Any, where: str) -> str:
        spans = saved._placeholder_spans(sql, where)
        if not isinstance(params, list) or len(params) != len(spans):
            raise StatesError("States.TaskFailed", f"the query has {len(spans)} parameter(s); "
                              f"ExecutionParameters has {params!r}")
        for i, p in enumerate(params):
            m = _LITERAL.match(p) if isinstance(p, str) else None
            if m is None or (m.group(1) is not None and not m.group(1)):
                raise StatesError("States.TaskFailed", f"ExecutionParameters[{i}] {p!r}: not "
                                  "a SQL literal, or an empty string")
        for (start, end), literal in reversed(list(zip(spans, params, strict=True))):
            sql = sql[:start] + literal + sql[end:]
        return sql

    def _create_view(self, name: str, body: str, st: Statement) -> None:
        con = self._connect()
        try:  # Athena checks a view's query when it creates it
            self._run(con, f"SELECT * FROM ({self._transpile(body, name)}) LIMIT 0", st)
        finally:
            con.close()
        self.views[name] = body

    def _insert(self, table: str, select: str, st: Statement) -> None:
        if table != catalog.SNAPSHOT_TABLE_NAME:
            raise StatesError("States.TaskFailed", f"INSERT INTO {table}: no such table")
        _, _, rows = self._select(select, st)
        schema = snapshot_arrow_schema(include_partitions=True)
        if rows and len(rows[0]) != len(schema):
            raise StatesError("States.TaskFailed", f"INSERT INTO {table}: {len(rows[0])} "
                              f"columns for a table of {len(schema)}")
        # By position, as Athena inserts; the partition columns come last.
        data = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows],
                                    schema=schema)
        st.rows_written = data.num_rows
        keys = sorted({(r["table_name"], r["snapshot_date"]) for r in data.to_pylist()})
        for table_name, date in keys:
            part = data.filter(pc.and_(pc.equal(data["table_name"], table_name),
                                       pc.equal(data["snapshot_date"], date)))
            out = io.BytesIO()
            pq.write_table(part.select(snapshot_arrow_schema(include_partitions=False).names),
                           out, compression="zstd")
            path = self.lake.path(snapshot_partition_path(table_name, date),
                                  f"{st.query_id}.parquet")
            self.lake.write_atomic(path, out.getvalue())

    def _select(self, sql: str, st: Statement) -> tuple[list[str], list[str],
                                                         list[tuple[Any, ...]]]:
        con = self._connect()
        try:
            description, rows = self._run(con, self._transpile(sql, st.query_id), st)
            return ([d[0] for d in description], [str(d[1]).lower() for d in description],
                    rows)
        finally:
            con.close()

    # ------------------------------------------------------------------ engine

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """A connection that sees the lake as Athena's catalog does right now."""
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(stored_changes_sql(self.lake))
        schema = snapshot_arrow_schema(include_partitions=True)
        if self.lake.snapshot_files():
            glob = sql_string(self.lake.path("snapshots", "table_name=*", "snapshot_date=*",
                                             "*.parquet"))
            columns = ", ".join(quote_identifier(c) for c in schema.names)
            con.execute(f"CREATE VIEW snapshots AS SELECT {columns} FROM read_parquet("
                        f"{glob}, hive_partitioning = true, hive_types_autocast = false)")
        else:
            con.register("_no_snapshots", schema.empty_table())
            con.execute("CREATE VIEW snapshots AS SELECT * FROM _no_snapshots")
        receipts_table.register(con, self.lake)  # the Glue table of glue/receipts.json
        for name, body in self.views.items():  # in creation order: later ones read earlier
            con.execute(f"CREATE TEMP VIEW {name} AS {self._transpile(body, name)}")
        return con

    def _transpile(self, sql: str, where: str) -> str:
        """The project's Athena -> DuckDB translation, constants folded first."""
        return saved.transpile(sql, where, [self._fold])

    def _fold(self, tree: exp.Expr) -> exp.Expr:
        """Constant expressions replaced by their value, as Trino's planner folds them
        before partition pruning: DuckDB prunes partitions by a literal only (a dt bound
        written as date_format(from_iso8601_timestamp('...')) would read every file)."""
        def fold(node: exp.Expr) -> exp.Expr:
            if (isinstance(node, exp.Literal | exp.Null | exp.Boolean | exp.DataType)
                    or not isinstance(node, exp.Func | exp.Cast | exp.Binary | exp.AtTimeZone)
                    or isinstance(node, exp.AggFunc | exp.Window | exp.Predicate)
                    or any(isinstance(n, exp.Column | exp.Star | exp.Query | exp.Placeholder)
                           for n in node.walk())):
                return node
            if isinstance(node.parent, exp.Window):
                return node
            try:
                value = self._constants.execute(
                    f"SELECT {node.sql(dialect='duckdb')}").fetchone()
            except duckdb.Error:  # not a constant after all (e.g. needs a FROM)
                return node
            if value is None or value[0] is None or isinstance(value[0], bool):
                return node
            if isinstance(value[0], int | float):
                return exp.Literal.number(value[0])
            return exp.Literal.string(value[0]) if isinstance(value[0], str) else node

        return tree.transform(fold)

    def _run(self, con: duckdb.DuckDBPyConnection, sql: str,
             st: Statement) -> tuple[list[Any], list[tuple[Any, ...]]]:
        """(description, rows) of ``sql``; what it scanned is added to ``st``."""
        con.execute("SET enable_profiling = 'json'")
        con.execute(f"SET profiling_output = {sql_string(str(self._profile))}")
        cur = con.execute(sql)
        rows = cur.fetchall()
        description = list(cur.description or [])
        self._record(st)  # before any other statement overwrites the profile
        return description, rows

    def _record(self, st: Statement) -> None:
        profile = json.loads(self._profile.read_text(encoding="utf-8"))
        for scan in _scans(profile.get("operator", [])):
            info = scan.get("extra_info", {})
            st.scans.append({**info, "bytes_scanned": scan.get("bytes_scanned", 0),
                             "rows_scanned": scan.get("rows_scanned", 0)})
            names = str(info.get("Filename(s)", ""))
            # A glob or "..." when DuckDB does not list them (no file filter, or many).
            st.files.update(n.strip() for n in names.split(",")
                            if n.strip() and "*" not in n and n.strip() != "...")
            rows = int(scan.get("rows_scanned", 0))
            st.bytes_scanned += int(scan.get("bytes_scanned", 0))
            st.rows_scanned += rows
            if "/snapshots/" not in names:
                st.change_files_read = max(st.change_files_read,
                                           int(info.get("Total Files Read", 0)))
                st.change_rows_scanned += rows


def _scans(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for node in nodes:
        if node.get("type") == "TABLE_SCAN":
            out.append(node)
        out += _scans(node.get("children", []))
    return out


def _datum(value: Any) -> dict[str, str]:
    """One Athena Datum: VarCharValue text, or nothing for a null."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"VarCharValue": "true" if value else "false"}
    return {"VarCharValue": str(value)}
