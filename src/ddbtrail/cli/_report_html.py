"""The HTML dashboard: one self-contained file drawn from ``query.report.collect``'s data.

Plotly draws the charts; its JavaScript is embedded once, so the file opens with no
network. ``render_html`` is pure; ``write_report`` collects and writes.
"""

from __future__ import annotations

import contextlib
import html
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ddbtrail.core.exceptions import ConfigError, LakeError
from ddbtrail.core.timefmt import iso_ms
from ddbtrail.lake.files import Lake
from ddbtrail.query.report import ACTIONS, ReportData, Rows, collect

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from ddbtrail.lake.cloudtrail import TrailLogs

ACTION_COLORS: Final = {"INSERT": "#2a9d8f", "MODIFY": "#457b9d", "REMOVE": "#e63946",
                        "SNAPSHOT": "#8d99ae"}
_LABEL_CHARS: Final = 48
# Chart ids, in page order; the browser test checks each one drew.
CHART_IDS: Final = ("changes-over-time", "hot-items", "hot-attributes", "deletes",
                    "item-sizes", "ingestion-lag")


def _plotly() -> Any:
    """``plotly.graph_objects``; ConfigError if plotly is missing."""
    try:
        import plotly.graph_objects as go
    except ImportError as exc:
        raise ConfigError("the report needs plotly: pip install 'ddbtrail[local]'") from exc
    return go


def _plotly_js() -> str:
    """plotly.js itself, to embed in the page (the report must open with no network)."""
    _plotly()
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _label(text: object) -> str:
    """Text for a Plotly label: plotly.js reads a subset of HTML in labels, so escape it."""
    # plotly.js decodes &lt; &gt; &amp; but shows &quot; as is, so leave quotes alone.
    return html.escape(str(text), quote=False)


def _time_axis(when: str) -> str:
    """``2024-05-01T13:07:05Z`` -> ``2024-05-01 13:07:05`` (plotly.js dates take no zone)."""
    return when[:10] + " " + when[11:19]


def size_unit(edges: Sequence[tuple[int, int]]) -> tuple[str, int]:
    """One unit for every size bin: the largest finite edge's (characters, Ki or Mi)."""
    top = max([a for a, _ in edges] + [b for _, b in edges if b < 1 << 62] + [0])
    if top >= 1 << 20:
        return "Mi", 1 << 20
    if top >= 1 << 10:
        return "Ki", 1 << 10
    return "characters", 1


def _size_label(size_from: int, size_to: int, div: int) -> str:
    if size_to >= 1 << 62:
        return f"≥ {size_from / div:g}"
    return f"{size_from / div:g}-{size_to / div:g}"


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, **extra: Any) -> None:
    layout: dict[str, Any] = {
        "title": {"text": title}, "template": "plotly_white", "height": 380,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 80},
        "legend": {"orientation": "h", "y": -0.3, "traceorder": "normal"}, "xaxis_title": x_title,
        "yaxis_title": y_title,
    }
    fig.update_layout(**{**layout, **extra})


def activity_figure(timeline: Rows, unit: str = "hour") -> go.Figure:
    """Changes per ``unit`` (UTC), one stacked bar trace per action, all tables summed."""
    go = _plotly()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in timeline:
        counts[str(r["action"])][_time_axis(str(r["bucket"]))] += int(r["changes"])
    fig = go.Figure()
    for action in [a for a in ACTIONS if a in counts] + sorted(set(counts) - set(ACTIONS)):
        hours = sorted(counts[action])
        fig.add_trace(go.Bar(name=_label(action), x=hours, y=[counts[action][h] for h in hours],
                             marker_color=ACTION_COLORS.get(action)))
    _layout(fig, f"Changes per {unit}, by action", f"{unit} (UTC)", "changes",
            barmode="stack")
    return fig


def _item_label(rank: int, row: Mapping[str, Any], many_tables: bool) -> str:
    """``rank. [table: ]key``, cut to fit the axis; the rank keeps cut labels distinct."""
    text = f"{row['table_name']}: {row['item_key']}" if many_tables else str(row["item_key"])
    if len(text) > _LABEL_CHARS:
        text = text[:_LABEL_CHARS - 1] + "…"
    return _label(f"{rank}. {text}")


