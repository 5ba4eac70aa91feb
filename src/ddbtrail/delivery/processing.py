"""What Firehose does to a record before it writes it: one definition, two readers.

The stack (``infra/constructs/delivery.py``) turns a ``Processing`` into the delivery
stream's ProcessingConfiguration, Prefix and ErrorOutputPrefix; the local delivery stream
(``delivery/local.py``) applies the same ``Processing`` to the records it accepts:

* ``de_aggregate``: RecordDeAggregation (JSON) splits a packed record into its rows;
* ``partition_query``: the jq 1.6 MetadataExtraction query; it reads ``partition_keys``
  from each row, and ``prefix`` puts them into the object's folder;
* ``append_delimiter``: AppendDelimiterToRecord puts back the newline de-aggregation
  strips, so JSON Lines objects hold one row per line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ddbtrail.core import row

# Where the lake sits in its bucket, and Firehose's error output beside it.
LAKE_PREFIX: Final = "lake/"
ERROR_PREFIX: Final = "firehose-errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
PARTITION_KEYS: Final = tuple(c.name for c in row.PARTITION_COLUMNS)
JQ_ENGINE: Final = "JQ-1.6"
_KEY_REF: Final = re.compile(r"!\{partitionKeyFromQuery:(\w+)\}")


@dataclass(frozen=True, slots=True)
class Processing:
    """A delivery stream's record processing, prefix and error prefix."""

    de_aggregate: bool
    append_delimiter: bool
    partition_keys: tuple[str, ...] = PARTITION_KEYS
    lake_prefix: str = LAKE_PREFIX
    error_prefix: str = ERROR_PREFIX

    @classmethod
    def for_stream(cls, *, fmt: str, packs_rows: bool) -> Processing:
        """The processing of a stream writing ``fmt`` whose records may hold several rows.

        Only JSON Lines needs its delimiter back: Parquet and Iceberg rows are converted.
        """
        return cls(de_aggregate=packs_rows, append_delimiter=packs_rows and fmt == "jsonl")

    @property
    def partition_query(self) -> str:
        """The jq query: an object of the partition keys, each read from the row."""
        return "{" + ", ".join(f"{k}: .{k}" for k in self.partition_keys) + "}"

    @property
    def prefix(self) -> str:
        """Firehose's Prefix: the lake layout with the query's keys in it."""
        return self.lake_prefix + row.PARTITION_TEMPLATE.format(
            **{k: f"!{{partitionKeyFromQuery:{k}}}" for k in self.partition_keys})

    def object_prefix(self, keys: Mapping[str, str]) -> str:
        """The prefix of the object a row with these partition keys goes to, as Firehose
        evaluates ``prefix`` (``lake/table_name=t/dt=d/``). KeyError names a missing key."""
        return _KEY_REF.sub(lambda m: keys[m.group(1)], self.prefix)

    def extract(self, parsed: Mapping[str, Any]) -> dict[str, Any]:
        """What the jq query yields for a parsed row: each key's value (None if absent)."""
        return {k: parsed.get(k) for k in self.partition_keys}

    def split(self, data: bytes) -> list[bytes]:
        """A record's rows, each without its delimiter: the newline-delimited rows of a
        packed record when de-aggregating, else the record itself (one row)."""
        if not self.de_aggregate:
            return [data.rstrip(b"\n")] if data.strip() else []
        return [line for line in data.split(b"\n") if line.strip()]

    def delimit(self, data: bytes, rows: list[bytes]) -> list[bytes]:
        """The bytes each row occupies in a JSON Lines object: the row and the delimiter
        put back, or, without de-aggregation, the record as it came."""
        if self.de_aggregate:
            return [r + b"\n" for r in rows] if self.append_delimiter else rows
        return [data] if rows else []

    def processors(self) -> list[dict[str, Any]]:
        """Firehose's processors, in order (CloudFormation spelling)."""
        out: list[dict[str, Any]] = []
        if self.de_aggregate:
            out.append({"Type": "RecordDeAggregation", "Parameters": [
                {"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]})
        out.append({"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": self.partition_query},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": JQ_ENGINE},
        ]})
        if self.append_delimiter:
            # Default delimiter: a newline, so every object is one JSON Lines row again.
            out.append({"Type": "AppendDelimiterToRecord", "Parameters": []})
        return out
