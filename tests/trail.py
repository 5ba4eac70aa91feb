"""A lake and a folder of CloudTrail log files for the same writes, with known authors.

The stream records become rows through ``flatten`` (as capture makes them); the write
events are real-format CloudTrail records (``core.cloudtrail.write_record``, shaped as
AWS's documented PutItem example) in gzipped files laid out as CloudTrail delivers them.
``EXPECTED`` is the truth per change: who made it and how sure the match can be.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ddbtrail.core import cloudtrail as ct
from ddbtrail.core.flatten import flatten_record, row_bytes
from ddbtrail.core.row import partition_path

ACCOUNT = "123456789012"
REGION = "us-east-1"
T0 = 1714557600  # 2024-05-01T10:00:00Z
SERVICE = ct.assumed_role_identity(ACCOUNT, "orders-service", "i-0abc")
SUPPORT = ct.assumed_role_identity(ACCOUNT, "support", "dana@example.com")
ADMIN = ct.iam_user_identity(ACCOUNT, "admin")
SERVICE_ARN, SUPPORT_ARN, ADMIN_ARN = (i["arn"] for i in (SERVICE, SUPPORT, ADMIN))
TTL_ARN = "dynamodb.amazonaws.com"


def _image(key: int, status: str) -> dict[str, Any]:
    return {"Id": {"N": str(key)}, "status": {"S": status}}


def stream_record(seq: int, action: str, key: int, at: int, *, status: str = "X",
                  ttl: bool = False) -> dict[str, Any]:
    ddb: dict[str, Any] = {"Keys": {"Id": {"N": str(key)}}, "SequenceNumber": str(seq),
                           "ApproximateCreationDateTime": at, "SizeBytes": 50,
                           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if action != "REMOVE":
        ddb["NewImage"] = _image(key, status)
    if action != "INSERT":
        ddb["OldImage"] = _image(key, "before")
    rec: dict[str, Any] = {"eventID": f"ch-{seq}", "eventName": action,
                           "eventSource": "aws:dynamodb", "awsRegion": REGION,
                           "dynamodb": ddb, "eventSourceARN":
                           f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Orders/stream/x"}
    if ttl:
        rec["userIdentity"] = {"type": "Service", "principalId": TTL_ARN}
    return rec


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(n: int, name: str, identity: dict[str, Any], at: int,
          items: list[tuple[str, str, dict[str, Any]]], *, error: str | None = None,
          ip: str = "198.51.100.7") -> dict[str, Any]:
    return ct.write_record(event_name=name, event_time=_iso(at), event_id=f"ct-{n:04d}",
                           identity=identity, account=ACCOUNT, region=REGION, items=items,
                           source_ip=ip, user_agent=f"agent-{n}", error_code=error)


STREAM = [
    stream_record(1, "INSERT", 101, T0, status="NEW"),
    stream_record(2, "MODIFY", 101, T0 + 5, status="PAID"),
    stream_record(3, "MODIFY", 101, T0 + 10, status="NO_TRAIL"),
    stream_record(4, "MODIFY", 101, T0 + 15, status="RACE_A"),
    stream_record(5, "MODIFY", 101, T0 + 15, status="RACE_B"),
    stream_record(6, "MODIFY", 101, T0 + 20, status="PARTIQL"),
    stream_record(7, "MODIFY", 101, T0 + 25, status="TXN"),
    stream_record(8, "MODIFY", 102, T0 + 25, status="TXN"),
    stream_record(9, "INSERT", 102, T0 + 3, status="NEW"),
    stream_record(10, "REMOVE", 101, T0 + 86400 + 30, ttl=True),
]

_typed_put = event(2, "UpdateItem", SUPPORT, T0 + 5, [("Update", "Orders", {"Id": 101})])
_typed_put["requestParameters"]["key"] = {"Id": {"N": "101"}}  # a typed key, also logged
_partiql = event(6, "ExecuteStatement", ADMIN, T0 + 20, [("Update", "Orders", {"Id": 101})])
_partiql["requestParameters"] = {
    "statement": 'UPDATE "Orders" SET status = ***(Redacted) WHERE "Id" = 101'}

TRAIL = [
    event(1, "PutItem", SERVICE, T0, [("Put", "Orders", {"Id": 101})]),
    _typed_put,
    event(3, "UpdateItem", ADMIN, T0 + 5, [("Update", "Orders", {"Id": 101})],
          error="ConditionalCheckFailedException"),
    event(4, "UpdateItem", ADMIN, T0 + 15, [("Update", "Orders", {"Id": 101})]),
    event(5, "UpdateItem", SERVICE, T0 + 15, [("Update", "Orders", {"Id": 101})]),
    _partiql,
    event(7, "TransactWriteItems", SERVICE, T0 + 25,
          [("Update", "Orders", {"Id": 101}), ("Update", "Orders", {"Id": 102})]),
    event(8, "BatchWriteItem", ADMIN, T0 + 3, [("Put", "Orders", {"Id": 102})]),
    # Another table's item with the same key, in the same second: not an Orders change.
    event(9, "PutItem", SUPPORT, T0 + 3, [("Put", "Customers", {"Id": 102})]),
    # A write the next day that changed nothing (no stream record): it matches no change.
    event(10, "PutItem", SUPPORT, T0 + 86400 + 60, [("Put", "Orders", {"Id": 101})]),
]

# change event_id -> (actor, actor_match, candidates)
EXPECTED: dict[str, tuple[str | None, str, list[str]]] = {
    "ch-1": (SERVICE_ARN, "exact", []),
    "ch-2": (SUPPORT_ARN, "exact", []),
    "ch-3": (None, "none", []),
    "ch-4": (None, "ambiguous", sorted([ADMIN_ARN, SERVICE_ARN])),
    "ch-5": (None, "ambiguous", sorted([ADMIN_ARN, SERVICE_ARN])),
    "ch-6": (ADMIN_ARN, "exact", []),
    "ch-7": (SERVICE_ARN, "exact", []),
    "ch-8": (SERVICE_ARN, "exact", []),
    "ch-9": (ADMIN_ARN, "exact", []),
    "ch-10": (TTL_ARN, "exact", []),
}
# Who really made each change (ch-4/ch-5 were admin and service, in some order).
TRUTH = {"ch-1": SERVICE_ARN, "ch-2": SUPPORT_ARN, "ch-3": "unlogged", "ch-6": ADMIN_ARN,
         "ch-7": SERVICE_ARN, "ch-8": SERVICE_ARN, "ch-9": ADMIN_ARN, "ch-10": TTL_ARN}


def write_lake(root: Path, records: list[dict[str, Any]] = STREAM) -> Path:
    for i, rec in enumerate(records):
        row = flatten_record(rec, ingested_at_ms=(T0 + 90000) * 1000)
        folder = root / partition_path(row["table_name"], row["dt"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"delivery-{i}.jsonl").write_bytes(row_bytes(row))
    return root


def write_trail(root: Path, records: list[dict[str, Any]] = TRAIL) -> Path:
    """Gzipped log files, one per 5 minutes of event time, in CloudTrail's layout."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        at = datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))
        delivered = at.replace(minute=at.minute - at.minute % 5, second=0)
        files[ct.log_file_name(ACCOUNT, REGION, delivered, "a1b2c3")].append(rec)
    for rel, recs in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(json.dumps({"Records": recs}).encode()))
    return root


ORDERS_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Orders"
# PutItem, a typed-key UpdateItem and a transaction: each names Orders by its ARN instead.
ARN_LOGGED = ("ct-0001", "ct-0002", "ct-0007")


def trail_with_table_arns(records: list[dict[str, Any]] = TRAIL,
                          ids: tuple[str, ...] | list[str] = ARN_LOGGED
                          ) -> list[dict[str, Any]]:
    """``records`` with Orders named by its ARN in the events ``ids`` names."""
    out = json.loads(json.dumps(records))
    for rec in out:
        if rec["eventID"] not in ids:
            continue
        params = rec["requestParameters"]
        for entry in [params, *params.get("requestItems", [])]:
            if entry.get("tableName") == "Orders":
                entry["tableName"] = ORDERS_ARN
    return out