def hot_items_figure(hot: Rows, many_tables: bool) -> go.Figure:
    """The most-changed items, horizontal bars split into inserts, modifies and removes."""
    go = _plotly()
    labels = [_item_label(i, r, many_tables) for i, r in enumerate(hot, 1)]
    full = [_label(f"{r['table_name']}: {r['item_key']}") for r in hot]
    fig = go.Figure()
    for column, action in (("inserts", "INSERT"), ("modifies", "MODIFY"), ("removes", "REMOVE")):
        fig.add_trace(go.Bar(name=action, orientation="h", y=labels,
                             x=[int(r[column]) for r in hot], customdata=full,
                             hovertemplate="%{customdata}: %{x} " + action.lower()
                             + "<extra></extra>",
                             marker_color=ACTION_COLORS[action]))
    _layout(fig, "Most-changed items", "changes", "", barmode="stack",
            height=max(380, 60 + 22 * len(hot)), margin={"l": 220, "r": 20, "t": 50, "b": 80})
    # The first row (most changes) on top.
    fig.update_yaxes(automargin=True, type="category", autorange="reversed")
    return fig


def hot_attributes_figure(attrs: Rows, many_tables: bool) -> go.Figure:
    """Attributes that updates (MODIFY) change most often."""
    go = _plotly()
    rows = attrs
    labels = [_label(f"{r['table_name']}.{r['attribute']}" if many_tables else r["attribute"])
              for r in rows]
    fig = go.Figure(go.Bar(
        name="updates", orientation="h", y=labels, x=[int(r["changes"]) for r in rows],
        customdata=[int(r["items"]) for r in rows], marker_color=ACTION_COLORS["MODIFY"],
        hovertemplate="%{y}: %{x} updates to %{customdata} items<extra></extra>"))
    _layout(fig, "Most-changed attributes (updates)", "updates that changed it", "",
            height=max(380, 60 + 22 * len(rows)), margin={"l": 160, "r": 20, "t": 50, "b": 80},
            showlegend=False)
    fig.update_yaxes(automargin=True, type="category", autorange="reversed")
    return fig


def deletes_figure(timeline: Rows, unit: str = "hour") -> go.Figure | None:
    """TTL deletes against user deletes per ``unit``; None when nothing was deleted."""
    go = _plotly()
    ttl: dict[str, int] = defaultdict(int)
    user: dict[str, int] = defaultdict(int)
    for r in timeline:
        if r["action"] != "REMOVE":
            continue
        hour = _time_axis(str(r["bucket"]))
        ttl[hour] += int(r["ttl_deletes"])
        user[hour] += int(r["changes"]) - int(r["ttl_deletes"])
    if not ttl:
        return None
    hours = sorted(ttl)
    fig = go.Figure([
        go.Bar(name=f"user deletes ({sum(user.values())})", x=hours,
               y=[user[h] for h in hours], marker_color=ACTION_COLORS["REMOVE"]),
        go.Bar(name=f"TTL deletes ({sum(ttl.values())})", x=hours,
               y=[ttl[h] for h in hours], marker_color="#f4a261"),
    ])
    _layout(fig, "Deletes: DynamoDB TTL against users", f"{unit} (UTC)", "deletes",
            barmode="stack")
    return fig


def sizes_figure(sizes: Rows) -> go.Figure:
    """Item size histogram (plain-JSON image length, doubling buckets), stacked by action."""
    go = _plotly()
    edges = sorted({(int(r["size_from"]), int(r["size_to"])) for r in sizes})
    # Show the empty buckets between the smallest and largest too, so gaps show as gaps.
    bucket, last = [edges[0]], edges[-1]
    while bucket[-1] != last and bucket[-1][1] < last[1]:
        start = bucket[-1][1]
        bucket.append((start, start * 2) if start * 2 <= last[0] else last)
    unit, div = size_unit(bucket)
    labels = [_size_label(a, b, div) for a, b in bucket]
    counts: dict[str, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    for r in sizes:
        counts[str(r["action"])][(int(r["size_from"]), int(r["size_to"]))] += int(r["changes"])
    fig = go.Figure()
    for action in [a for a in ACTIONS if a in counts]:
        fig.add_trace(go.Bar(name=action, x=labels, y=[counts[action].get(b, 0) for b in bucket],
                             marker_color=ACTION_COLORS[action]))
    _layout(fig, "Item sizes (plain-JSON image, characters)", f"size ({unit})", "changes",
            barmode="stack")
    fig.update_xaxes(type="category")
    return fig


def _duration(ms: int) -> str:
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:g} h"
    if ms >= 60_000:
        return f"{ms / 60_000:g} min"
    return f"{ms / 1000:g} s"


def lag_figure(histogram: Rows) -> go.Figure:
    """Ingestion lag distribution (event time to ingested_at), fixed buckets."""
    go = _plotly()
    labels = [f"≥ {_duration(int(r['lag_from_ms']))}" if int(r["lag_to_ms"]) >= 1 << 62
              else f"{_duration(int(r['lag_from_ms']))}-{_duration(int(r['lag_to_ms']))}"
              for r in histogram]
    fig = go.Figure(go.Bar(name="changes", x=labels, y=[int(r["changes"]) for r in histogram],
                           marker_color="#457b9d"))
    _layout(fig, "Ingestion lag: event time to ingested_at", "lag", "changes",
            showlegend=False)
    fig.update_xaxes(type="category")
    return fig


