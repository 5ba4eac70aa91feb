"""DuckDB over the lake: the one place that opens DuckDB and defines the ``changes`` view.

Every DuckDB connection of the package comes from here: ``connect`` (in memory, the lake
as Arrow datasets) or ``open_catalog`` (a database file whose stored ``changes`` view a
BI tool can read). Both sessions run in UTC and ``changes`` has the columns of
``ddbtrail.core.row``, as Athena sees the table.


Parquet files are read through pyarrow datasets (local or S3 via pyarrow.fs, no httpfs
download), and DuckDB scans the Arrow datasets: filters on ``table_name``/``dt`` are pushed
down to pyarrow, which skips the other partitions' files without opening them. Local JSON
Lines files (plain or gzipped) go through DuckDB's own JSON reader, which prunes the same
way; on S3 they are read into Arrow when the connection is made (``lake.jsonl``), only
those of the listed partitions. Partition values come from the path and stay strings (like
``hive_types_autocast=0``). Parquet (Firehose omits the partition columns) and JSON Lines
may be mixed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from ddbtrail.core.exceptions import InvalidArgument, LakeError, QueryError
from ddbtrail.core.row import (
    COLUMN_NAMES,
    SNAPSHOT_DIR,
    arrow_schema,
    duckdb_columns,
    snapshot_arrow_schema,
)
from ddbtrail.lake import footers
from ddbtrail.lake.jsonl import read_jsonl

if TYPE_CHECKING:
    from ddbtrail.lake.files import DataFile, Lake
    from ddbtrail.lake.iceberg import PlannedFile

VIEW: Final = "changes"
SNAPSHOTS_VIEW: Final = "snapshots"


def _json_source(files: str) -> str:
    """DuckDB's own reader over local JSON Lines files (``files``: an SQL list or glob), the
    row's types, partitions from the path; filters on them skip files unread."""
    spec = "{" + ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in
                           duckdb_columns(include_partitions=False).items()) + "}"
    return (f"read_json({files}, format = 'newline_delimited', columns = {spec}, "
            "hive_partitioning = true, hive_types_autocast = false)")


def _sources(con: duckdb.DuckDBPyConnection, lake: Lake, files: list[DataFile],
             planned: list[PlannedFile] | None = None,
             item_key: str | None = None, as_of_ms: int | None = None) -> list[str]:
    """What the ``changes`` view unions, registered on ``con``: Parquet and Iceberg files as
    Arrow datasets, JSON Lines files through DuckDB's reader (local) or read into Arrow (S3).
    Never a pyarrow JSON dataset: its scan can deadlock (lake/jsonl.py). With ``item_key``
    the Parquet and Iceberg sources hold only that item's rows (``lake.footers``), and with
    ``as_of_ms`` only those that can be its latest at that instant."""
    full = arrow_schema(include_partitions=True)
    arrow: list[Any] = []
    sources: list[str] = []
    parquet = [f for f in files if f.format == "parquet"]
    if item_key is not None and (parquet or planned):
        # Files hold their rows sorted by key once compacted: cached footers say which
        # row groups can hold it, so one lookup reads a row group per file, not the lake.
        keyed = [footers.ParquetFile(f.path, f.size, f.mtime_ms,
                                     (("table_name", f.table_name), ("dt", f.dt)))
                 for f in parquet]
        keyed += [footers.ParquetFile(p.file.path, p.file.size) for p in planned or ()]
        arrow.append(footers.read_item(lake.fs, keyed, item_key, full, as_of_ms=as_of_ms))
        parquet, planned = [], None
    if parquet:
        partitioning = ds.partitioning(
            pa.schema([pa.field("table_name", pa.string()), pa.field("dt", pa.string())]),
            flavor="hive")
        arrow.append(ds.dataset([f.path for f in parquet], schema=full, format="parquet",
                                filesystem=lake.fs, partitioning=partitioning,
                                partition_base_dir=lake.root))
    jsonl = [f for f in files if f.format == "jsonl"]
    if jsonl and lake.is_local:
        sources.append(_json_source("[" + ", ".join(sql_string(f.path) for f in jsonl) + "]"))
    elif jsonl:
        arrow.append(read_jsonl(lake, jsonl, with_partitions=True))
    if planned:
        # Iceberg data files hold every column, partition columns included.
        arrow.append(ds.dataset([p.file.path for p in planned], schema=full, format="parquet",
                                filesystem=lake.fs))
    if not arrow and not sources:
        arrow.append(full.empty_table())
    for i, source in enumerate(arrow):
        name = f"_changes_{i}"
        con.register(name, source)
        sources.append(name)
    return sources


