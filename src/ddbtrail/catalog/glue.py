"""Glue definitions of the ``changes`` table, derived from the one row schema.

``table_input`` is the Glue ``TableInput`` (boto3 ``glue.create_table`` and CDK's
``CfnTable.TableInputProperty`` take the same shape); ``iceberg_table`` is the Apache
Iceberg form (``TableInput`` plus ``OpenTableFormatInput``, as CloudFormation takes it).
The table's format, Parquet, JSON Lines read by the Hive JSON SerDe
(``org.apache.hive.hcatalog.data.JsonSerDe``; Athena documents the OpenX SerDe as able to
return non-deterministic counts and values), or Iceberg, is
chosen at deploy time; queries always read a table
named ``changes``. Partition projection on ``table_name`` (enum) and ``dt`` (date) maps
straight onto the delivery prefix, so no crawler and no MSCK REPAIR are needed.

Generate the reference files in ``glue/`` with ``python -m ddbtrail.catalog.glue --write glue/``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from ddbtrail.core import formats
from ddbtrail.core.exceptions import ConfigError
from ddbtrail.core.row import (
    COLUMNS,
    ICEBERG_NAMESPACE,
    ICEBERG_SORT,
    ICEBERG_TABLE,
    PARTITION_COLUMNS,
    PARTITION_TEMPLATE,
    SCHEMA_VERSION,
    SNAPSHOT_DIR,
    SNAPSHOT_PARTITION_TEMPLATE,
    glue_columns,
    iceberg_field_id,
    snapshot_glue_columns,
)

TABLE_NAME: Final = "changes"
SNAPSHOT_TABLE_NAME: Final = "snapshots"
RECEIPTS_TABLE_NAME: Final = "receipts"
DATABASE_NAME: Final = "ddbtrail"
FORMATS: Final = formats.HIVE_FORMATS  # Hive tables (table_input)
# Every lake format a deployment can choose (core.formats); iceberg is ``iceberg_table``.
LAKE_FORMATS: Final = formats.LAKE_FORMATS
# The Iceberg table's folder under the lake prefix: <namespace>/<table>, as the local
# SQL catalog lays it out under a lake folder.
ICEBERG_SUBDIR: Final = f"{ICEBERG_NAMESPACE}/{ICEBERG_TABLE}/"
DEFAULT_DT_RANGE: Final = "NOW-5YEARS,NOW+1DAY"
DT_FORMAT: Final = "yyyy-MM-dd"

_PARQUET_SERDE: Final = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
_HIVE_JSON_SERDE: Final = "org.apache.hive.hcatalog.data.JsonSerDe"
_STORAGE: Final[dict[str, dict[str, str]]] = {
    "parquet": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "classification": "parquet",
    },
    "jsonl": {
        # TextInputFormat reads .gz objects too (Firehose JSON delivery may gzip).
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "classification": "json",
    },
}
# DynamoDB table names; an enum projection is a comma list, so commas must never appear.
_DDB_TABLE: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
# Placeholders for the reference files in glue/; deployments pass real values.
EXAMPLE_LOCATION: Final = "s3://LAKE-BUCKET/lake/"
EXAMPLE_TABLES: Final = ("Orders",)


def location_template(location: str) -> str:
    """``<location>/table_name=${table_name}/dt=${dt}/``: the delivery prefix, for Glue."""
    return location.rstrip("/") + "/" + PARTITION_TEMPLATE.format(
        table_name="${table_name}", dt="${dt}")


def projection_parameters(table_names: Sequence[str], *,
                          dt_range: str = DEFAULT_DT_RANGE) -> dict[str, str]:
    """The ``projection.*`` table parameters (storage template excluded)."""
    if isinstance(table_names, str):
        raise ConfigError("table_names must be a list of table names, not one string")
    names = list(dict.fromkeys(table_names))
    if not names:
        raise ConfigError("table_names: the enum projection needs at least one table name")
    for name in names:
        # CDK tokens (unresolved values) pass through; they resolve to a table name.
        if not _DDB_TABLE.match(name) and "${Token[" not in name:
            raise ConfigError(f"table_names: {name!r} is not a DynamoDB table name")
    return {
        "projection.enabled": "true",
        "projection.table_name.type": "enum",
        "projection.table_name.values": ",".join(names),
        "projection.dt.type": "date",
        "projection.dt.format": DT_FORMAT,
        "projection.dt.range": dt_range,
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
    }


def table_input(fmt: str, location: str, table_names: Sequence[str], *,
                name: str = TABLE_NAME, dt_range: str = DEFAULT_DT_RANGE,
                description: str | None = None) -> dict[str, Any]:
    """Glue ``TableInput`` of the change table.

    ``fmt`` is ``parquet`` or ``jsonl``; ``location`` is the lake's S3 URI (bucket and
    prefix, e.g. ``s3://bucket/lake/``; CDK tokens are fine); ``table_names`` are the
    captured DynamoDB tables (the ``table_name`` enum). Columns come from
    ``row.glue_columns()`` in schema order. Raises ConfigError on a bad format or names.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not isinstance(location, str) or not location:
        raise ConfigError("location: expected an s3:// URI")
    if not location.startswith("s3://") and "${Token[" not in location:
        raise ConfigError(f"location {location!r}: expected an s3:// URI")
    storage = _STORAGE[fmt]
    serde: dict[str, Any]
    if fmt == "parquet":
        serde = {"SerializationLibrary": _PARQUET_SERDE,
                 "Parameters": {"serialization.format": "1"}}
    else:
        # No ignore.malformed.json: a bad row must fail the query, never vanish from it.
        # The Hive SerDe does not turn a nested object into a string column's text; every
        # row ddbtrail writes keeps images as JSON text inside strings (tests/unit/
        # test_catalog.py checks each column's JSON type), so nothing needs it.
        serde = {"SerializationLibrary": _HIVE_JSON_SERDE,
                 "Parameters": {"serialization.format": "1"}}
    parameters = {
        "EXTERNAL": "TRUE",
        "classification": storage["classification"],
        "ddbtrail.schema_version": str(SCHEMA_VERSION),
        **projection_parameters(table_names, dt_range=dt_range),
        "storage.location.template": location_template(location),
    }
    return {
        "Name": name,
        "Description": description or (
            f"ddbtrail change rows (schema v{SCHEMA_VERSION}, {fmt}): one row per item "
            "change, partitioned by table_name and dt"),
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": glue_columns(partitions=True),
        "StorageDescriptor": {
            "Columns": glue_columns(),
            "Location": location.rstrip("/") + "/",
            "InputFormat": storage["InputFormat"],
            "OutputFormat": storage["OutputFormat"],
            "Compressed": False,
            "SerdeInfo": serde,
            "StoredAsSubDirectories": False,
        },
    }


