"""DuckDB over the lake: one connection with a ``changes`` view, as Athena sees the table.

Files are read through pyarrow datasets (local or S3 via pyarrow.fs, no httpfs download),
and DuckDB scans the Arrow datasets: filters on ``table_name``/``dt`` are pushed down to
pyarrow, which skips the other partitions' files without opening them. Partition values
come from the path and stay strings (like ``hive_types_autocast=0``). Parquet (Firehose
omits the partition columns), JSON Lines and gzipped JSON Lines may be mixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.json as pj

from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.row import COLUMN_NAMES, arrow_schema

if TYPE_CHECKING:
    from ddbtrail.lake.files import DataFile, Lake

VIEW: Final = "changes"
# One JSON line can hold two 400 KB images; pyarrow's JSON reader needs a line within a block.
_JSON_BLOCK_BYTES: Final = 16 << 20


def _datasets(lake: Lake, files: list[DataFile]) -> list[Any]:
    full = arrow_schema(include_partitions=True)
    data = arrow_schema(include_partitions=False)
    partitioning = ds.partitioning(
        pa.schema([pa.field("table_name", pa.string()), pa.field("dt", pa.string())]),
        flavor="hive")
    json_format = ds.JsonFileFormat(
        parse_options=pj.ParseOptions(explicit_schema=data, unexpected_field_behavior="ignore"),
        read_options=pj.ReadOptions(block_size=_JSON_BLOCK_BYTES))
    out = []
    for fmt, file_format in (("parquet", "parquet"), ("jsonl", json_format)):
        paths = [f.path for f in files if f.format == fmt]
        if paths:
            out.append(ds.dataset(paths, schema=full, format=file_format, filesystem=lake.fs,
                                  partitioning=partitioning, partition_base_dir=lake.root))
    if not out:
        out.append(full.empty_table())
    return out


def connect(lake: Lake, *, table_name: str | None = None, dt_from: str | None = None,
            dt_to: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose ``changes`` view reads the lake.

    ``table_name``/``dt_from``/``dt_to`` (inclusive, YYYY-MM-DD) limit which partitions are
    listed at all; queries still filter by themselves. TimeZone is UTC. Raises LakeError
    when the lake does not exist or cannot be listed.
    """
    if not lake.exists():
        raise LakeError(f"lake {lake.uri}: no such folder or bucket prefix "
                        "(set --lake or DDBTRAIL_LAKE)")
    files = lake.data_files(table_name, dt_from, dt_to)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns = ", ".join(f'"{c}"' for c in COLUMN_NAMES)
    parts = []
    for i, dataset in enumerate(_datasets(lake, files)):
        name = f"_changes_{i}"
        con.register(name, dataset)
        parts.append(f"SELECT {columns} FROM {name}")
    con.execute(f"CREATE VIEW {VIEW} AS " + " UNION ALL ".join(parts))
    return con
