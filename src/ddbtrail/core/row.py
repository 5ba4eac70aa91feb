"""Schema v1 of the change row: the one definition.

The Parquet schema, the Glue columns, the DuckDB view and the CDK table all derive from
``COLUMNS``. Images are JSON *text* columns so that no engine (Firehose's format
conversion above all) can drop an attribute it has not seen before.

Kept free of heavy imports: the capture Lambda imports this module, and only the
``arrow_schema`` helper touches pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypedDict

from ddbtrail.core.timefmt import iso_ms

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION: Final = 1

ACTIONS: Final = ("INSERT", "MODIFY", "REMOVE", "SNAPSHOT")
VIEW_TYPES: Final = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the change row.

    ``glue_type`` is the Hive/Glue type string; the Arrow and DuckDB types follow from it.
    ``partition`` columns live in the object path (``table_name=<t>/dt=<d>/``), not in
    Parquet files written by Firehose.
    """

    name: str
    glue_type: str
    nullable: bool
    comment: str
    partition: bool = False


COLUMNS: Final[tuple[Column, ...]] = (
    Column("schema_version", "int", False, "Row schema version (1)."),
    Column("event_id", "string", False, "Stream eventID; the deduplication key."),
    Column("sequence_number", "string", False,
           "Stream SequenceNumber, a decimal string; order by (length, value) to compare "
           "numerically."),
    Column("action", "string", False, "INSERT | MODIFY | REMOVE | SNAPSHOT (backfill)."),
    Column("item_key", "string", False,
           "Canonical key of the item: compact JSON of the key attributes, names sorted."),
    Column("keys", "string", False, "Key attributes as plain JSON."),
    Column("old_image", "string", True, "Item before the change, plain JSON; null if the "
           "view has no old image."),
    Column("new_image", "string", True, "Item after the change, plain JSON; null if the "
           "view has no new image."),
    Column("type_hints", "string", True,
           "JSON object: JSON pointer (/keys/..., /old_image/..., /new_image/...) -> B, SS, NS "
           "or BS, for values plain JSON cannot tell apart from S or L; null when none."),
    Column("changed_attributes", "array<string>", True,
           "Top-level attributes added, removed or changed; null when one image is missing."),
    Column("timestamp", "bigint", False, "Event time, epoch milliseconds (UTC)."),
    Column("event_time", "string", False, "Event time, ISO-8601 UTC with milliseconds "
           "(microseconds when the source has them: Kinesis at MICROSECOND precision)."),
    Column("ingested_at", "string", False, "When ddbtrail made the row, ISO-8601 UTC."),
    Column("stream_view_type", "string", True, "KEYS_ONLY | NEW_IMAGE | OLD_IMAGE | "
           "NEW_AND_OLD_IMAGES."),
    Column("size_bytes", "bigint", True, "The stream record's SizeBytes."),
    Column("ttl_delete", "boolean", False, "True when a REMOVE was made by DynamoDB TTL."),
    Column("user_identity", "string", True, "userIdentity.principalId, when the stream has one."),
    Column("event_source", "string", False, "aws:dynamodb (Streams), aws:kinesis (Kinesis Data "
           "Streams for DynamoDB) or ddbtrail:backfill."),
    Column("aws_region", "string", True, "Region of the source table."),
    Column("spill_uri", "string", True,
           "s3:// URI of the full row when it was too large for one Firehose record; the "
           "images here are then null."),
    Column("snapshot_id", "string", True, "Backfill run that wrote a SNAPSHOT row."),
    Column("table_name", "string", False, "Source DynamoDB table.", partition=True),
    Column("dt", "string", False, "Event date YYYY-MM-DD (UTC); the partition.", partition=True),
)

class Row(TypedDict):
    """One change row as capture makes it: exactly the keys of ``COLUMNS``, in order."""

    schema_version: int
    event_id: str
    sequence_number: str
    action: str
    item_key: str
    keys: str
    old_image: str | None
    new_image: str | None
    type_hints: str | None
    changed_attributes: list[str] | None
    timestamp: int
    event_time: str
    ingested_at: str
    stream_view_type: str | None
    size_bytes: int | None
    ttl_delete: bool
    user_identity: str | None
    event_source: str
    aws_region: str | None
    spill_uri: str | None
    snapshot_id: str | None
    table_name: str
    dt: str


def make_row(*, event_id: str, sequence_number: str, action: str, item_key: str, keys: str,
             old_image: str | None, new_image: str | None, type_hints: str | None,
             changed_attributes: list[str] | None, timestamp: int, ingested_at_ms: int,
             event_source: str, table_name: str, aws_region: str | None,
             extra_micros: int | None = None,
             stream_view_type: str | None = None, size_bytes: int | None = None,
             ttl_delete: bool = False, user_identity: str | None = None,
             snapshot_id: str | None = None) -> Row:
    """The one way a row is made (stream changes and SNAPSHOT rows alike).

    The event time, ingest time and ``dt`` partition are derived here from the epoch-ms
    ``timestamp`` and ``ingested_at_ms``, so every writer formats them the same way.
    ``extra_micros`` (0-999) extends the event time to microseconds when the source has them.
    """
    return row_from(event_id, sequence_number, action, item_key, keys, old_image, new_image,
                    type_hints, changed_attributes, timestamp, ingested_at_ms, event_source,
                    table_name, aws_region, extra_micros, stream_view_type, size_bytes,
                    ttl_delete, user_identity, snapshot_id)