_ICEBERG_PRIMITIVES: Final = {"string": "string", "bigint": "long", "int": "int",
                               "boolean": "boolean"}
# Partition field ids start at 1000, as in Iceberg's reference implementation and pyiceberg.
ICEBERG_PARTITION_FIELD_ID: Final = 1000


def iceberg_fields() -> list[dict[str, Any]]:
    """Glue ``IcebergStructField`` entries of the row schema (the ids of ``row.iceberg_schema``).

    A nested type is Iceberg's JSON type document, as text; primitives are their names.
    """
    next_id = len(COLUMNS) + 1
    out = []
    for c in COLUMNS:
        if c.glue_type == "array<string>":
            kind: str = json.dumps({"type": "list", "element-id": next_id, "element": "string",
                                    "element-required": False}, separators=(",", ":"))
            next_id += 1
        else:
            kind = _ICEBERG_PRIMITIVES[c.glue_type]
        out.append({"Id": iceberg_field_id(c.name), "Name": c.name, "Type": kind,
                    "Required": not c.nullable, "Doc": c.comment})
    return out


def iceberg_location(location: str) -> str:
    """The Iceberg table's S3 location under the lake's URI."""
    return location.rstrip("/") + "/" + ICEBERG_SUBDIR


def iceberg_table(location: str, *, name: str = TABLE_NAME,
                  properties: dict[str, str] | None = None,
                  description: str | None = None) -> dict[str, Any]:
    """``{"TableInput", "OpenTableFormatInput"}`` of the Glue Iceberg table (format v2).

    Identity partitions on ``table_name`` and ``dt`` (so the saved queries' filters prune
    as on the Hive table), write order ``item_key``, ``sequence_number`` (what Glue's
    ``sort`` compaction uses), table properties as the local table's. ``location`` is the
    lake's S3 URI; the table lives in ``ICEBERG_SUBDIR`` under it.
    """
    from ddbtrail.lake.iceberg import TABLE_PROPERTIES

    if not isinstance(location, str) or not (
            location.startswith("s3://") or "${Token[" in location):
        raise ConfigError(f"location {location!r}: expected an s3:// URI")
    where = iceberg_location(location)
    props = {k: v for k, v in TABLE_PROPERTIES.items() if k != "format-version"}
    return {
        "TableInput": {
            "Name": name,
            "Description": description or (
                f"ddbtrail change rows (schema v{SCHEMA_VERSION}, Apache Iceberg): one row "
                "per item change, partitioned by table_name and dt"),
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {
                "Columns": glue_columns() + glue_columns(partitions=True),
                "Location": where,
            },
        },
        "OpenTableFormatInput": {"IcebergInput": {
            "MetadataOperation": "CREATE",
            "Version": "2",
            "IcebergTableInput": {
                "Location": where,
                "Schema": {"SchemaId": 0, "Type": "struct", "Fields": iceberg_fields()},
                "PartitionSpec": {"SpecId": 0, "Fields": [
                    {"SourceId": iceberg_field_id(c.name),
                     "FieldId": ICEBERG_PARTITION_FIELD_ID + i,
                     "Name": c.name, "Transform": "identity"}
                    for i, c in enumerate(PARTITION_COLUMNS)]},
                "WriteOrder": {"OrderId": 1, "Fields": [
                    {"SourceId": iceberg_field_id(c), "Transform": "identity",
                     "Direction": "asc", "NullOrder": "nulls-first"} for c in ICEBERG_SORT]},
                "Properties": {**props, **(properties or {})},
            },
        }},
    }


