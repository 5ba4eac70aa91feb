"""The Glue table input agrees with the row schema and the delivery prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddbtrail.catalog import glue as catalog
from ddbtrail.core import row
from ddbtrail.core.exceptions import ConfigError
from ddbtrail.resources import glue_dir

LOCATION = "s3://lake-bucket/prefix/"


@pytest.mark.parametrize("fmt", catalog.FORMATS)
def test_columns_and_types_equal_the_row_schema(fmt: str) -> None:
    table = catalog.table_input(fmt, LOCATION, ["Orders"])
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == [(c.name, c.glue_type) for c in row.COLUMNS if not c.partition]
    keys = [(c["Name"], c["Type"]) for c in table["PartitionKeys"]]
    assert keys == [("table_name", "string"), ("dt", "string")]
    # Images are strings, so Firehose's conversion never drops a new attribute.
    types = dict(columns)
    assert types["old_image"] == types["new_image"] == types["keys"] == "string"
    assert table["Name"] == "changes"


@pytest.mark.parametrize("fmt", catalog.FORMATS)
def test_projection_matches_the_delivery_prefix(fmt: str) -> None:
    params = catalog.table_input(fmt, LOCATION, ["Orders", "Users"])["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.table_name.type"] == "enum"
    assert params["projection.table_name.values"] == "Orders,Users"
    assert params["projection.dt.type"] == "date"
    assert params["projection.dt.format"] == "yyyy-MM-dd"
    assert params["projection.dt.range"] == "NOW-5YEARS,NOW+1DAY"
    assert (params["projection.dt.interval"], params["projection.dt.interval.unit"]) == (
        "1", "DAYS")
    template = params["storage.location.template"]
    # Filling the template gives exactly the folder the delivery stream writes to.
    filled = template.replace("${table_name}", "Orders").replace("${dt}", "2024-05-01")
    assert filled == "s3://lake-bucket/prefix/" + row.partition_path("Orders", "2024-05-01")
    assert filled == "s3://lake-bucket/prefix/table_name=Orders/dt=2024-05-01/"


def test_serdes() -> None:
    parquet = catalog.table_input("parquet", LOCATION, ["Orders"])["StorageDescriptor"]
    jsonl = catalog.table_input("jsonl", LOCATION, ["Orders"])["StorageDescriptor"]
    assert "ParquetHiveSerDe" in parquet["SerdeInfo"]["SerializationLibrary"]
    assert jsonl["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    # A malformed row must fail a query, not vanish from it.
    assert "ignore.malformed.json" not in jsonl["SerdeInfo"]["Parameters"]
    assert parquet["Location"] == jsonl["Location"] == LOCATION


@pytest.mark.parametrize(("fmt", "location", "tables"), [
    ("orc", LOCATION, ["Orders"]),
    ("parquet", "/local/path", ["Orders"]),
    ("parquet", LOCATION, []),
    ("parquet", LOCATION, ["a,b"]),
    ("parquet", LOCATION, "Orders"),
])
def test_bad_inputs_are_config_errors(fmt: str, location: str, tables: object) -> None:
    with pytest.raises(ConfigError):
        catalog.table_input(fmt, location, tables)  # type: ignore[arg-type]


def test_glue_files_are_what_the_code_generates() -> None:
    files = catalog.reference_files()
    assert set(files) == {"database.json", "changes.parquet.json", "changes.jsonl.json",
                          "changes.iceberg.json"}
    for name, text in files.items():
        assert (glue_dir() / name).read_text(encoding="utf-8") == text, (
            f"glue/{name} is stale: run python -m ddbtrail.catalog.glue --write glue/")


def test_generator_writes_and_checks(tmp_path: Path) -> None:
    assert catalog.main(["--check", str(tmp_path)]) == 1
    assert catalog.main(["--write", str(tmp_path)]) == 0
    assert catalog.main(["--check", str(tmp_path)]) == 0
