"""Every saved query: parses as Athena SQL, runs on DuckDB, and (for the cases kept as
data files) returns exactly the expected rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from ddbtrail.core.row import COLUMN_NAMES
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved as queries
from ddbtrail.query.duck import connect

CASES = Path(__file__).parent / "cases"
ALL = queries.catalogue()

# A value for each parameter name any saved query uses, fitting the "orders" case lake.
SAMPLE_VALUES = {
    "table_name": "Orders",
    "item_key": '{"id":1}',
    "attribute": "status",
    "at": "2024-05-02T12:00:00Z",
    "from": "2024-05-01T00:00:00Z",
    "to": "2024-05-04T00:00:00Z",
    "made_at": "2024-05-05T00:00:00Z",
    "visible_before": "2024-05-04T23:45:00Z",
    "candidate": "2024-05-02T23:59:59.999Z",
    "candidate_made_at": "2024-05-03T01:30:00.000Z",
}


def _checks() -> list[Any]:
    out = []
    for expected in sorted(CASES.glob("*/expected.json")):
        for check in json.loads(expected.read_text(encoding="utf-8")):
            out.append(pytest.param(expected.parent.name, check,
                                    id=f"{expected.parent.name}:{check['query']}:"
                                       f"{check['check'][:40]}"))
    return out


@pytest.mark.parametrize("query", ALL, ids=lambda q: q.name)
def test_parses_as_athena_sql_with_header(query: queries.Query) -> None:
    tree = sqlglot.parse_one(query.sql, read="athena")
    assert isinstance(tree, exp.Query), f"{query.name} is not a SELECT"
    assert query.question
    assert query.outputs, f"{query.name}: the header lists no output columns"
    assert len(list(tree.find_all(exp.Placeholder))) == len(query.params)


@pytest.mark.parametrize("query", ALL, ids=lambda q: q.name)
def test_runs_on_duckdb_with_the_columns_its_header_names(
        query: queries.Query, case_lake: Callable[[str], Lake]) -> None:
    lake = case_lake("orders")
    values = {p.name: SAMPLE_VALUES.get(p.name, p.default or "x") for p in query.parameters
              if p.name in SAMPLE_VALUES or p.default is None}
    table = queries.run_local(query, values, lake)
    declared = [name for name, _ in query.outputs]
    if declared[:1] == ["(every"]:  # "(every column of changes)", then any it adds
        assert table.column_names == [*COLUMN_NAMES, *declared[1:]]
    else:
        assert table.column_names == declared


def test_every_required_query_is_saved() -> None:
    names = {q.name for q in ALL}
    assert names >= {"item_history", "item_as_of", "table_as_of", "changes_in_window",
                     "attribute_history", "deletions", "activity_by_hour", "hot_items",
                     "scd2", "duplicate_events", "view_changes_dedup", "view_current_state"}


@pytest.mark.parametrize(("case", "check"), _checks())
def test_expected_rows(case: str, check: dict[str, Any],
                       case_lake: Callable[[str], Lake]) -> None:
    lake = case_lake(case)
    query = queries.load(check["query"])
    table = queries.run_local(query, check["params"], lake)
    got = [[row[c] for c in check["columns"]] for row in table.to_pylist()]
    want = check["rows"]
    if check.get("unordered"):
        got, want = sorted(got, key=json.dumps), sorted(want, key=json.dumps)
    assert got == want, check["check"]


def test_same_rows_on_a_whole_lake_connection(case_lake: Callable[[str], Lake]) -> None:
    """run_local lists only the table a lookup names; a connection over the whole lake
    must give the same answer (the query filters by itself)."""
    lake = case_lake("orders")
    query = queries.load("table_as_of")
    values = {"table_name": "Orders", "at": "2024-05-02T13:00:00Z"}
    con = connect(lake)
    try:
        whole = queries.run_duckdb(query, values, con).to_pylist()
    finally:
        con.close()
    assert whole == queries.run_local(query, values, lake).to_pylist()
    assert [r["item_key"] for r in whole] == ['{"id":1}', '{"id":2}']


def test_one_connection_runs_queries_on_saved_views_again(
        case_lake: Callable[[str], Lake]) -> None:
    """A caller keeping a connection runs a query twice, and another query after it,
    where the saved views it reads are already installed."""
    lake = case_lake("orders")
    history, values = queries.load("item_history"), {"table_name": "Orders",
                                                      "item_key": '{"id":1}'}
    con = connect(lake)
    try:
        first = queries.run_duckdb(history, values, con).to_pylist()
        assert first
        assert queries.run_duckdb(history, values, con).to_pylist() == first
        at = {"table_name": "Orders", "at": "2024-05-02T13:00:00Z"}
        state = queries.run_duckdb(queries.load("table_as_of"), at, con)
    finally:
        con.close()
    assert state.to_pylist() == queries.run_local(queries.load("table_as_of"), at,
                                                  lake).to_pylist()


def test_the_latest_row_rule_is_written_once() -> None:
    # The order of an item's changes lives in view_changes_ordered; the as-of queries, the
    # history and the current-state view rank by its change_order instead of restating it.
    assert "length(sequence_number)" in queries.load("view_changes_ordered").sql
    for name in ("item_as_of", "table_as_of", "view_current_state", "item_history", "scd2"):
        sql = queries.load(name).sql
        assert "FROM changes_ordered" in sql and "length(sequence_number)" not in sql, name


FRAGMENTS = queries.fragments()


def test_no_loaded_query_holds_a_fragment_placeholder() -> None:
    # Query.sql is what DuckDB, Athena, the named queries and the state machine get.
    for query in ALL:
        assert "{{" not in query.sql, query.name


def test_every_fragment_is_used_by_a_query() -> None:
    assert FRAGMENTS, "athena_queries/fragments/ has no fragments"
    used = {name for q in ALL for name in q.fragments}
    assert {f.name for f in FRAGMENTS} == used


@pytest.mark.parametrize("query", [q for q in ALL if q.fragments], ids=lambda q: q.name)
def test_an_unexpanded_copy_fails_to_parse(query: queries.Query) -> None:
    # Pasted into an engine as it is on disk, a query that uses a fragment is refused, not
    # run without the fragment's predicates (DuckDB's parser here; Trino's has no braces).
    with pytest.raises(duckdb.ParserException, match=r'near "\{"'):
        duckdb.connect().extract_statements(query.path.read_text(encoding="utf-8"))


def test_the_window_rule_is_written_once() -> None:
    # The [from, to) window and its dt bounds live in fragments/change_window.sql.
    bound = '"timestamp" < CAST(to_unixtime(from_iso8601_timestamp(?))'
    assert bound in {f.name: f for f in FRAGMENTS}["change_window"].sql
    for query in ALL:
        raw = query.path.read_text(encoding="utf-8")
        assert bound not in raw, query.name
        if bound in query.sql:
            assert "change_window" in query.fragments, query.name