def snapshot_location(location: str) -> str:
    """The snapshot dataset's S3 URI: ``<lake location>/snapshots/``."""
    return location.rstrip("/") + "/" + SNAPSHOT_DIR + "/"


def snapshot_table_input(location: str, table_names: Sequence[str], *,
                         name: str = SNAPSHOT_TABLE_NAME,
                         dt_range: str = DEFAULT_DT_RANGE) -> dict[str, Any]:
    """Glue ``TableInput`` of the state snapshot table (always Parquet).

    ``location`` is the lake's (as for ``table_input``); the snapshots live under its
    ``snapshots/`` prefix, which the change table's projection template never reads.
    Columns are ``row.SNAPSHOT_COLUMNS``; partition projection on ``table_name`` (enum)
    and ``snapshot_date`` (date). Athena's INSERT INTO writes new partitions there.
    """
    projection = projection_parameters(table_names, dt_range=dt_range)
    projection = {k.replace("projection.dt.", "projection.snapshot_date."): v
                  for k, v in projection.items()}
    body = table_input("parquet", location, table_names, name=name, dt_range=dt_range,
                       description="ddbtrail state snapshots: one row per live item of a "
                       "table at an instant, partitioned by table_name and snapshot_date")
    where = snapshot_location(location)
    body["Parameters"] = {
        **{k: v for k, v in body["Parameters"].items() if not k.startswith("projection.")},
        **projection,
        "storage.location.template": where + SNAPSHOT_PARTITION_TEMPLATE.format(
            table_name="${table_name}", snapshot_date="${snapshot_date}"),
    }
    body["PartitionKeys"] = snapshot_glue_columns(partitions=True)
    body["StorageDescriptor"]["Columns"] = snapshot_glue_columns()
    body["StorageDescriptor"]["Location"] = where
    return body


