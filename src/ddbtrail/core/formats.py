"""The lake's formats, written once: the local delivery stream, Glue, the cost model, the
CLI's choices and the API take them from here."""

from __future__ import annotations

from typing import Final, Literal

LakeFormat = Literal["parquet", "jsonl", "iceberg"]
# Hive-partitioned files (one Glue table_input each), then the Iceberg table.
HIVE_FORMATS: Final = ("parquet", "jsonl")
LAKE_FORMATS: Final = (*HIVE_FORMATS, "iceberg")