def sql_string(text: str) -> str:
    """A SQL string literal (single quotes doubled); valid in Athena and DuckDB."""
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@cache
def _shared() -> duckdb.DuckDBPyConnection:
    """The process's in-memory database that ``connect(shared=True)`` opens cursors on."""
    return duckdb.connect()


def _session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    # Times are UTC on every engine; Athena's session is UTC too.
    con.execute("SET TimeZone = 'UTC'")
    return con


def _changes_view(sources: list[str], *, temp: bool = False) -> str:
    """``CREATE OR REPLACE [TEMP] VIEW changes``: the row's columns from each source."""
    columns = ", ".join(quote_identifier(c) for c in COLUMN_NAMES)
    kind = "TEMP VIEW" if temp else "VIEW"
    return f"CREATE OR REPLACE {kind} {VIEW} AS\n" + "\nUNION ALL\n".join(
        f"SELECT {columns} FROM {source}" for source in sources)


def iceberg_files(lake: Lake, *, table_name: str | None = None, dt_from: str | None = None,
                  dt_to: str | None = None, item_key: str | None = None) -> list[PlannedFile]:
    """Data files of the lake's Iceberg table (if it has one) at its latest snapshot that
    can hold matching rows: pyiceberg plans by partition values and ``item_key`` bounds."""
    from ddbtrail.lake.iceberg import open_if_present

    ice = open_if_present(lake)
    if ice is None:
        return []
    return ice.plan(table_name=table_name, dt_from=dt_from, dt_to=dt_to, item_key=item_key)


def iceberg_paths(lake: Lake, **where: str | None) -> list[str]:
    """The paths of ``iceberg_files``."""
    return [p.file.path for p in iceberg_files(lake, **where)]


def connect(lake: Lake, *, table_name: str | None = None, dt_from: str | None = None,
            dt_to: str | None = None, item_key: str | None = None,
            as_of_ms: int | None = None, files: list[DataFile] | None = None,
            snapshot_files: list[DataFile] | None = None,
            shared: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose ``changes`` and ``snapshots`` views read the lake.

    ``table_name``/``dt_from``/``dt_to`` (inclusive, YYYY-MM-DD) limit which partitions are
    listed at all; queries still filter by themselves. ``files`` replaces the listing of
    Hive-layout change files (already pruned by the caller). An Iceberg lake's table is
    read at its latest snapshot, planned by pyiceberg; Hive-layout files beside it are read
    too. ``item_key`` narrows ``changes`` and ``snapshots`` to that item's rows (what a
    key lookup's SQL filters on anyway), read through cached footers (``lake.footers``):
    one row group per key-sorted file instead of every file. With ``as_of_ms`` (epoch ms)
    ``changes`` holds only the item's rows that can be its latest change at or before that
    instant (those of its last timestamp up to it): all that an as-of ranks.
    ``snapshots`` (state
    snapshots, ``ddbtrail.query.snapshots``) reads ``snapshot_files`` (default: every
    state snapshot of ``table_name``, or of every table). TimeZone is UTC. ``shared``: a
    connection to the process's one in-memory database instead of a new database (which
    takes ~12 ms to start), for callers that create nothing but temporary views (which
    stay the connection's own). Raises LakeError when the lake does not exist or cannot
    be listed.
    """
    if not lake.exists():
        raise LakeError(f"lake {lake.uri}: no such folder or bucket prefix "
                        "(set `lake` or DDBTRAIL_LAKE)")
    if files is None:
        files = lake.data_files(table_name, dt_from, dt_to)
    planned = iceberg_files(lake, table_name=table_name, dt_from=dt_from, dt_to=dt_to,
                            item_key=item_key)
    if snapshot_files is None:
        snapshot_files = lake.snapshot_files(table_name)
    con = _session(_shared().cursor() if shared else duckdb.connect())
    con.execute(_changes_view(_sources(con, lake, files, planned, item_key, as_of_ms),
                              temp=True))
    _register_snapshots(con, lake, snapshot_files, item_key)
    return con


def _register_snapshots(con: duckdb.DuckDBPyConnection, lake: Lake,
                        files: list[DataFile], item_key: str | None = None) -> None:
    """The ``snapshots`` view (state snapshots, ``ddbtrail.query.snapshots``) over ``files``;
    only ``item_key``'s rows when it is given."""
    schema = snapshot_arrow_schema(include_partitions=True)
    source: Any = schema.empty_table()
    if files and item_key is not None:
        source = footers.read_item(lake.fs, [
            footers.ParquetFile(f.path, f.size, f.mtime_ms,
                                (("table_name", f.table_name), ("snapshot_date", f.dt)))
            for f in files], item_key, schema)
    elif files:
        partitioning = ds.partitioning(
            pa.schema([pa.field("table_name", pa.string()),
                       pa.field("snapshot_date", pa.string())]), flavor="hive")
        source = ds.dataset([f.path for f in files], schema=schema, format="parquet",
                            filesystem=lake.fs, partitioning=partitioning,
                            partition_base_dir=lake.path(SNAPSHOT_DIR))
    con.register("_snapshots_0", source)
    columns = ", ".join(quote_identifier(c) for c in schema.names)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {SNAPSHOTS_VIEW} AS "
                f"SELECT {columns} FROM _snapshots_0")