def receipts_table_input(location: str, table_names: Sequence[str], *,
                         name: str = RECEIPTS_TABLE_NAME,
                         dt_range: str = DEFAULT_DT_RANGE) -> dict[str, Any]:
    """Glue ``TableInput`` of the capture receipts (``ddbtrail.evidence.receipts``): one
    line of JSON per object under ``<location>/_ddbtrail/receipts/``, read by the Hive JSON
    SerDe, partition projection on ``table_name`` (enum; folders ``table=``) and ``dt``.
    The reconciliation queries read it as ``receipts``."""
    from ddbtrail.evidence import receipts

    body = table_input("jsonl", location, table_names, name=name, dt_range=dt_range,
                       description="ddbtrail capture receipts: one row per batch handed to "
                       "delivery, naming each change; partitioned by table_name and dt")
    where = location.rstrip("/") + "/" + receipts.DEFAULT_RECEIPTS_PREFIX
    body["Parameters"] = {
        **{k: v for k, v in body["Parameters"].items() if k != "ddbtrail.schema_version"},
        "ddbtrail.receipt_version": str(receipts.RECEIPT_VERSION),
        "storage.location.template": where + receipts.PARTITION_TEMPLATE,
    }
    body["PartitionKeys"] = [{"Name": n, "Type": t, "Comment": c}
                             for n, t, c in receipts.PARTITIONS]
    body["StorageDescriptor"]["Columns"] = [{"Name": n, "Type": t, "Comment": c}
                                            for n, t, c in receipts.COLUMNS]
    body["StorageDescriptor"]["Location"] = where
    return body


def database_input(name: str = DATABASE_NAME, *, description: str | None = None) -> dict[str, Any]:
    """Glue ``DatabaseInput`` of the ddbtrail database."""
    return {"Name": name,
            "Description": description or "ddbtrail: DynamoDB item-level change lake"}


def reference_files() -> dict[str, str]:
    """File name -> JSON text of the reference definitions kept in ``glue/``."""
    out = {"database.json": database_input()}
    for fmt in FORMATS:
        out[f"{TABLE_NAME}.{fmt}.json"] = table_input(fmt, EXAMPLE_LOCATION, EXAMPLE_TABLES)
    out[f"{TABLE_NAME}.iceberg.json"] = iceberg_table(EXAMPLE_LOCATION)


    out[f"{SNAPSHOT_TABLE_NAME}.parquet.json"] = snapshot_table_input(EXAMPLE_LOCATION,
                                                                      EXAMPLE_TABLES)
    out[f"{RECEIPTS_TABLE_NAME}.json"] = receipts_table_input(EXAMPLE_LOCATION, EXAMPLE_TABLES)
    return {name: json.dumps(body, indent=2) + "\n" for name, body in out.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m ddbtrail.catalog.glue --write glue/`` (or ``--check glue/``)."""
    parser = argparse.ArgumentParser(prog="python -m ddbtrail.catalog.glue",
                                     description="Write or check the glue/ reference files.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="DIR", help="write the files into DIR")
    group.add_argument("--check", metavar="DIR", help="exit 1 if DIR's files are stale")
    args = parser.parse_args(argv)
    folder = Path(args.write or args.check)
    stale = []
    for name, text in reference_files().items():
        path = folder / name
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        elif not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    if stale:
        sys.stderr.write("stale: " + ", ".join(stale) + " (run --write)\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
