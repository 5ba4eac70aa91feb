"""Who changed an item: one item's history, each change attributed from CloudTrail.

The history comes from the saved ``item_history`` query; the write events from the
CloudTrail log files of the days the history spans (``ddbtrail.lake.cloudtrail``); the
matching is ``ddbtrail.core.attribution``'s, whose rule docs/cloudtrail.md explains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ddbtrail.core.attribution import (
    AMBIGUOUS,
    DEFAULT_TOLERANCE_S,
    EXACT,
    Change,
    attribute,
    window_s,
)
from ddbtrail.lake.cloudtrail import TrailLogs
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups

# The columns ``who`` returns, in order: the actor fields, then what identifies the change.
WHO_COLUMNS: Final = (
    "event_time", "action", "actor", "actor_match", "actor_candidates", "source_ip",
    "user_agent", "cloudtrail_event", "cloudtrail_event_id", "what_changed",
    "sequence_number", "event_id", "timestamp")


@dataclass(frozen=True)
class AttributedHistory:
    """History rows with the actor fields, and what reading CloudTrail found."""

    rows: list[dict[str, Any]]
    log_files: int
    write_events: int
    problems: list[str]


def days_spanned(timestamps_ms: list[int], tolerance_s: int) -> list[str]:
    """Day folders (YYYY-MM-DD) that can hold the events of changes at these times.

    CloudTrail files land in the folder of their delivery, minutes after the event, so
    the day after the last change is read too.
    """
    if not timestamps_ms:
        return []
    first = datetime.fromtimestamp(min(timestamps_ms) / 1000 - window_s(tolerance_s),
                                   UTC).date()
    last = datetime.fromtimestamp(max(timestamps_ms) / 1000, UTC).date() + timedelta(days=1)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def attribute_rows(rows: list[dict[str, Any]], trail: TrailLogs, table_name: str,
                   key_types: Mapping[str, str], *,
                   tolerance_s: int = DEFAULT_TOLERANCE_S) -> AttributedHistory:
    """``rows`` (item_history rows of one table) with actor fields added, in order."""
    days = days_spanned([int(r["timestamp"]) for r in rows], tolerance_s)
    read = trail.read(days) if rows else None
    events = read.events if read else []
    changes = [Change(table_name, str(r.get("item_key") or r["_item_key"]), int(r["timestamp"]),
                      str(r["action"]), bool(r["ttl_delete"])) for r in rows]
    found = attribute(changes, events, {table_name: dict(key_types)}, tolerance_s=tolerance_s)
    out = [{**{k: v for k, v in r.items() if k != "_item_key"}, **a.as_fields()}
           for r, a in zip(rows, found, strict=True)]
    return AttributedHistory(out, read.files if read else 0, len(events),
                             read.problems if read else [])


def item_history_with_actors(lake: Lake, table_name: str, item_key: str, trail: TrailLogs, *,
                             tolerance_s: int = DEFAULT_TOLERANCE_S) -> AttributedHistory:
    """Every change of one item, oldest first, each with ``actor``, ``actor_match``
    (exact | ambiguous | none), ``actor_candidates``, ``source_ip``, ``user_agent``,
    ``cloudtrail_event`` and ``cloudtrail_event_id``.

    Raises LakeError when the lake or the CloudTrail location cannot be read.
    """
    rows = [{**r, "_item_key": item_key}
            for r in lookups.item_history(lake, table_name, item_key)]
    types = lookups.key_types_from_lake(lake, table_name) if rows else {}
    return attribute_rows(rows, trail, table_name, types, tolerance_s=tolerance_s)


def attributed_history(lake: Lake, table_name: str, item_key: str, trail: TrailLogs, *,
                       tolerance_s: int = DEFAULT_TOLERANCE_S,
                       on_problem: Callable[[str], None] | None = None
                       ) -> list[dict[str, Any]]:
    """``item_history_with_actors`` rows, each with ``what_changed`` too; every CloudTrail
    record that could not be read is told to ``on_problem`` (None: dropped)."""
    found = item_history_with_actors(lake, table_name, item_key, trail,
                                     tolerance_s=tolerance_s)
    if on_problem is not None:
        for line in found.problems:
            on_problem(line)
    return [{**r, "what_changed": lookups.describe_change(r)} for r in found.rows]


def short_actor(actor: str) -> str:
    """``arn:aws:sts::1:assumed-role/R/S`` -> ``assumed-role/R/S``; other names as they are."""
    if actor.startswith("arn:") and actor.count(":") >= 5:
        return actor.split(":", 5)[5]
    return actor


def item_history_with_actor_sql(lake: Lake, table_name: str, item_key: str,
                                trail: TrailLogs, from_iso: str, to_iso: str
                                ) -> list[dict[str, Any]]:
    """The saved query ``item_history_with_actor`` on DuckDB: the lake's ``changes`` and
    the CloudTrail files of the window's days (and the next) as ``cloudtrail_logs``."""
    from ddbtrail.core.timefmt import parse_timestamp
    from ddbtrail.query import saved, trail_table
    from ddbtrail.query.duck import connect

    days = days_spanned([parse_timestamp(from_iso), parse_timestamp(to_iso)], 0)
    con = connect(lake, table_name=table_name)
    try:
        trail_table.register(con, trail, days)
        query = saved.load("item_history_with_actor")
        return list(saved.run_duckdb(query, {"table_name": table_name, "item_key": item_key,
                                             "from": from_iso, "to": to_iso},
                                     con).to_pylist())
    finally:
        con.close()


def by_label(row: Mapping[str, Any]) -> str:
    """Short "by" text of an attributed row, for tables (json keeps the full ARN)."""
    match = row.get("actor_match")
    if match == EXACT:
        return short_actor(str(row.get("actor")))
    if match == AMBIGUOUS:
        return "ambiguous: " + " | ".join(short_actor(a)
                                          for a in row.get("actor_candidates") or [])
    return ""
