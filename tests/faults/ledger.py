"""Ground truth for fault tests: every write made to a table, and the lake checked against it.

A ``Ledger`` makes seeded writes (put, update, delete) to a moto table and keeps, per item,
the image each write left behind (None after a delete). Every write changes the item (a
counter goes up), so each one is exactly one stream record. ``verify`` then reads the lake
with the saved queries on DuckDB (``item_history``, ``view_changes_dedup``,
``duplicate_events``) and counts what was lost, what was delivered twice, and what the
deduplicated views still hold twice.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ddbtrail.core import codec
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups
from ddbtrail.query import saved as queries

KEY = "pk"


def make_table(moto_server: Any, prefix: str) -> tuple[Any, str, str]:
    """A fresh table with a NEW_AND_OLD_IMAGES stream: (dynamodb client, name, stream ARN)."""
    ddb = moto_server.client("dynamodb")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    desc = ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return ddb, name, desc["TableDescription"]["LatestStreamArn"]


def plain(item: dict[str, Any] | None) -> Any:
    """A typed item (boto3 bytes or stream base64 for B) as comparable plain JSON + hints."""
    if item is None:
        return None
    text, hints = codec.encode_item(item)
    return json.loads(text), hints


@dataclass
class Ledger:
    """Every write made to one table, in order, with the image it left."""

    ddb: Any
    table: str
    rng: random.Random
    items: int = 12
    writes: list[tuple[str, Any]] = field(default_factory=list)  # (item_key, plain image)
    _live: dict[str, int] = field(default_factory=dict)  # pk -> counter

    def write(self, count: int) -> None:
        """Make ``count`` writes: puts, updates of live items, deletes of live items."""
        for _ in range(count):
            pk = f"item-{self.rng.randrange(self.items):03d}"
            n = self._live.get(pk)
            op = self.rng.random()
            if n is not None and op < 0.15:
                self.ddb.delete_item(TableName=self.table, Key={KEY: {"S": pk}})
                del self._live[pk]
                image = None
            elif n is not None and op < 0.6:
                out = self.ddb.update_item(
                    TableName=self.table, Key={KEY: {"S": pk}},
                    UpdateExpression="SET v = :v, note = :n, #b = :b",
                    ExpressionAttributeNames={"#b": "blob"},
                    ExpressionAttributeValues={
                        ":v": {"N": str(n + 1)},
                        ":n": {"S": f"update {n + 1} of {pk} \u00e9\u2603"},
                        ":b": {"B": self.rng.randbytes(6)}},
                    ReturnValues="ALL_NEW")
                self._live[pk] = n + 1
                image = out["Attributes"]
            else:
                n = (n or 0) + 1
                image = {KEY: {"S": pk}, "v": {"N": str(n)},
                         "big": {"N": "12345678901234567890123456789012345678"},
                         "tiny": {"N": "1E-130"},
                         "blob": {"B": self.rng.randbytes(8)},
                         "nested": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True},
                                                      {"S": "x"}]}}}}
                self.ddb.put_item(TableName=self.table, Item=image)
                self._live[pk] = n
            self.writes.append((codec.item_key({KEY: {"S": pk}}), plain(image)))

    def expected(self) -> dict[str, list[Any]]:
        """Per item_key, the images its writes left, in write order."""
        out: dict[str, list[Any]] = {}
        for key, image in self.writes:
            out.setdefault(key, []).append(image)
        return out


@dataclass(frozen=True)
class Verdict:
    """What the lake holds compared with the ledger."""

    written: int
    lost: int
    events: int  # distinct event_ids in the lake for the table
    rows: int  # raw rows in the lake for the table
    duplicates_delivered: int  # raw rows beyond one per event_id
    duplicates_after_dedup: int  # rows beyond one per event_id in the deduplicated views
    disagreeing_copies: int  # duplicate_events audit rows (copies that differ)
    out_of_order: int  # items whose history is not in write order


def _image(row: dict[str, Any]) -> Any:
    typed = lookups.typed_item(row, "new_image")
    return plain(typed)


def verify(lake: Lake, ledger: Ledger) -> Verdict:
    """Read the lake with the saved queries and compare it with the ledger."""
    expected = ledger.expected()
    lost = out_of_order = dup_history = 0
    for key, images in expected.items():
        history = lookups.item_history(lake, ledger.table, key)
        got = [_image(r) for r in history]
        dup_history += len(history) - len({r["event_id"] for r in history})
        if got != images:
            # Count each expected image that is missing from the history as lost; an item
            # whose images are all there but in another order is out of order.
            remaining = Counter(json.dumps(g, sort_keys=True) for g in got)
            missing = 0
            for img in images:
                text = json.dumps(img, sort_keys=True)
                if remaining[text] > 0:
                    remaining[text] -= 1
                else:
                    missing += 1
            lost += missing
            out_of_order += int(missing == 0)
    raw = _raw_rows(lake, ledger.table)
    event_ids = set(raw)
    dedup = [r["event_id"] for r in queries.rows(queries.run("view_changes_dedup", {}, lake=lake))
             if r["table_name"] == ledger.table]
    audit = queries.rows(queries.run("duplicate_events", {
        "table_name": ledger.table, "from": "2000-01-01T00:00:00Z",
        "to": "2100-01-01T00:00:00Z"}, lake=lake))
    return Verdict(
        written=len(ledger.writes),
        lost=lost,
        events=len(event_ids),
        rows=len(raw),
        duplicates_delivered=len(raw) - len(event_ids),
        duplicates_after_dedup=(len(dedup) - len(set(dedup))) + dup_history,
        disagreeing_copies=len(audit),
        out_of_order=out_of_order,
    )


def _raw_rows(lake: Lake, table: str) -> list[str]:
    """event_id of every row of ``table`` in the lake, duplicates included."""
    from ddbtrail.query.duck import connect

    con = connect(lake, table_name=table)
    try:
        return [r[0] for r in con.sql("SELECT event_id FROM changes WHERE table_name = ?",
                                       params=[table]).fetchall()]
    finally:
        con.close()
