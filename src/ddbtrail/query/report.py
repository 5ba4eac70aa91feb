"""The dashboard's data: what each figure of the HTML report shows, from the saved queries.

Every figure comes from a saved query in ``athena_queries/`` run on DuckDB over the lake,
so the dashboard and Athena agree. ``collect`` does the I/O and returns ``ReportData``;
the page itself (Plotly figures, HTML) is presentation: ``ddbtrail.cli._report_html``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ddbtrail.core.timefmt import iso_ms, parse_timestamp
from ddbtrail.lake.files import Lake
from ddbtrail.query import duck
from ddbtrail.query import saved as queries

if TYPE_CHECKING:

    from ddbtrail.lake.cloudtrail import TrailLogs

Rows = list[dict[str, Any]]

# The saved queries behind each figure (athena_queries/<name>.sql).
QUERIES: Final = {
    "activity": "activity_by_hour",
    "activity_fine": "activity_by_minute",
    "activity_finest": "activity_by_second",
    "hot_items": "hot_items",
    "hot_attributes": "hot_attributes",
    "sizes": "item_size_histogram",
    "lag": "ingestion_lag",
    "lag_histogram": "ingestion_lag_histogram",
    "latest": "latest_changes",
}
ACTIONS: Final = ("INSERT", "MODIFY", "REMOVE", "SNAPSHOT")
DEFAULT_TOP: Final = 15
DEFAULT_LATEST: Final = 25
# Time bins follow the span of the changes: seconds for a span under 3 minutes, minutes
# under 3 hours, hours under 3 days, days beyond. About 3 to 200 bars either way.
_BIN_SPANS: Final = (("second", 3 * 60_000), ("minute", 3 * 3_600_000),
                     ("hour", 3 * 86_400_000))


@dataclass(frozen=True, slots=True)
class ReportData:
    """The saved queries' results for one report, as lists of rows (query column names)."""

    lake_uri: str
    tables: tuple[str, ...]
    table: str | None
    since_ms: int | None
    until_ms: int
    generated_ms: int
    activity: Rows = field(default_factory=list)  # per hour (activity_by_hour)
    # What the time charts draw: per second, minute, hour or day, by the span of the
    # changes; rows carry ``bucket`` (ISO-8601 UTC) in place of second/minute/hour.
    timeline: Rows = field(default_factory=list)
    timeline_unit: str = "hour"
    hot_items: Rows = field(default_factory=list)  # each with table_name added
    hot_attributes: Rows = field(default_factory=list)
    sizes: Rows = field(default_factory=list)
    lag: Rows = field(default_factory=list)
    lag_histogram: Rows = field(default_factory=list)
    latest: Rows = field(default_factory=list)
    # Changes by principal: rows of principal, changes, exact/ambiguous/none. With
    # CloudTrail logs the principals come from its data events, else from the stream.
    principals: Rows = field(default_factory=list)
    principals_source: str = "stream"

    @property
    def total_changes(self) -> int:
        return sum(int(r["changes"]) for r in self.activity)


def _window(since_ms: int | None, until_ms: int) -> dict[str, str]:
    return {"from": iso_ms(since_ms or 0), "to": iso_ms(until_ms)}


