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
    assert jsonl["SerdeInfo"]["SerializationLibrary"] == "org.apache.hive.hcatalog.data.JsonSerDe"
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
                          "changes.iceberg.json", "snapshots.parquet.json", "receipts.json"}
    for name, text in files.items():
        assert (glue_dir() / name).read_text(encoding="utf-8") == text, (
            f"glue/{name} is stale: run python -m ddbtrail.catalog.glue --write glue/")


def test_generator_writes_and_checks(tmp_path: Path) -> None:
    assert catalog.main(["--check", str(tmp_path)]) == 1
    assert catalog.main(["--write", str(tmp_path)]) == 0
    assert catalog.main(["--check", str(tmp_path)]) == 0


_HIVE_JSON_TYPES = {"string": str, "int": int, "bigint": int, "boolean": bool}


def _hive_compatible(line: bytes) -> None:
    """A JSON Lines row the Hive JSON SerDe reads as the Glue table types it: a string
    column holds a JSON string (never a nested object it would not turn into text)."""
    import json

    value = json.loads(line)
    columns = {c["Name"]: c["Type"] for c in catalog.glue_columns()}
    columns |= {c["Name"]: c["Type"] for c in catalog.glue_columns(partitions=True)}
    assert set(value) <= set(columns), set(value) - set(columns)
    for name, v in value.items():
        if v is None:
            continue
        kind = columns[name]
        if kind == "array<string>":
            assert isinstance(v, list) and all(isinstance(x, str) for x in v), name
        else:
            want = _HIVE_JSON_TYPES[kind]
            assert isinstance(v, want) and not (want is int and isinstance(v, bool)), name


def test_every_row_ddbtrail_writes_suits_the_hive_json_serde(load_event: object) -> None:
    from ddbtrail.capture.backfill import snapshot_row
    from ddbtrail.core.flatten import event_records, flatten_records, row_bytes

    rows = []
    for name in ("every-kind.json", "powertools-dynamo-stream-event.json",
                 "sam-cli-dynamodb-update.json"):
        event = load_event(name)  # type: ignore[operator]
        for got in flatten_records(event_records(event), ingested_at_ms=1, table_name="T"):
            if got.row is not None:
                rows.append(got.row)
    rows.append(snapshot_row({"pk": {"S": "a"}, "m": {"M": {"n": {"N": "1"}}},
                              "b": {"B": "AAEC"}, "ss": {"SS": ["x"]}},
                             key_names=["pk"], table_name="T", snapshot_id="s",
                             requested_ms=1, ingested_ms=2, region="us-east-1"))
    assert len(rows) > 5
    for r in rows:
        for line in row_bytes(r).splitlines():
            _hive_compatible(line)
