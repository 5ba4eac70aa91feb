"""A small lake for the report tests, written directly from stream records.

Records go through ``ddbtrail.core.flatten`` (the capture path's own row builder) and land as
Parquet (the Firehose layout, partition columns in the path) plus one JSON Lines file.
The workload is fixed, so tests can state what the figures must show.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ddbtrail.core.flatten import flatten_record, row_json
from ddbtrail.core.row import DATA_COLUMNS, arrow_schema
from ddbtrail.lake.files import Lake

T0_MS = 1_714_557_600_000  # 2024-05-01T10:00:00Z
HOUR_MS = 3_600_000
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

# Keys a browser must show as text, never run or render as markup.
HOSTILE_KEYS = (
    '<img src="x" onerror="window.__xss=1">',
    "</script><script>window.__xss=2</script>",
    "<b>bold</b>&amp;",
)


@dataclass
class Workload:
    """Records in event order; what the lake should then show, stated independently."""

    records: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # (record, lag)
    seq: Iterator[int] = field(default_factory=lambda: itertools.count(100_000_000_000_000_000_000))

    def change(self, table: str, action: str, pk: str, at_ms: int, *, old: dict[str, Any] | None,
               new: dict[str, Any] | None, lag_ms: int = 1500,
               identity: dict[str, str] | None = None) -> None:
        seq = str(next(self.seq))
        ddb: dict[str, Any] = {
            "Keys": {"pk": {"S": pk}},
            "SequenceNumber": seq,
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            "ApproximateCreationDateTime": at_ms // 1000,
        }
        if old is not None:
            ddb["OldImage"] = {"pk": {"S": pk}, **old}
        if new is not None:
            ddb["NewImage"] = {"pk": {"S": pk}, **new}
        record: dict[str, Any] = {
            "eventID": f"{table}-{seq}",
            "eventName": action,
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
                              "/stream/2024-05-01T00:00:00.000",
            "dynamodb": ddb,
        }
        if identity is not None:
            record["userIdentity"] = identity
        self.records.append((record, lag_ms))


def _item(status: str, total: int, note: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {"status": {"S": status}, "total": {"N": str(total)}}
    if note:
        item["note"] = {"S": note}
    return item


def sample_workload() -> Workload:
    """Two tables over three hours of 2024-05-01 (UTC).

    orders, 10:00: 7 inserts (o#1..o#4 and the hostile keys).
    orders, 11:00: o#1 modified 5 times (status each time, total twice), o#2 twice
                   (note only); so status 5, total 2, note 2 updates.
    orders, 12:00: o#3 deleted by a user, o#4 deleted by TTL.
    users,  10:00: 2 inserts.
    A big item (o#2's note, 3,000 characters) lands in the 2 Ki-4 Ki size bucket.
    """
    w = Workload()
    t = T0_MS + 60_000
    for i, pk in enumerate(["o#1", "o#2", "o#3", "o#4", *HOSTILE_KEYS]):
        w.change("orders", "INSERT", pk, t + i * 1000, old=None, new=_item("new", 10))
    w.change("users", "INSERT", "u#1", t, old=None, new={"name": {"S": "Ada"}})
    w.change("users", "INSERT", "u#2", t + 500, old=None, new={"name": {"S": "Grace"}})
    t = T0_MS + HOUR_MS + 60_000
    prev = _item("new", 10)
    for i in range(5):
        nxt = _item(f"s{i}", 10 + (i if i < 3 else 2))
        w.change("orders", "MODIFY", "o#1", t + i * 1000, old=prev, new=nxt,
                 lag_ms=2000 + i * 1000)
        prev = nxt
    w.change("orders", "MODIFY", "o#2", t + 10_000, old=_item("new", 10),
             new=_item("new", 10, "x" * 3000))
    w.change("orders", "MODIFY", "o#2", t + 11_000, old=_item("new", 10, "x" * 3000),
             new=_item("new", 10, "y"))
    t = T0_MS + 2 * HOUR_MS + 60_000
    w.change("orders", "REMOVE", "o#3", t, old=_item("new", 10), new=None,
             identity={"type": "User", "principalId": "AROAEXAMPLE:alice"})
    w.change("orders", "REMOVE", "o#4", t + 1000, old=_item("new", 10), new=None,
             identity=TTL_IDENTITY, lag_ms=30_000)
    return w


def write_lake(lake_dir: str, workload: Workload | None = None,
               duplicate_last: bool = True) -> Lake:
    """Write the workload's rows: one Parquet file per partition, and (the at-least-once
    case) the last change delivered again in a JSON Lines file, ingested later.
    """
    workload = workload or sample_workload()
    lake = Lake.open(lake_dir)
    rows = [flatten_record(rec, ingested_at_ms=rec["dynamodb"]["ApproximateCreationDateTime"]
                           * 1000 + lag)
            for rec, lag in workload.records]
    parts: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        parts.setdefault((row["table_name"], row["dt"]), []).append(row)
    schema = arrow_schema(include_partitions=False)
    for (table, dt), part in parts.items():
        cols = {c.name: [r[c.name] for r in part] for c in DATA_COLUMNS}
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table(cols, schema=schema), sink)
        lake.write_atomic(f"{lake.partition(table, dt)}/batch-1.parquet",
                          sink.getvalue().to_pybytes())
    if duplicate_last:
        again = dict(rows[-1])
        again["ingested_at"] = "2024-05-01T23:00:00.000Z"
        lake.write_atomic(f"{lake.partition(again['table_name'], again['dt'])}/redelivery.jsonl",
                          (row_json(again) + "\n").encode())
    return lake


def as_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=1, default=str)