def principals_table(con: Any, tables: tuple[str, ...], window: Mapping[str, str],
                     cloudtrail: TrailLogs | None) -> Rows:
    """Changes by principal in the window: from CloudTrail when given, else the stream."""
    from ddbtrail.core.attribution import AMBIGUOUS, Change, attribute
    from ddbtrail.query.who import days_spanned

    counts: dict[str, int] = defaultdict(int)
    lo, hi = parse_timestamp(window["from"]), parse_timestamp(window["to"])
    for name in tables:
        found = con.execute(
            "SELECT item_key, min(\"timestamp\"), any_value(action), bool_or(ttl_delete), "
            "any_value(user_identity), any_value(keys), any_value(type_hints) "
            "FROM changes WHERE table_name = ? AND \"timestamp\" >= ? AND \"timestamp\" < ? "
            "GROUP BY event_id, item_key", [name, lo, hi]).fetchall()
        if cloudtrail is None:
            for _, _, _, ttl, identity, _, _ in found:
                counts["DynamoDB TTL" if ttl else identity or "(not in the stream)"] += 1
            continue
        changes = [Change(name, str(k), int(ts), str(a), bool(ttl))
                   for k, ts, a, ttl, _, _, _ in found]
        types = _key_types(found[0][5], found[0][6]) if found else {}
        events = cloudtrail.read(days_spanned([c.timestamp_ms for c in changes], 0)).events
        for a in attribute(changes, events, {name: types}):
            label = a.actor if a.actor is not None else (
                "(ambiguous)" if a.actor_match == AMBIGUOUS else "(no CloudTrail event)")
            counts[label] += 1
    return [{"principal": p, "changes": n}
            for p, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _key_types(keys_text: str, hints_text: str | None) -> dict[str, str]:
    import json

    from ddbtrail.core import codec

    hints = json.loads(hints_text) if hints_text else {}
    out = {}
    for name, value in codec.parse_plain(keys_text).items():
        if hints.get("/keys/" + codec.pointer_token(name)) == "B":
            out[name] = "B"
        else:
            out[name] = "N" if isinstance(value, codec.JsonNumber) else "S"
    return out


def collect(lake: Lake, *, table: str | None = None, since_ms: int | None = None,
            until_ms: int | None = None, top: int = DEFAULT_TOP,
            latest: int = DEFAULT_LATEST, now_ms: int | None = None,
            cloudtrail: TrailLogs | None = None) -> ReportData:
    """Run the report's saved queries over ``lake`` for one table (or all) in a window.

    The window is ``[since_ms, until_ms)`` in epoch ms; no ``since_ms`` means from the
    start, no ``until_ms`` means up to now. Raises LakeError when the lake does not exist
    or cannot be read, QueryError when a query fails.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    until_ms = now_ms + 1 if until_ms is None else until_ms
    dt_from = iso_ms(since_ms)[:10] if since_ms is not None else None
    window = _window(since_ms, until_ms)
    scope = {"table_name": table or "*", **window}
    # One listing of the lake for every query; LakeError if it does not exist.
    con = duck.connect(lake, table_name=table, dt_from=dt_from)

    def run(name: str, values: Mapping[str, str]) -> Rows:
        return queries.rows(queries.run_duckdb(queries.load(name), values, con))

    try:
        activity = run(QUERIES["activity"], window)
        if table is not None:
            activity = [r for r in activity if r["table_name"] == table]
        tables = tuple(sorted({str(r["table_name"]) for r in activity}))
        if not tables:
            return ReportData(lake.uri, tables, table, since_ms, until_ms, now_ms)
        hot: Rows = []
        for name in tables:
            for row in run(QUERIES["hot_items"], {"table_name": name, **window,
                                                  "top": str(top)}):
                hot.append({**row, "table_name": name})
        hot.sort(key=lambda r: (-int(r["changes"]), r["table_name"], r["item_key"]))
        unit, timeline = _timeline(activity, lambda unit: run(
            QUERIES["activity_fine" if unit == "minute" else "activity_finest"], scope))
        return ReportData(
            lake.uri, tables, table, since_ms, until_ms, now_ms,
            activity=activity,
            timeline=timeline,
            timeline_unit=unit,
            hot_items=hot[:top],
            hot_attributes=run(QUERIES["hot_attributes"], {**scope, "top": str(top)}),
            sizes=run(QUERIES["sizes"], scope),
            lag=run(QUERIES["lag"], scope),
            lag_histogram=run(QUERIES["lag_histogram"], scope),
            latest=run(QUERIES["latest"], {**scope, "top": str(latest)}),
            principals=principals_table(con, tables, window, cloudtrail),
            principals_source="CloudTrail" if cloudtrail is not None else "stream",
        )
    finally:
        con.close()


def _span_ms(rows: Rows, column: str) -> int:
    times = [parse_timestamp(str(r[column])) for r in rows]
    return max(times) - min(times) if times else 0


def _timeline(activity: Rows, finer: Callable[[str], Rows]) -> tuple[str, Rows]:
    """The time unit for the changes' span and the rows per bin (``bucket`` added).

    Finer rows come from ``finer("minute")`` / ``finer("second")`` only when the span
    calls for them; days are hour rows summed (each change falls in one hour)."""
    span = _span_ms(activity, "hour")
    if span >= _BIN_SPANS[2][1]:
        days: dict[tuple[str, str, str], dict[str, Any]] = {}
        for r in activity:
            key = (str(r["hour"])[:10] + "T00:00:00Z", str(r["table_name"]), str(r["action"]))
            day = days.setdefault(key, {"bucket": key[0], "table_name": key[1],
                                        "action": key[2], "changes": 0, "ttl_deletes": 0})
            day["changes"] += int(r["changes"])
            day["ttl_deletes"] += int(r["ttl_deletes"])
        return "day", [days[k] for k in sorted(days)]
    if span >= _BIN_SPANS[1][1]:
        return "hour", [{**r, "bucket": r["hour"]} for r in activity]
    minutes = finer("minute")
    if _span_ms(minutes, "minute") >= _BIN_SPANS[0][1]:
        return "minute", [{**r, "bucket": r["minute"]} for r in minutes]
    return "second", [{**r, "bucket": r["second"]} for r in finer("second")]


# --------------------------------------------------------------------------- figures
