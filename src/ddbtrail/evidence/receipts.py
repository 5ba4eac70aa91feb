"""Receipts: what capture handed to delivery, written by a channel apart from the data path.

After a batch's rows were accepted by the sink (Firehose, or the local delivery stream),
capture writes one receipt per table of the batch, one S3 PUT (or one local file), never
through Firehose::

    <lake>/_ddbtrail/receipts/table=<table>/dt=<yyyy-mm-dd of received_at>/<receipt_id>.json

A receipt is one line of JSON (Athena's JSON SerDe, DuckDB and Trino read it as a row)
naming every change it covers by event id, so the reconciliation query
(``athena_queries/reconcile_receipts.sql``) can say which changes were received but are
missing from the lake, and which rows of the lake no receipt accounts for. A row that
was not accepted gets no receipt: a receipt means "handed to delivery successfully".

Only the standard library and ``core`` are imported here: the capture Lambda loads it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.timefmt import iso_ms

if TYPE_CHECKING:
    from ddbtrail.lake.files import Lake

RECEIPT_VERSION: Final = 1
RECEIPTS_DIR: Final = "receipts"  # under the lake's _ddbtrail/
DEFAULT_RECEIPTS_PREFIX: Final = "_ddbtrail/receipts/"
SOURCES: Final = ("capture", "backfill", "redrive", "copy")
ACTIONS: Final = ("INSERT", "MODIFY", "REMOVE", "SNAPSHOT")
# The receipt as a table (Glue, DuckDB, Trino read the same columns): name, Glue type, comment.
# ``changes`` fields are in this order everywhere: SQL unnests them by position.
CHANGE_FIELDS: Final = ("event_id", "item_key", "action", "sequence_number", "dt")
COLUMNS: Final = (
    ("receipt_version", "int", "Receipt format version (1)."),
    ("receipt_id", "string", "Unique id of the receipt (a UUID); also its file name."),
    ("source", "string", "What delivered the rows: capture | backfill | redrive | copy."),
    ("source_arn", "string", "eventSourceARN of the batch (the stream); null for backfill."),
    ("shard_id", "string", "Stream shard of the batch, when known."),
    ("first_sequence", "string", "Least sequence number covered (null for SNAPSHOT rows)."),
    ("last_sequence", "string", "Greatest sequence number covered."),
    ("received_at", "string", "When capture wrote the receipt, ISO-8601 UTC with ms."),
    ("changes", "array<struct<" + ",".join(f"{f}:string" for f in CHANGE_FIELDS) + ">>",
     "Each change handed to delivery: event_id, item_key, action, sequence_number and dt "
     "(the row's partition)."),
)
PARTITIONS: Final = (
    ("table_name", "string", "DynamoDB table name (the receipt's table; folder table=)."),
    ("dt", "string", "UTC day of received_at, YYYY-MM-DD."),
)
PARTITION_TEMPLATE: Final = "table=${table_name}/dt=${dt}/"


class ReceiptChange(NamedTuple):  # a tuple: capture makes one per delivered row
    """One change a receipt covers: enough to name it and find its row in the lake."""

    table_name: str
    dt: str  # the row's partition (event date, UTC): where its row lands
    event_id: str
    item_key: str
    action: str
    sequence_number: str | None


class ReceiptStore(Protocol):
    """Where receipts go: ``put`` writes one object at a key relative to the receipts
    folder (``table=<t>/dt=<d>/<id>.json``) and raises when it cannot."""

    def put(self, key: str, body: bytes) -> None:
        """Write the whole receipt, or raise."""
        ...


@dataclass(frozen=True, slots=True)
class S3Receipts:
    """Receipts as S3 objects under ``s3://<bucket>/<prefix>`` (the capture Lambda's)."""

    s3: Any
    bucket: str
    prefix: str = DEFAULT_RECEIPTS_PREFIX

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=body,
                           ContentType="application/json")


@dataclass(frozen=True, slots=True)
class LakeReceipts:
    """Receipts under a lake's ``_ddbtrail/receipts/`` (local capture, backfill, redrive)."""

    lake: Lake

    def put(self, key: str, body: bytes) -> None:
        self.lake.write_atomic(self.lake.state_path(RECEIPTS_DIR, key), body)


def receipt_key(table_name: str, received_ms: int, receipt_id: str) -> str:
    """``table=<t>/dt=<yyyy-mm-dd>/<id>.json``: the key under the receipts folder."""
    day = time.strftime("%Y-%m-%d", time.gmtime(received_ms / 1000))
    return f"table={table_name}/dt={day}/{receipt_id}.json"