def row_from(event_id: str, sequence_number: str, action: str, item_key: str, keys: str,
             old_image: str | None, new_image: str | None, type_hints: str | None,
             changed_attributes: list[str] | None, timestamp: int, ingested_at_ms: int,
             event_source: str, table_name: str, aws_region: str | None,
             extra_micros: int | None, stream_view_type: str | None, size_bytes: int | None,
             ttl_delete: bool, user_identity: str | None, snapshot_id: str | None, /) -> Row:
    """``make_row`` with positional arguments, in its order: capture's hot path calls
    this once a record, where binding twenty keywords costs as much as the dict."""
    event_time = iso_ms(timestamp)
    if extra_micros is not None:  # ...12.345Z -> ...12.345678Z
        event_time = f"{event_time[:-1]}{extra_micros:03d}Z"
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "sequence_number": sequence_number,
        "action": action,
        "item_key": item_key,
        "keys": keys,
        "old_image": old_image,
        "new_image": new_image,
        "type_hints": type_hints,
        "changed_attributes": changed_attributes,
        "timestamp": timestamp,
        "event_time": event_time,
        "ingested_at": iso_ms(ingested_at_ms),
        "stream_view_type": stream_view_type,
        "size_bytes": size_bytes,
        "ttl_delete": ttl_delete,
        "user_identity": user_identity,
        "event_source": event_source,
        "aws_region": aws_region,
        "spill_uri": None,
        "snapshot_id": snapshot_id,
        "table_name": table_name,
        "dt": event_time[:10],
    }


COLUMN_NAMES: Final = tuple(c.name for c in COLUMNS)
DATA_COLUMNS: Final = tuple(c for c in COLUMNS if not c.partition)
PARTITION_COLUMNS: Final = tuple(c for c in COLUMNS if c.partition)

# The one lake layout: Firehose's prefix, the local delivery stream, Glue's
# storage.location.template and the DuckDB readers all use it.
PARTITION_TEMPLATE: Final = "table_name={table_name}/dt={dt}/"


def partition_path(table_name: str, dt: str) -> str:
    """The relative folder of one partition, with a trailing slash."""
    return PARTITION_TEMPLATE.format(table_name=table_name, dt=dt)


def arrow_type(glue_type: str) -> pa.DataType:
    """Arrow type of a Glue type used in ``COLUMNS``."""
    import pyarrow as pa

    simple: dict[str, Any] = {
        "string": pa.string(),
        "bigint": pa.int64(),
        "int": pa.int32(),
        "boolean": pa.bool_(),
        "array<string>": pa.list_(pa.string()),
    }
    try:
        return simple[glue_type]
    except KeyError:
        raise ValueError(f"no Arrow type for Glue type {glue_type!r}") from None


def arrow_schema(*, include_partitions: bool = True) -> pa.Schema:
    """The Parquet/Arrow schema of a row. Firehose's Parquet files omit partition columns."""
    import pyarrow as pa

    cols = COLUMNS if include_partitions else DATA_COLUMNS
    return pa.schema(
        [pa.field(c.name, arrow_type(c.glue_type), nullable=c.nullable) for c in cols],
        metadata={"ddbtrail.schema_version": str(SCHEMA_VERSION)},
    )


DUCKDB_TYPES: Final = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "boolean": "BOOLEAN",
    "array<string>": "VARCHAR[]",
}


def duckdb_columns(*, include_partitions: bool = True) -> dict[str, str]:
    """Column name -> DuckDB type, in schema order (for ``read_json(columns=...)``)."""
    cols = COLUMNS if include_partitions else DATA_COLUMNS
    return {c.name: DUCKDB_TYPES[c.glue_type] for c in cols}


def glue_columns(*, partitions: bool = False) -> list[dict[str, str]]:
    """Glue ``Columns`` (or ``PartitionKeys`` with ``partitions=True``) entries."""
    return [
        {"Name": c.name, "Type": c.glue_type, "Comment": c.comment}
        for c in COLUMNS
        if c.partition == partitions
    ]


# Iceberg: field ids follow COLUMNS order (1..n); the list element of changed_attributes
# takes the next id. Identity partitions on table_name and dt keep the Hive paths' values,
# so the saved queries run unchanged on Athena.
ICEBERG_NAMESPACE: Final = "ddbtrail"
ICEBERG_TABLE: Final = "changes"
ICEBERG_SORT: Final = ("item_key", "sequence_number")


