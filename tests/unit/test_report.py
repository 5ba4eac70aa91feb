"""``ddbtrail report``: figures from the saved queries, filters, escaping, errors.

The rendered page is checked in a real browser in tests/browser/; here the data behind it
and the command's behaviour.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from ddbtrail.cli import _report_html as page_of
from ddbtrail.cli import main
from ddbtrail.core.timefmt import parse_timestamp
from ddbtrail.query import report
from tests.browser.report_lake import HOSTILE_KEYS, write_lake


@pytest.fixture
def lake_dir(tmp_path: Path) -> str:
    path = str(tmp_path / "lake")
    write_lake(path)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def test_collect_counts_each_change_once(lake_dir: str) -> None:
    from ddbtrail.lake.files import Lake

    data = report.collect(Lake.open(lake_dir))
    # 9 inserts, 7 updates, 2 deletes; the redelivered TTL delete counts once.
    assert data.total_changes == 18
    assert data.tables == ("orders", "users")
    assert [(r["item_key"], r["changes"]) for r in data.hot_items[:2]] == [
        ('{"pk":"o#1"}', 6), ('{"pk":"o#2"}', 3)]
    assert [(r["attribute"], r["changes"]) for r in data.hot_attributes] == [
        ("status", 5), ("note", 2), ("total", 2)]
    # The TTL delete took 30 s; its redelivery 11 hours later must not count as lag.
    assert max(r["max_lag_ms"] for r in data.lag) == 30_000
    assert data.latest[0]["ttl_delete"] is True


def test_table_and_since_filters(lake_dir: str) -> None:
    from ddbtrail.lake.files import Lake

    lake = Lake.open(lake_dir)
    users = report.collect(lake, table="users")
    assert users.tables == ("users",)
    assert users.total_changes == 2
    assert {r["table_name"] for r in users.hot_items + users.latest} == {"users"}
    later = report.collect(lake, since_ms=parse_timestamp("2024-05-01T11:00:00Z"))
    assert {r["action"] for r in later.activity} == {"MODIFY", "REMOVE"}
    assert later.total_changes == 9


def test_page_is_self_contained_and_escaped(lake_dir: str, tmp_path: Path) -> None:
    path = page_of.write_report(lake_dir, tmp_path / "r.html")
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", page), "every script must be inline"
    assert not re.search(r"<link[^>]+href=", page)
    assert page.count("Plotly.newPlot(") == len(page_of.CHART_IDS)
    for key in HOSTILE_KEYS:
        assert key not in page
        # The latest-changes table shows each key as text.
        item_key = json.dumps({"pk": key}, separators=(",", ":"))
        assert f'<td class="key">{html.escape(item_key)}</td>' in page


def test_cli_writes_the_report(lake_dir: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "report.html"
    code, stdout, _ = _run(["report", "--lake", lake_dir, "--out", str(out),
                            "--table", "orders", "--since", "2024-05-01T00:00:00Z"], capsys)
    assert code == 0
    assert f"wrote {out}" in stdout and "16 changes, 1 table" in stdout
    assert out.is_file()
    assert not list(out.parent.glob(".*.tmp"))


def test_no_rows_in_window_is_a_page_not_an_error(
        lake_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    code, _, err = _run(["report", "--lake", lake_dir, "--out", str(out),
                         "--since", "2030-01-01T00:00:00Z"], capsys)
    assert code == 0
    assert "no changes" in err
    assert 'id="no-changes"' in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--since", "yesterday"], 2, "error: --since 'yesterday': expected an ISO-8601 instant"),
    (["--lake", "{missing}"], 1, "error: lake "),
    (["--out", "{file}/report.html"], 1, "error: cannot write the report to "),
])
def test_bad_input_is_one_line(args: list[str], code: int, message: str, lake_dir: str,
                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    argv = ["report", "--lake", lake_dir, "--out", str(tmp_path / "r.html")]
    argv += [a.format(missing=tmp_path / "nope", file=a_file) for a in args]
    got, _, err = _run(argv, capsys)
    assert got == code
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def _span_lake(path: Path, gaps_ms: list[int]) -> str:
    from tests.browser.report_lake import T0_MS, Workload

    w = Workload()
    at = T0_MS
    for i, gap in enumerate([0, *gaps_ms]):
        at += gap
        w.change("orders", "INSERT", f"o#{i}", at, old=None,
                 new={"pk": {"S": f"o#{i}"}, "note": {"S": "x" * (100 * 2 ** i)}})
    write_lake(str(path), w, duplicate_last=False)
    return str(path)


@pytest.mark.parametrize(("gaps_ms", "unit", "bins"), [
    ([1000, 1000, 2000], "second", 4),                  # a 4-second demo
    ([40 * 60_000, 40 * 60_000], "minute", 3),          # 80 minutes
    ([5 * 3_600_000, 7 * 3_600_000], "hour", 3),        # half a day
    ([10 * 86_400_000, 20 * 86_400_000], "day", 3),     # a month
])
def test_time_bins_follow_the_span_of_the_changes(tmp_path: Path, gaps_ms: list[int],
                                                  unit: str, bins: int) -> None:
    from ddbtrail.lake.files import Lake

    data = report.collect(Lake.open(_span_lake(tmp_path / "lake", gaps_ms)),
                          now_ms=parse_timestamp("2024-07-01T00:00:00Z"))
    assert data.timeline_unit == unit
    assert len({r["bucket"] for r in data.timeline}) == bins
    assert sum(int(r["changes"]) for r in data.timeline) == len(gaps_ms) + 1


def test_header_names_the_last_change_and_sizes_share_one_unit(tmp_path: Path) -> None:
    from ddbtrail.lake.files import Lake

    data = report.collect(Lake.open(_span_lake(tmp_path / "lake", [1000, 1000, 2000])),
                          now_ms=parse_timestamp("2024-07-01T00:00:00Z"))
    page = page_of.render_html(data, plotly_js="")
    header = page.split("<header>")[1].split("</header>")[0]
    assert "Last change 2024-05-01T10:00:04.000Z" in header
    assert "2024-07-01" not in header  # the time the report was made is no news
    edges = sorted({(int(r["size_from"]), int(r["size_to"])) for r in data.sizes})
    assert page_of.size_unit(edges)[0] == "Ki"
    fig = page_of.sizes_figure(data.sizes)
    labels = list(fig.data[0].x)
    assert all(re.fullmatch(r"[0-9.]+-[0-9.]+|≥ [0-9.]+", label) for label in labels), labels
    assert fig.layout.xaxis.title.text == "size (Ki)"
