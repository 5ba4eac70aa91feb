"""Saved-query headers, parameter binding and the Athena call, without AWS."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ddbtrail.core import timefmt
from ddbtrail.core.exceptions import QueryError
from ddbtrail.query import saved as queries

HEADER = """-- name: sample
-- kind: query
-- question: A test query.
-- parameters:
--   table_name  string     a table
--   at          timestamp  an instant
--   at          timestamp  the instant again
--   top         integer    how many [default: 5]
-- output:
--   x  a column
SELECT ? AS t, ? AS a, '?' AS literal FROM changes WHERE b = ? LIMIT ? -- ? in a comment
"""


def _write(tmp_path: Path, text: str, name: str = "sample") -> Path:
    path = tmp_path / f"{name}.sql"
    path.write_text(text.replace("name: sample", f"name: {name}"), encoding="utf-8")
    return path


def test_header_parses_parameters_in_order(tmp_path: Path) -> None:
    q = queries.parse_query(HEADER, _write(tmp_path, HEADER))
    assert [p.name for p in q.params] == ["table_name", "at", "at", "top"]
    assert [p.name for p in q.parameters] == ["table_name", "at", "top"]
    assert q.params[3].default == "5"
    assert q.outputs == (("x", "a column"),)


def test_header_must_count_every_placeholder(tmp_path: Path) -> None:
    text = HEADER.replace("--   top         integer    how many [default: 5]\n", "")
    with pytest.raises(QueryError, match="has 4 '\\?' but the header lists 3"):
        queries.parse_query(text, _write(tmp_path, text))


def test_duckdb_placeholders_follow_text_order_even_with_limit(tmp_path: Path) -> None:
    q = queries.parse_query(HEADER, _write(tmp_path, HEADER))
    sql = queries.to_duckdb(q)
    assert sql.index("$p_table_name") < sql.index("$p_at") < sql.index("b = $p_at") \
        < sql.index("LIMIT $p_top")
    assert "'?'" in sql


def test_bind_validates_and_normalises(tmp_path: Path) -> None:
    q = queries.parse_query(HEADER, _write(tmp_path, HEADER))
    bound = queries.bind(q, {"table_name": "T", "at": "2024-05-01T14:00:00.25+02:00"})
    assert bound == {"table_name": "T", "at": "2024-05-01T12:00:00.250Z", "top": 5}
    assert queries.positional(q, bound) == ["T", "2024-05-01T12:00:00.250Z",
                                            "2024-05-01T12:00:00.250Z", 5]
    with pytest.raises(QueryError, match="unknown parameter 'nope'"):
        queries.bind(q, {"table_name": "T", "at": "2024-05-01", "nope": "1"})
    with pytest.raises(QueryError, match="missing parameter 'at'"):
        queries.bind(q, {"table_name": "T"})
    with pytest.raises(QueryError, match="parameter at 'soon': expected an ISO-8601 instant"):
        queries.bind(q, {"table_name": "T", "at": "soon"})
    with pytest.raises(QueryError, match="parameter top: 'many' is not an integer"):
        queries.bind(q, {"table_name": "T", "at": "2024-05-01", "top": "many"})


def test_parse_timestamp_is_exact_to_the_millisecond() -> None:
    assert timefmt.parse_timestamp("1970-01-01T00:00:00.001Z") == 1
    assert timefmt.parse_timestamp("2024-05-01T12:00:00.999999Z") % 1000 == 999
    assert timefmt.parse_timestamp("2024-05-01T12:00:00") == timefmt.parse_timestamp(
        "2024-05-01T14:00:00+02:00")


def test_athena_literals_quote_strings() -> None:
    assert queries.athena_literal("O'Brien") == "'O''Brien'"
    assert queries.athena_literal('{"Id":101}') == "'{\"Id\":101}'"
    assert queries.athena_literal(20) == "20"


def test_unknown_query_names_the_known_ones() -> None:
    with pytest.raises(QueryError, match=r"unknown query 'nope'; known: .*item_history"):
        queries.load("nope")


def test_athena_gets_the_saved_sql_and_execution_parameters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def read_sql_query(sql: str, **kwargs: Any) -> pd.DataFrame:
        calls.append({"sql": sql, **kwargs})
        return pd.DataFrame({"item": ['{"Id":1}']})

    fake = types.SimpleNamespace(athena=types.SimpleNamespace(read_sql_query=read_sql_query),
                                 config=types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "awswrangler", fake)
    table = queries.run("item_as_of", {"table_name": "Orders", "item_key": '{"Id":1}',
                                       "at": "2024-05-01T12:00:00Z"},
                        engine="athena", workgroup="wg", database="db")
    assert table.to_pylist() == [{"item": '{"Id":1}'}]
    (call,) = calls
    assert call["sql"] == queries.load("item_as_of").sql  # never string-formatted
    assert call["paramstyle"] == "qmark"
    # No snapshot given: the defaults read the whole history (the table's candidates:
    # table, snapshot x2, made_at; table, snapshot, at, snapshot, at; then the key).
    none, at = "'1970-01-01T00:00:00.000Z'", "'2024-05-01T12:00:00.000Z'"
    assert call["params"] == ["'Orders'", none, none, "'none'",
                              "'Orders'", none, at, none, at, "'{\"Id\":1}'"]
    assert (call["workgroup"], call["database"]) == ("wg", "db")
