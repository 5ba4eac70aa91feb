"""Which tables a lake holds: its Hive files and its Iceberg table alike, and the one rule
for a table it does not hold."""

from __future__ import annotations

from ddbtrail.core.exceptions import LakeError, TableNotInLake
from ddbtrail.lake.files import DataFile, Lake
from ddbtrail.lake.iceberg import open_if_present


def lake_tables(lake: Lake) -> list[str]:
    """Names of the tables with changes in the lake, sorted."""
    names = {f.table_name for f in lake.data_files()}
    ice = open_if_present(lake)
    if ice is not None:
        names |= {t for t, _ in ice.partitions()}
    return sorted(names)


def require_table(lake: Lake, table_name: str) -> list[DataFile]:
    """The one rule for an unknown table: TableNotInLake, naming the table and the tables
    the lake does hold, unless the lake has changes of ``table_name``. LakeError when the
    lake does not exist.

    Returns the table's Hive-layout data files (``Lake.data_files``; empty when its
    changes are in the Iceberg table only), so a caller lists the table once."""
    if not lake.exists():
        raise LakeError(f"lake {lake.uri}: no such folder or bucket prefix "
                        "(set `lake` or DDBTRAIL_LAKE)")
    files = lake.data_files(table_name)
    if files:
        return files
    held = lake_tables(lake)
    if table_name in held:  # in the Iceberg table
        return files
    there = f"it holds {', '.join(held)}" if held else "it holds no tables"
    raise TableNotInLake(f"table {table_name}: no changes in lake {lake.uri} ({there}; "
                         "check `table` and `lake`)")