def iceberg_field_id(name: str) -> int:
    """The Iceberg field id of a column of ``COLUMNS``."""
    return COLUMN_NAMES.index(name) + 1


def iceberg_type(glue_type: str, *, element_id: int) -> Any:
    """The pyiceberg type of a Glue type used in ``COLUMNS``."""
    from pyiceberg import types as it

    simple: dict[str, Any] = {
        "string": it.StringType(),
        "bigint": it.LongType(),
        "int": it.IntegerType(),
        "boolean": it.BooleanType(),
    }
    if glue_type == "array<string>":
        return it.ListType(element_id=element_id, element_type=it.StringType(),
                           element_required=False)
    try:
        return simple[glue_type]
    except KeyError:
        raise ValueError(f"no Iceberg type for Glue type {glue_type!r}") from None


def iceberg_schema() -> Any:
    """The pyiceberg ``Schema`` of ``ddbtrail.changes`` (partition columns included:
    Iceberg data files hold every column)."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    next_id = len(COLUMNS) + 1
    fields = []
    for c in COLUMNS:
        field_type = iceberg_type(c.glue_type, element_id=next_id)
        if c.glue_type.startswith("array<"):
            next_id += 1
        fields.append(NestedField(field_id=iceberg_field_id(c.name), name=c.name,
                                  field_type=field_type, required=not c.nullable,
                                  doc=c.comment))
    return Schema(*fields, schema_id=0, identifier_field_ids=[])


# --------------------------------------------------------------------------- snapshots
# A state snapshot holds one row per live item of a table at an instant: the change row
# that made the item's state (the columns below, taken from COLUMNS), plus what says
# which snapshot it belongs to. One "complete" row per build marks it finished (a build
# that failed half-way is never read) and lets an empty table have a snapshot. One
# "partition" row per change partition records what the build read there, so that a
# change delivered after the build is found by what it adds, not by clocks.
SNAPSHOT_DIR: Final = "snapshots"
SNAPSHOT_PARTITION_TEMPLATE: Final = "table_name={table_name}/snapshot_date={snapshot_date}/"
ROW_KINDS: Final = ("item", "partition", "complete")
_SNAPSHOT_FROM_ROW: Final = ("event_id", "sequence_number", "action", "item_key", "keys",
                             "new_image", "type_hints", "timestamp", "event_time",
                             "ingested_at")
_BY_NAME: Final = {c.name: c for c in COLUMNS}
SNAPSHOT_COLUMNS: Final[tuple[Column, ...]] = (
    *(_BY_NAME[name] for name in _SNAPSHOT_FROM_ROW),
    Column("change_order", "string", False,
           "The change's position in its item's order (view changes_ordered)."),
    Column("snapshot_ms", "bigint", False,
           "The snapshot's instant, epoch ms: changes at or before it are in it."),
    Column("made_at", "string", False, "When the build ran, ISO-8601 UTC; names the build."),
    Column("visible_before", "string", False,
           "made_at less the delivery's buffering (ISO-8601 UTC): rows ingested later may "
           "still have been buffered; a build at an instant after it may go stale."),
    Column("row_kind", "string", False,
           "item | partition (what the build read) | complete (one per finished build)."),
    Column("source_dt", "string", True,
           "partition rows: the change partition (dt) the build read; null otherwise."),
    Column("source_events", "bigint", True,
           "partition rows: distinct event_ids at or before snapshot_ms the build read in "
           "source_dt; more there now means a late change: the snapshot is stale."),
    _BY_NAME["table_name"],
    Column("snapshot_date", "string", False, "Date of snapshot_ms, YYYY-MM-DD (UTC); the "
           "partition.", partition=True),
)
SNAPSHOT_COLUMN_NAMES: Final = tuple(c.name for c in SNAPSHOT_COLUMNS)


def snapshot_partition_path(table_name: str, snapshot_date: str) -> str:
    """The folder of one snapshot partition, relative to the lake root, trailing slash."""
    return SNAPSHOT_DIR + "/" + SNAPSHOT_PARTITION_TEMPLATE.format(
        table_name=table_name, snapshot_date=snapshot_date)


def snapshot_arrow_schema(*, include_partitions: bool = True) -> pa.Schema:
    """The Parquet/Arrow schema of a snapshot row."""
    import pyarrow as pa

    cols = [c for c in SNAPSHOT_COLUMNS if include_partitions or not c.partition]
    return pa.schema(
        [pa.field(c.name, arrow_type(c.glue_type), nullable=c.nullable) for c in cols],
        metadata={"ddbtrail.schema_version": str(SCHEMA_VERSION)})


def snapshot_glue_columns(*, partitions: bool = False) -> list[dict[str, str]]:
    """Glue ``Columns`` (or ``PartitionKeys``) of the snapshot table."""
    return [{"Name": c.name, "Type": c.glue_type, "Comment": c.comment}
            for c in SNAPSHOT_COLUMNS if c.partition == partitions]