def receipt_documents(changes: Sequence[ReceiptChange], *, source: str, received_ms: int,
                      source_arn: str | None = None, shard_id: str | None = None,
                      ) -> list[tuple[str, dict[str, Any]]]:
    """One receipt per table among ``changes`` (a batch holds one table, a redrive may not),
    as (key, document). ``first_sequence``/``last_sequence`` are the least and greatest
    sequence numbers compared as numbers; null for SNAPSHOT rows, which have none."""
    if source not in SOURCES:
        raise ValueError(f"receipt source {source!r}: expected one of {', '.join(SOURCES)}")
    by_table: dict[str, list[ReceiptChange]] = {}
    for change in changes:
        by_table.setdefault(change.table_name, []).append(change)
    out = []
    for table, items in by_table.items():
        counts = dict.fromkeys(ACTIONS, 0)
        for c in items:
            counts[c.action] = counts.get(c.action, 0) + 1
        seqs = sorted((c.sequence_number for c in items if c.sequence_number),
                      key=lambda s: (len(s), s))
        receipt_id = str(uuid.uuid4())
        doc = {
            "receipt_version": RECEIPT_VERSION,
            "receipt_id": receipt_id,
            "table": table,
            "source": source,
            "source_arn": source_arn,
            "shard_id": shard_id,
            "first_sequence": seqs[0] if seqs else None,
            "last_sequence": seqs[-1] if seqs else None,
            "received_at": iso_ms(received_ms),
            "counts": counts,
            "changes": [{"event_id": c.event_id, "item_key": c.item_key, "action": c.action,
                         "sequence_number": c.sequence_number, "dt": c.dt} for c in items],
        }
        out.append((receipt_key(table, received_ms, receipt_id), doc))
    return out


def write_receipts(store: ReceiptStore, changes: Sequence[ReceiptChange], *, source: str,
                   received_ms: int | None = None, source_arn: str | None = None,
                   shard_id: str | None = None) -> list[str]:
    """Write the receipts of ``changes`` (nothing when empty); return their keys. Raises
    whatever the store raises: the caller then treats the batch as not delivered."""
    if not changes:
        return []
    when = received_ms if received_ms is not None else int(time.time() * 1000)
    keys = []
    for key, doc in receipt_documents(changes, source=source, received_ms=when,
                                      source_arn=source_arn, shard_id=shard_id):
        store.put(key, json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
                  + b"\n")
        keys.append(key)
    return keys


# --------------------------------------------------------------------------- reading


def receipt_files(lake: Lake, table_name: str | None = None) -> list[tuple[str, str, str]]:
    """(path, table, dt) of every receipt file of the lake (of ``table_name``), by path."""
    import pyarrow.fs as pafs

    base = lake.state_path(RECEIPTS_DIR)
    out = []
    try:
        tables = lake.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        for tdir in tables:
            table = tdir.base_name.removeprefix("table=")
            if (tdir.type != pafs.FileType.Directory or table == tdir.base_name
                    or (table_name is not None and table != table_name)):
                continue
            for ddir in lake.fs.get_file_info(pafs.FileSelector(tdir.path)):
                day = ddir.base_name.removeprefix("dt=")
                if ddir.type != pafs.FileType.Directory or day == ddir.base_name:
                    continue
                for f in lake.fs.get_file_info(pafs.FileSelector(ddir.path)):
                    if f.type == pafs.FileType.File and f.base_name.endswith(".json"):
                        out.append((f.path, table, day))
    except OSError as exc:
        raise LakeError(f"lake {lake.uri}: cannot list receipts ({exc})") from exc
    return sorted(out)


def read_receipts(lake: Lake, table_name: str | None = None) -> list[dict[str, Any]]:
    """Every receipt of the lake (of ``table_name``), each with ``table_name`` and ``dt``
    from its path, as the Glue table reads them. LakeError names a receipt that is not
    one line of JSON."""
    out = []
    for path, table, day in receipt_files(lake, table_name):
        body = lake.read_bytes(path) or b""
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise LakeError(f"receipt {path} is not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise LakeError(f"receipt {path} is not a JSON object")
        doc["table_name"], doc["dt"], doc["path"] = table, day, path
        out.append(doc)
    return out


def changes_of(receipts: Iterable[Mapping[str, Any]]) -> Iterable[tuple[Mapping[str, Any],
                                                                        Mapping[str, Any]]]:
    """(receipt, change) for every change every receipt names."""
    for receipt in receipts:
        for change in receipt.get("changes") or ():
            yield receipt, change
