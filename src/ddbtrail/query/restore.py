"""Point-in-time restore from the lake: items exactly as they were at an instant.

The state comes from the saved as-of queries (``ddbtrail.query.lookups``: ``table_as_of.sql``,
``item_as_of.sql``), so the restore and Athena agree on what "as of T" means. Each row's
plain image plus its type hints rebuild the exact typed item (numbers keep every digit,
B/BS become the original bytes, SS/NS/BS stay sets). This module plans; the writes are a
job's (``ddbtrail.capture.put_items``: BatchWriteItem, 25 items per call,
UnprocessedItems retried with backoff and jitter).

A restore *puts* items; it does not delete target items that did not exist at the
instant. Restore into a new (empty) table, or into the source table to undo changes to
the items that existed then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ddbtrail.core import codec, timefmt
from ddbtrail.core.exceptions import (
    InvalidValue,
    LakeError,
)
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups


def parse_instant(text: str, *, now_ms: Callable[[], int] | None = None) -> int:
    """``at`` text -> epoch milliseconds, by the one instant parser. Raises InvalidArgument."""
    return timefmt.parse_instant(text, what="at", now_ms=now_ms)


@dataclass(slots=True)
class RestorePlan:
    """What a restore writes: typed items (B as bytes), and the keys it could not rebuild."""

    table: str
    at_ms: int
    items: list[codec.TypedItem] = field(default_factory=list)
    item_keys: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)      # asked for, not alive at the instant
    no_image: list[str] = field(default_factory=list)    # alive, but the lake has no image


def row_item(row: Mapping[str, Any]) -> codec.TypedItem | None:
    """The exact typed item of an as-of row, B/BS as bytes; None if the row has no image.

    Raises InvalidValue naming the item if the stored text or hints are damaged.
    """
    text = row.get("item")
    if text is None:
        return None
    try:
        hints = codec.hints_under(json.loads(row["type_hints"]), "/new_image") \
            if row.get("type_hints") else {}
        return codec.decode_item(text, hints, binary_as_bytes=True)
    except (ValueError, InvalidValue) as exc:
        raise InvalidValue(f"item {row.get('item_key')}: stored image cannot be rebuilt "
                           f"({exc})") from exc


def plan_restore(lake: Lake, table: str, at_ms: int,
                 item_keys: Sequence[str] | None = None, *,
                 explain: list[str] | None = None) -> RestorePlan:
    """Items of ``table`` as they were at ``at_ms`` (all, or just ``item_keys``).

    ``explain`` receives the state snapshot used and the files read. Raises LakeError
    (unreadable lake) or InvalidValue (damaged row).
    """
    plan = RestorePlan(table=table, at_ms=at_ms)
    if item_keys is None:
        rows: Iterable[Mapping[str, Any]] = lookups.table_as_of(lake, table, at_ms,
                                                                explain=explain)
    else:
        found: list[Mapping[str, Any]] = []
        for key in item_keys:
            hit = lookups.item_as_of(lake, table, key, at_ms, explain=explain)
            if hit is None:
                plan.absent.append(key)
            else:
                found.append(hit)
        rows = found
    for row in rows:
        item = row_item(row)
        if item is None:
            plan.no_image.append(str(row["item_key"]))
            continue
        plan.items.append(item)
        plan.item_keys.append(str(row["item_key"]))
    return plan


def wire_json(item: Mapping[str, Any]) -> str:
    """A typed item as DynamoDB JSON text (B as base64), for a dry run's output."""
    text, hints = codec.encode_item(item)
    return json.dumps(codec.decode_item(text, hints), ensure_ascii=False,
                      separators=(",", ":"))


def check_plan(plan: RestorePlan) -> None:
    """Refuse a restore that would silently miss items. Raises LakeError naming them."""
    if plan.no_image:
        shown = ", ".join(plan.no_image[:5]) + (" ..." if len(plan.no_image) > 5 else "")
        raise LakeError(
            f"{len(plan.no_image)} item(s) of {plan.table} have no image in the lake at that "
            f"instant (a KEYS_ONLY or OLD_IMAGE stream, or a row spilled to S3): {shown}")
