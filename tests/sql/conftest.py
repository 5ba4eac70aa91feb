"""Build lakes from input rows kept as data files (tests/sql/cases/<case>/input.jsonl).

An input row names only what its test is about; the rest of the schema-v1 row is filled
here. ``_format`` (parquet | jsonl | jsonl.gz) and ``_file`` choose the data file the row
lands in, so one lake mixes every format Firehose may deliver.
"""

from __future__ import annotations

import gzip
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ddbtrail.core.row import COLUMN_NAMES, arrow_schema, partition_path
from ddbtrail.core.timefmt import parse_timestamp
from ddbtrail.lake.files import Lake

CASES = Path(__file__).parent / "cases"


def complete_row(given: Mapping[str, Any]) -> dict[str, Any]:
    """A full schema-v1 row from the fields a case gives (table_name, event_id,
    sequence_number, action, item_key, event_time at least)."""
    row: dict[str, Any] = {
        "schema_version": 1,
        "keys": given["item_key"],
        "old_image": None,
        "new_image": None,
        "type_hints": None,
        "changed_attributes": None,
        "timestamp": parse_timestamp(given["event_time"]),
        "ingested_at": given["event_time"],
        "stream_view_type": "NEW_AND_OLD_IMAGES",
        "size_bytes": None,
        "ttl_delete": False,
        "user_identity": None,
        "event_source": "aws:dynamodb",
        "aws_region": "us-east-1",
        "spill_uri": None,
        "snapshot_id": None,
        "dt": given["event_time"][:10],
    }
    row.update({k: v for k, v in given.items() if not k.startswith("_")})
    missing = set(COLUMN_NAMES) - set(row)
    assert not missing, f"input row {given.get('event_id')} lacks {missing}"
    return row


def write_lake(root: Path, given_rows: Iterable[Mapping[str, Any]]) -> Lake:
    """Write rows into a lake laid out as Firehose writes it; returns the Lake."""
    files: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for given in given_rows:
        row = complete_row(given)
        fmt = given.get("_format", "parquet")
        files[(row["table_name"], row["dt"], given.get("_file", "part-0"), fmt)].append(row)
    for (table, dt, name, fmt), rows in files.items():
        folder = root / partition_path(table, dt)
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            # Firehose's Parquet omits the partition columns; they live in the path.
            data = [{k: v for k, v in r.items() if k not in ("table_name", "dt")} for r in rows]
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(data, schema=arrow_schema(
                include_partitions=False)), buf)
            (folder / f"{name}.parquet").write_bytes(buf.getvalue())
        else:
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
            if fmt == "jsonl.gz":
                (folder / f"{name}.jsonl.gz").write_bytes(gzip.compress(text))
            else:
                (folder / f"{name}.jsonl").write_bytes(text)
    return Lake.open(str(root))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


@pytest.fixture
def case_lake(tmp_path: Path) -> Callable[[str], Lake]:
    """Build the lake of a case folder from its input.jsonl."""

    def build(case: str) -> Lake:
        return write_lake(tmp_path / case, read_jsonl(CASES / case / "input.jsonl"))

    return build


@pytest.fixture
def lake_writer() -> Callable[[Path, Iterable[Mapping[str, Any]]], Lake]:
    """``write_lake`` as a fixture, for tests that build their own rows."""
    return write_lake
