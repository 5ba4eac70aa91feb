"""The HTML report in headless Chromium: every chart draws, no console errors, no network.

Chromium starts with --headless --no-sandbox --disable-gpu --disable-background-networking
(see conftest.py) and is driven over the DevTools protocol.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ddbtrail.cli import main
from ddbtrail.cli._report_html import CHART_IDS, write_report
from tests.browser.conftest import CDPSession, Chromium
from tests.browser.report_lake import HOSTILE_KEYS, write_lake

pytestmark = pytest.mark.browser

# Per chart: its traces, how many bars/points each trace drew, and its axis labels.
CHART_STATE = """
(() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  id: gd.id,
  svgs: gd.querySelectorAll('.main-svg').length,
  traces: gd.querySelectorAll('g.trace').length,
  drawn: Array.from(gd.querySelectorAll('g.trace')).map(
      t => t.querySelectorAll('g.point path, path.js-line').length),
  names: (gd.data || []).map(t => t.name),
  // Tick labels as read on screen: top to bottom, then left to right.
  ticks: Array.from(gd.querySelectorAll('.ytick text, .xtick text'))
      .map(t => [t.getBoundingClientRect(), t.textContent])
      .sort((a, b) => (a[0].top - b[0].top) || (a[0].left - b[0].left))
      .map(p => p[1]),
})))()
"""


def _open(chromium: Chromium, path: Path) -> Any:
    session = chromium.open(path.resolve().as_uri())
    # Plotly draws synchronously on load, but give the page a tick for late errors.
    session.evaluate("new Promise(r => setTimeout(() => r(true), 300))")
    return session


def _offline(requests: list[str], page: Path) -> list[str]:
    return [u for u in requests if u != page.resolve().as_uri()
            and not u.startswith(("data:", "blob:", "about:"))]


@pytest.fixture(scope="module")
def sample_page(chromium: Chromium, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[Path, CDPSession]]:
    """The sample lake's report, written once and open in Chromium for this module."""
    root = tmp_path_factory.mktemp("report")
    lake = write_lake(str(root / "lake"))
    page = write_report(lake, root / "out" / "report.html")
    session = _open(chromium, page)
    try:
        yield page, session
    finally:
        session.close()


def test_every_chart_draws_offline_without_console_errors(
        sample_page: tuple[Path, CDPSession]) -> None:
    page, session = sample_page
    charts = {c["id"]: c for c in session.evaluate(CHART_STATE)}
    assert list(charts) == list(CHART_IDS)
    for chart_id, chart in charts.items():
        assert chart["svgs"] >= 1, f"{chart_id} drew no SVG"
        assert chart["traces"] == len(chart["names"]) > 0, chart_id
        assert all(n > 0 for n in chart["drawn"]), f"{chart_id}: a trace drew nothing"
    # What the fixed workload must show (see report_lake.sample_workload).
    assert charts["changes-over-time"]["names"] == ["INSERT", "MODIFY", "REMOVE"]
    assert charts["deletes"]["names"] == ["user deletes (1)", "TTL deletes (1)"]
    attrs = [t for t in charts["hot-attributes"]["ticks"] if t.startswith("orders.")]
    assert attrs == ["orders.status", "orders.note", "orders.total"]
    hot = [t for t in charts["hot-items"]["ticks"] if ". " in t]
    assert hot[0] == '1. orders: {"pk":"o#1"}'
    assert '2. orders: {"pk":"o#2"}' in hot
    # A hostile key is shown as its own text in chart labels, not as markup.
    assert any("<b>bold</b>&amp;" in t for t in hot)
    assert "2-4" in charts["item-sizes"]["ticks"]  # KiB, the unit of every bin
    load = session.page_load()
    assert load.errors == []
    assert _offline(load.requests, page) == []


def test_latest_changes_table_escapes_item_keys(sample_page: tuple[Path, CDPSession]) -> None:
    _, session = sample_page
    state = session.evaluate("""({
      xss: window.__xss === undefined ? null : window.__xss,
      imgs: document.querySelectorAll('img').length,
      bolds: document.querySelectorAll('#latest-changes b').length,
      keys: Array.from(document.querySelectorAll('#latest-changes td.key'))
                 .map(td => td.textContent),
      by: Array.from(document.querySelectorAll('#latest-changes tbody tr'))
                 .map(tr => tr.lastElementChild.textContent),
    })""")
    assert state["xss"] is None
    assert state["imgs"] == 0
    assert state["bolds"] == 0
    for key in HOSTILE_KEYS:
        assert json.dumps({"pk": key}, separators=(",", ":")) in state["keys"]
    # Newest first: the TTL delete of o#4, then alice's delete of o#3.
    assert state["keys"][:2] == ['{"pk":"o#4"}', '{"pk":"o#3"}']
    assert state["by"][:2] == ["DynamoDB TTL", "AROAEXAMPLE:alice"]
    assert session.page_load().errors == []


def test_empty_window_page_says_so(chromium: Chromium, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    # A lake with no changes at all is an error (nothing written); a window without
    # changes is a page that says so.
    write_lake(str(tmp_path / "lake"))
    out = tmp_path / "empty.html"
    with pytest.raises(SystemExit) as done:
        main(["report", "--lake", str(tmp_path / "lake"), "--out", str(out),
              "--since", "2090-01-01"])
    assert done.value.code in (0, None)
    assert "no changes" in capsys.readouterr().err
    session = _open(chromium, out)
    try:
        state = session.evaluate("""({
          message: document.getElementById('no-changes')?.textContent,
          charts: document.querySelectorAll('.js-plotly-plot').length })""")
        assert "No changes found" in state["message"]
        assert state["charts"] == 0
        load = session.page_load()
        assert load.errors == []
        assert _offline(load.requests, out) == []
    finally:
        session.close()
