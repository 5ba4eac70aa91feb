"""The capture receipts (``receipts``) on DuckDB, as Athena reads them through
``glue/receipts.json``: the columns of ``evidence.receipts.COLUMNS`` plus the partitions
``table_name`` and ``dt`` from each receipt's folder. The reconciliation queries
(``reconcile_receipts``, ``reconcile_receipts_detail``) then run unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import duckdb
import pyarrow as pa

from ddbtrail.evidence import receipts

if TYPE_CHECKING:
    from ddbtrail.lake.files import Lake

TABLE: Final = "receipts"
_SCALARS: Final = {"string": pa.string(), "int": pa.int32()}


def arrow_schema() -> pa.Schema:
    """The table's schema: the receipt's columns, then the partitions."""
    fields = []
    for name, glue_type, _ in (*receipts.COLUMNS, *receipts.PARTITIONS):
        if name == "changes":
            kind: pa.DataType = pa.list_(pa.struct(
                [pa.field(f, pa.string()) for f in receipts.CHANGE_FIELDS]))
        else:
            kind = _SCALARS[glue_type]
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def arrow_rows(docs: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Receipt documents (``evidence.receipts.read_receipts``) as the table's rows."""
    schema = arrow_schema()
    rows = []
    for doc in docs:
        row = {name: doc.get(name) for name in schema.names}
        row["changes"] = [{f: c.get(f) for f in receipts.CHANGE_FIELDS}
                          for c in doc.get("changes") or ()]
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def register(con: duckdb.DuckDBPyConnection, lake: Lake | None,
             table_name: str | None = None) -> int:
    """Create ``receipts`` on ``con`` from the lake's receipts (of ``table_name``), or
    empty when ``lake`` is None. Returns the number of receipts read."""
    docs = receipts.read_receipts(lake, table_name) if lake is not None else []
    con.register("_receipt_rows", arrow_rows(docs))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {TABLE} AS SELECT * FROM _receipt_rows")
    return len(docs)


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """An empty ``receipts`` unless the connection has one (queries still run)."""
    present = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
                          [TABLE]).fetchall()
    if not present[0][0]:
        register(con, None)