def _lag_note(lag: Rows) -> str:
    """The worst hour, from ingestion_lag (per hour)."""
    worst = max(lag, key=lambda r: int(r["max_lag_ms"]))
    total = sum(int(r["changes"]) for r in lag)
    mean = sum(int(r["avg_lag_ms"]) * int(r["changes"]) for r in lag) / total
    return (f"Mean lag {mean / 1000:.1f} s; largest {int(worst['max_lag_ms']) / 1000:g} s "
            f"({worst['table_name']}, hour of {worst['hour']}). DynamoDB Streams round event "
            "times down to the second, so lags include up to 1 s of rounding.")


# --------------------------------------------------------------------------- page

_CSS: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       background: #f6f7f9; color: #1d3557; }
header { background: #1d3557; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; font-size: 13px; opacity: .85; }
main { padding: 16px 24px; display: grid; gap: 16px;
       grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); }
section { background: #fff; border-radius: 6px; padding: 8px 12px;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); min-width: 0; }
section.wide { grid-column: 1 / -1; }
.totals { display: flex; gap: 24px; flex-wrap: wrap; }
.totals div { font-size: 13px; } .totals b { display: block; font-size: 22px; }
.note, .empty { font-size: 13px; color: #555; }
.empty { padding: 40px 0; text-align: center; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e7eb;
         vertical-align: top; }
td.time { white-space: nowrap; }
td.key, td.attrs { font-family: ui-monospace, monospace; word-break: break-all; }
"""


def _esc(value: object) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def _figure_html(fig: go.Figure, div_id: str) -> str:
    # plotly's JSON escapes '<', '>' and '/', so no data can close the script element.
    return str(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           config={"displaylogo": False, "responsive": True}))


def _section(div_id: str, title: str, fig: go.Figure | None, empty: str,
             note: str = "") -> str:
    body = (_figure_html(fig, div_id) if fig is not None
            else f'<h2>{_esc(title)}</h2><p class="empty" id="{div_id}-empty">{_esc(empty)}</p>')
    note_html = f'<p class="note">{_esc(note)}</p>' if note else ""
    return f'<section class="chart" data-chart="{div_id}">{body}{note_html}</section>'


def _latest_table(latest: Rows, many_tables: bool) -> str:
    head = ["event time (UTC)", *(["table"] if many_tables else []), "action", "item key",
            "changed attributes", "by"]
    rows = []
    for r in latest:
        attrs = r.get("changed_attributes")
        if attrs and r["action"] in ("INSERT", "REMOVE", "SNAPSHOT"):
            # An insert or delete "changes" every attribute; the list would be noise.
            attrs = [f"whole item ({len(attrs)} attributes)"]
        by = "DynamoDB TTL" if r.get("ttl_delete") else r.get("user_identity")
        cells = [
            f'<td class="time">{_esc(r["event_time"])}</td>',
            *([f"<td>{_esc(r['table_name'])}</td>"] if many_tables else []),
            f"<td>{_esc(r['action'])}</td>",
            f'<td class="key">{_esc(r["item_key"])}</td>',
            f'<td class="attrs">{_esc(", ".join(attrs) if attrs else "")}</td>',
            f"<td>{_esc(by)}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ('<table id="latest-changes"><thead><tr>'
            + "".join(f"<th>{_esc(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "\n".join(rows) + "</tbody></table>")


def _principals_table(data: ReportData) -> str:
    if data.principals_source == "CloudTrail":
        note = ("Principals from CloudTrail data events, matched by table, item key and "
                "second; a change is counted under a principal only when the match is "
                "certain (docs/cloudtrail.md).")
    else:
        note = ("DynamoDB Streams names no principal except for TTL deletes: give "
                "CloudTrail logs to attribute the rest from CloudTrail data events.")
    rows = "".join(f"<tr><td>{_esc(r['principal'])}</td><td>{int(r['changes']):,}</td></tr>"
                   for r in data.principals)
    return ('<table id="changes-by-principal"><thead><tr><th>principal</th><th>changes</th>'
            f'</tr></thead><tbody>{rows}</tbody></table><p class="note">{_esc(note)}</p>')


def last_change(data: ReportData) -> str | None:
    """When the newest change in the report happened (ISO-8601 UTC), if any."""
    return str(data.latest[0]["event_time"]) if data.latest else None


def _window_text(data: ReportData) -> str:
    since = iso_ms(data.since_ms) if data.since_ms is not None else "the first change"
    return f"{since} to {last_change(data) or iso_ms(data.until_ms)}"


def _totals(data: ReportData) -> str:
    by_action: dict[str, int] = defaultdict(int)
    for r in data.activity:
        by_action[str(r["action"])] += int(r["changes"])
    ttl = sum(int(r["ttl_deletes"]) for r in data.activity if r["action"] == "REMOVE")
    items = [("changes", data.total_changes)]
    items += [(a.lower(), by_action[a]) for a in ACTIONS if a in by_action]
    items.append(("TTL deletes", ttl))
    return '<div class="totals">' + "".join(
        f"<div><b>{n:,}</b>{_esc(label)}</div>" for label, n in items) + "</div>"


def render_html(data: ReportData, *, plotly_js: str | None = None) -> str:
    """The whole report as one HTML document, Plotly's script embedded (no network).

    Every value from the lake is HTML-escaped. With no changes in the window, the page
    says so instead of drawing charts. ``plotly_js`` overrides the embedded script (tests).
    """
    if data.table or len(data.tables) == 1:
        scope = f"table {data.table or data.tables[0]}"
    else:
        scope = "tables " + ", ".join(data.tables) if data.tables else "every table"
    header = (
        "<header><h1>ddbtrail change report</h1>"
        f"<p>Lake {_esc(data.lake_uri)} · {_esc(scope)} · {_esc(_window_text(data))}</p>"
        f"<p>Last change {_esc(last_change(data) or 'none')}; from the saved queries in "
        "athena_queries/ (the same SQL Athena runs).</p></header>")
    if data.total_changes == 0:
        body = ('<main><section class="wide"><p class="empty" id="no-changes">'
                f"No changes found in lake {_esc(data.lake_uri)} for {_esc(scope)} from "
                f"{_esc(_window_text(data))}. Capture some with <code>ddbtrail capture</code>, "
                "or start the window earlier.</p></section></main>")
        script = ""
    else:
        many = len(data.tables) > 1
        sections = [
            f'<section class="wide"><h2>Summary</h2>{_totals(data)}</section>',
            _section("changes-over-time", "Changes over time",
                     activity_figure(data.timeline, data.timeline_unit),
                     "No changes."),
            _section("hot-items", "Most-changed items",
                     hot_items_figure(data.hot_items, many) if data.hot_items else None,
                     "No changes."),
            _section("hot-attributes", "Most-changed attributes",
                     hot_attributes_figure(data.hot_attributes, many)
                     if data.hot_attributes else None,
                     "No updates (MODIFY with both images) in this window.",
                     "Counts updates only: inserts and deletes touch every attribute."),
            _section("deletes", "Deletes: TTL against users",
                     deletes_figure(data.timeline, data.timeline_unit),
                     "No deletes in this window."),
            _section("item-sizes", "Item sizes",
                     sizes_figure(data.sizes) if data.sizes else None,
                     "No images in this window (KEYS_ONLY stream?).",
                     "Length of the new image (old image for a REMOVE) as plain JSON, a "
                     "close proxy for DynamoDB's item size (limit 400 KB)."),
            _section("ingestion-lag", "Ingestion lag",
                     lag_figure(data.lag_histogram) if data.lag_histogram else None,
                     "No changes.", _lag_note(data.lag) if data.lag else ""),
            '<section class="wide"><h2>Changes by principal</h2>'
            + _principals_table(data) + "</section>",
            '<section class="wide"><h2>Latest changes</h2>'
            + _latest_table(data.latest, many) + "</section>",
        ]
        body = "<main>" + "\n".join(sections) + "</main>"
        if plotly_js is None:
            plotly_js = _plotly_js()
        script = f'<script type="text/javascript">{plotly_js}</script>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ddbtrail report: {_esc(scope)}</title><style>{_CSS}</style>{script}</head>"
        f"<body>{header}{body}</body></html>\n")


def save(page: str, out_path: str | Path) -> Path:
    """Write ``page`` to ``out_path`` whole or not at all (temp file + rename).

    Raises LakeError naming the path when it cannot be written.
    """
    out = Path(out_path).expanduser()
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise LakeError(f"cannot write the report to {out}: {exc.strerror or exc}") from exc
    return out


def write_report(lake: Lake | str, out_path: str | Path, table: str | None = None,
                 since_ms: int | None = None, cloudtrail: TrailLogs | None = None) -> Path:
    """Collect and render the report for ``table`` (None: every table) since ``since_ms``.

    ``lake`` is a Lake or a lake URI. Returns the path written. An empty lake or window
    gives a page that says so. Raises LakeError (missing or unreadable lake, unwritable
    output), QueryError, ConfigError (plotly missing).
    """
    if isinstance(lake, str):
        lake = Lake.open(lake)
    return save(render_html(collect(lake, table=table, since_ms=since_ms,
                                    cloudtrail=cloudtrail)), out_path)
