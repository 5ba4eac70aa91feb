"""SQL fragments: a ``{{ name }}`` line in a saved query stands for
``fragments/<name>.sql``; loading expands it, so ``Query.sql`` is what the engines run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ddbtrail.core.exceptions import QueryError
from ddbtrail.query import saved as queries

WINDOW = """-- name: window
-- kind: fragment
-- question: Rows in [from, to).
-- parameters:
--   from  timestamp  start
--   to    timestamp  end
AND ts >= ?

AND ts < ?
"""

WINDOWED = """-- name: windowed
-- kind: fragment
-- question: A table's rows in the window.
-- parameters:
--   table_name  string     a table
--   from        timestamp  start
--   to          timestamp  end
SELECT *
FROM changes
WHERE table_name = ?
  {{ window }}
"""

QUERY = """-- name: sample
-- kind: query
-- question: A query built of fragments.
-- parameters:
--   table_name  string     a table
--   from        timestamp  start
--   to          timestamp  end
--   top         integer    how many
-- output:
--   x  a column
WITH rows AS (
    {{ windowed }}
)
SELECT 1 AS x FROM rows LIMIT ?
"""


def _folder(tmp_path: Path, **fragments: str) -> Path:
    (tmp_path / queries.FRAGMENTS_DIR).mkdir()
    for name, text in fragments.items():
        (tmp_path / queries.FRAGMENTS_DIR / f"{name}.sql").write_text(text, encoding="utf-8")
    return tmp_path


def _parse(folder: Path, text: str = QUERY, name: str = "sample") -> queries.Query:
    path = folder / f"{name}.sql"
    path.write_text(text, encoding="utf-8")
    return queries.parse_query(text, path)


def test_each_fragment_line_takes_the_placeholder_indentation(tmp_path: Path) -> None:
    q = _parse(_folder(tmp_path, window=WINDOW, windowed=WINDOWED))
    body = q.sql[q.sql.index("WITH"):]
    assert body == ("WITH rows AS (\n"
                    "    SELECT *\n"
                    "    FROM changes\n"
                    "    WHERE table_name = ?\n"
                    "      AND ts >= ?\n"
                    "\n"  # a blank fragment line stays empty
                    "      AND ts < ?\n"
                    ")\n"
                    "SELECT 1 AS x FROM rows LIMIT ?")
    assert q.sql.startswith("-- name: sample")  # the query's header, not the fragments'
    assert q.fragments == ("window", "windowed")
    # The header lists every ?, the fragments' too; DuckDB binds them by name.
    assert [p.name for p in q.params] == ["table_name", "from", "to", "top"]
    duck = queries.to_duckdb(q)
    assert duck.index("$p_table_name") < duck.index("$p_from") < duck.index("$p_to") \
        < duck.index("$p_top")


def test_the_parameter_count_is_checked_on_the_expanded_sql(tmp_path: Path) -> None:
    folder = _folder(tmp_path, window=WINDOW, windowed=WINDOWED)
    text = QUERY.replace("--   to          timestamp  end\n", "")
    with pytest.raises(QueryError, match=r"sample.sql: the SQL has 4 '\?' but the header "
                                         r"lists 3 parameters"):
        _parse(folder, text)


def test_a_fragment_parameter_of_another_type_is_out_of_order(tmp_path: Path) -> None:
    folder = _folder(tmp_path, window=WINDOW, windowed=WINDOWED)
    text = QUERY.replace("--   from        timestamp  start\n--   to          timestamp  end\n"
                         "--   top         integer    how many\n",
                         "--   top         integer    how many\n"
                         "--   from        timestamp  start\n--   to          timestamp  end\n")
    with pytest.raises(QueryError, match=r"sample.sql: parameter 2 \(top, integer\) is "
                                         r"fragment windowed's from \(timestamp\)"):
        _parse(folder, text)


def test_an_unknown_fragment_names_the_file_and_the_known_ones(tmp_path: Path) -> None:
    folder = _folder(tmp_path, window=WINDOW)
    with pytest.raises(QueryError) as info:
        _parse(folder)
    assert str(info.value) == ("sample.sql: unknown fragment 'windowed' (no "
                               "fragments/windowed.sql; known: window)")


def test_a_fragment_that_includes_itself_is_refused(tmp_path: Path) -> None:
    loop = WINDOWED.replace("{{ window }}", "{{ windowed }}")
    with pytest.raises(QueryError, match=r"^sample.sql: .*fragment 'windowed' includes "
                                         r"itself: windowed -> windowed$"):
        _parse(_folder(tmp_path, windowed=loop))


def test_a_cycle_through_another_fragment_is_refused(tmp_path: Path) -> None:
    back = WINDOW.replace("AND ts < ?", "{{ windowed }}")
    with pytest.raises(QueryError, match=r"fragment 'windowed' includes itself: "
                                         r"windowed -> window -> windowed"):
        _parse(_folder(tmp_path, window=back, windowed=WINDOWED))


def test_fragments_nest_only_so_deep(tmp_path: Path) -> None:
    depth = queries.MAX_FRAGMENT_DEPTH + 1
    chain = {f"f{i}": f"-- name: f{i}\n-- kind: fragment\n-- question: Level {i}.\n"
                      + (f"{{{{ f{i + 1} }}}}\n" if i < depth else "SELECT 1\n")
             for i in range(1, depth + 1)}
    text = QUERY.replace("{{ windowed }}", "{{ f1 }}").replace("FROM rows LIMIT ?", "FROM rows")
    text = text[:text.index("--   table_name")] + text[text.index("-- output:"):]
    with pytest.raises(QueryError, match=rf"nest at most {queries.MAX_FRAGMENT_DEPTH} deep"):
        _parse(_folder(tmp_path, **chain), text)


@pytest.mark.parametrize(("broken", "message"), [
    (WINDOW.replace("-- kind: fragment", "-- kind: query"), "a fragment's header says "
                                                            "'kind: fragment'"),
    (WINDOW.replace("--   to    timestamp  end\n", ""), r"the SQL has 2 '\?' but the header "
                                                         r"lists 1 parameters"),
    (WINDOW.replace("timestamp  start", "instant  start"), "bad parameter line"),
    (WINDOW.replace("name: window", "name: other"), "must equal the file name"),
    (WINDOW.replace("AND ts < ?\n", "AND ts < ?;\n"), "no ';'"),
])
def test_a_bad_fragment_header_names_the_query_and_the_fragment(
        tmp_path: Path, broken: str, message: str) -> None:
    with pytest.raises(QueryError, match=rf"sample.sql: fragment 'windowed': "
                                         rf"fragments/windowed.sql: fragment 'window': "
                                         rf"fragments/window.sql: .*{message}"):
        _parse(_folder(tmp_path, window=broken, windowed=WINDOWED))


def test_a_placeholder_shares_its_line_with_nothing(tmp_path: Path) -> None:
    text = QUERY.replace("    {{ windowed }}", "    SELECT * FROM t WHERE {{ windowed }}")
    with pytest.raises(QueryError, match=r"sample.sql: line 12: a fragment placeholder stands "
                                         r"alone on its line"):
        _parse(_folder(tmp_path, window=WINDOW, windowed=WINDOWED), text)


def test_a_fragment_is_not_a_saved_query(tmp_path: Path) -> None:
    folder = _folder(tmp_path, window=WINDOW, windowed=WINDOWED)
    _parse(folder)
    assert [q.name for q in queries.catalogue(folder)] == ["sample"]
    assert [f.name for f in queries.fragments(folder)] == ["window", "windowed"]
    with pytest.raises(QueryError, match="unknown query 'window'; known: sample"):
        queries.load("window", folder)
    with pytest.raises(QueryError, match=r"kind 'fragment' is not one of .* \(a fragment "
                                         r"lives in fragments/\)"):
        _parse(folder, WINDOW.replace("name: window", "name: loose"), name="loose")


def test_an_edited_fragment_reloads_the_queries_using_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path, window=WINDOW, windowed=WINDOWED)
    _parse(folder)
    assert "AND ts >= ?" in queries.load("sample", folder).sql
    fragment = folder / queries.FRAGMENTS_DIR / "window.sql"
    fragment.write_text(WINDOW.replace("ts >=", "ts >  "), encoding="utf-8")
    stat = fragment.stat()
    os.utime(fragment, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert "AND ts >   ?" in queries.load("sample", folder).sql
