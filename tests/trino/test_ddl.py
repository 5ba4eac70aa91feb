"""Trino DDL derived from the Glue definitions the stack deploys (no server needed)."""

from __future__ import annotations

import pytest

from ddbtrail.core.exceptions import QueryError
from ddbtrail.query import trino as engine
from tests.trino.conftest import glue_table


@pytest.mark.parametrize("name", ["changes.parquet.json", "changes.jsonl.json",
                                  "snapshots.parquet.json"])
def test_every_glue_column_and_projection_reaches_the_ddl(name: str) -> None:
    table = glue_table(name)
    ddl = engine.table_ddl(table, name="hive.s.t", location="local:///lake/")
    for column in (*table["StorageDescriptor"]["Columns"], *table["PartitionKeys"]):
        assert f'"{column["Name"]}" {engine.trino_type(column["Type"])}' in ddl
    assert "s3://" not in ddl and "local:///lake/" in ddl
    assert "partition_projection_enabled = true" in ddl
    assert f"'{engine.FORMATS[table['StorageDescriptor']['SerdeInfo']['SerializationLibrary']]}'" \
        in ddl


def test_projection_ranges_in_units_trino_takes() -> None:
    assert engine.trino_date_bound("NOW-5YEARS") == "NOW-1830DAYS"
    assert engine.trino_date_bound(" NOW+1DAY") == "NOW+1DAY"
    assert engine.trino_date_bound("NOW+2MONTHS") == "NOW+62DAYS"
    assert engine.trino_date_bound("2024/01/01") == "2024/01/01"


def test_types() -> None:
    assert engine.trino_type("array<string>") == "array(varchar)"
    assert engine.trino_type("struct<a:string,b:map<string,string>>") == \
        'row("a" varchar, "b" map(varchar, varchar))'
    with pytest.raises(QueryError, match="uniontype"):
        engine.trino_type("uniontype<int>")