def stored_changes_sql(lake: Lake) -> str:
    """DuckDB ``CREATE OR REPLACE VIEW changes`` over a local lake's files, for a catalog file.

    Unlike ``connect`` (in-memory, Arrow datasets) the view is stored in the file, so any
    DuckDB client (a BI tool) reads the lake through it. Globs cover every partition, so
    new files show up by themselves; only formats present now are included. Partition
    values stay strings, as in Athena.
    """
    if not lake.is_local:
        raise InvalidArgument("lake", lake.uri, "a DuckDB catalog file can only point at a local "
                         "lake (for S3, query through Athena)")
    formats = {f.format for f in lake.data_files()}
    planned = iceberg_paths(lake)
    if not formats and not planned:
        raise LakeError(f"lake {lake.uri}: no data files yet, nothing for views to read")
    root = lake.root.rstrip("/")
    sources = []
    if planned:
        # An Iceberg table's files are those of one snapshot, so the view names them: it
        # reads the snapshot current when it was made (run `ddbtrail views` again later).
        listing = "[" + ", ".join(sql_string(p) for p in planned) + "]"
        sources.append(f"read_parquet({listing}, union_by_name = true)")
    if "parquet" in formats:
        glob = sql_string(f"{root}/table_name=*/dt=*/*.parquet")
        sources.append(f"read_parquet({glob}, hive_partitioning = true, "
                       "hive_types_autocast = false, union_by_name = true)")
    if "jsonl" in formats:
        sources.append(_json_source(sql_string(f"{root}/table_name=*/dt=*/*.jsonl*")))
    return _changes_view(sources)


def open_catalog(lake: Lake, path: str | Path) -> duckdb.DuckDBPyConnection:
    """The DuckDB database file ``path`` (created), with ``changes`` stored over ``lake``.

    Raises InvalidArgument when the file cannot be opened (a BI tool holding it open for
    writing) and QueryError when DuckDB rejects the view.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(target))
    except (OSError, duckdb.Error) as exc:
        raise InvalidArgument("duckdb", str(path), f"cannot open ({exc})") from exc
    try:
        _session(con)
        con.execute(stored_changes_sql(lake))
    except duckdb.Error as exc:
        con.close()
        raise QueryError(f"DuckDB rejected the changes view over {lake.uri} ({exc})") from exc
    except BaseException:
        con.close()
        raise
    return con
