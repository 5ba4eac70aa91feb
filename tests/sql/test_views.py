"""Typed views on generated lakes: Athena SQL that runs on DuckDB with exact typed values."""

from __future__ import annotations

import base64
import gzip
import io
import json
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from ddbtrail.catalog.schema_infer import SchemaBuilder, infer_schema
from ddbtrail.catalog.views import (
    apply_duckdb,
    apply_duckdb_catalog,
    json_path,
    render_views,
    rewrite_exact_decimals,
    to_duckdb,
    write_views,
)
from ddbtrail.core.row import arrow_schema, partition_path
from ddbtrail.lake.files import Lake
from ddbtrail.query import duck
from ddbtrail.query import saved as queries
from tests.cli import run_cli
from tests.unit.test_schema_infer import DAY_S, T0, change, drift_rows

# --------------------------------------------------------------------------- the lake

BIG = "12345678901234567890123456789012345678"  # 38 digits
NEG_BIG = "-99999999999999999999999999999999999999"
MONEY = "1234567890123456789012345678.0123456789"  # 28 + 10 digits
TINY = "0.12345678901234567890123456789012345678"  # 38 fraction digits
NEG_TINY = "-0.00000000000000000000000000000000000001"

ITEMS: dict[int, dict[str, Any]] = {
    1: {"big": {"N": BIG}, "money": {"N": MONEY}, "tiny": {"N": TINY},
        "count": {"N": "9223372036854775807"}, "name": {"S": 'quote " and \' and \n ü'},
        "flag": {"BOOL": True}, "blob": {"B": base64.b64encode(b"\x00\x01\xff").decode()},
        "tags": {"SS": ["b", "a"]}, "nums": {"NS": ["1", "2.5"]},
        "doc": {"M": {"k": {"N": "12345678901234567890"}, "s": {"S": "v"}}},
        "list": {"L": [{"S": "x"}, {"BOOL": False}, {"NULL": True}]},
        'we"ird name': {"S": "w"}, "A": {"S": "upper"}, "a": {"S": "lower"},
        "dot.ted": {"N": "-42"}, "it's": {"S": "apostrophe"}},
    2: {"big": {"N": NEG_BIG}, "money": {"N": "-0.5"}, "tiny": {"N": NEG_TINY},
        "count": {"N": "-9223372036854775808"}, "name": {"S": "日本"},
        "flag": {"BOOL": False}, "blob": {"B": base64.b64encode(b"").decode()},
        "tags": {"SS": ["z"]}, "doc": {"M": {}}, "list": {"L": []}},
    3: {"big": {"N": "0"}, "money": {"N": "7"}, "name": {"S": "three"}},
}


def lake_rows() -> list[dict[str, Any]]:
    """Changes of three items over two days: item 2 is removed, item 3 modified twice."""
    return [
        change(1, "INSERT", 1, ITEMS[1]),
        change(2, "INSERT", 2, ITEMS[2], at=T0 + 10),
        change(3, "INSERT", 3, ITEMS[3], at=T0 + 20, seq="99"),
        change(4, "MODIFY", 3, {**ITEMS[3], "money": {"N": "8.25"}}, ITEMS[3],
               at=T0 + DAY_S, seq="100"),  # longer sequence number: later, though "100" < "99"
        change(5, "REMOVE", 2, None, ITEMS[2], at=T0 + DAY_S + 5),
    ]


def write_lake(root: Path, rows: list[dict[str, Any]], *, jsonl_days: tuple[str, ...] = (),
               copies: int = 1) -> Lake:
    """Rows as Firehose lays them out: Parquet without partition columns, or JSON Lines
    (gzipped) for the days in ``jsonl_days``. ``copies`` writes every file that many times
    (repeated deliveries)."""
    by_partition: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_partition[(row["table_name"], row["dt"])].append(row)
    for (table, dt), part in by_partition.items():
        folder = root / partition_path(table, dt)
        folder.mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            if dt in jsonl_days:
                text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
                (folder / f"f-{copy}.jsonl.gz").write_bytes(gzip.compress(text.encode()))
            else:
                data = [{k: v for k, v in r.items() if k not in ("table_name", "dt")}
                        for r in part]
                buf = io.BytesIO()
                pq.write_table(pa.Table.from_pylist(
                    data, schema=arrow_schema(include_partitions=False)), buf)
                (folder / f"f-{copy}.parquet").write_bytes(buf.getvalue())
    return Lake.open(str(root))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return write_lake(tmp_path / "lake", lake_rows(), jsonl_days=("2024-05-02",), copies=2)


def query(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# --------------------------------------------------------------------------- expectations


def expected_value(typed: dict[str, Any] | None) -> Any:
    """What a view column must hold for a DynamoDB value, computed from the value itself."""
    if typed is None:
        return None
    ((tag, raw),) = typed.items()
    if tag == "N":
        return Decimal(raw)
    if tag in ("S", "B"):
        return raw
    if tag == "BOOL":
        return raw
    return plain(typed)


def plain(typed: dict[str, Any]) -> Any:
    ((tag, raw),) = typed.items()
    if tag == "N":
        return Decimal(raw)
    if tag in ("S", "B", "BOOL"):
        return raw
    if tag == "NULL":
        return None
    if tag == "NS":
        return [Decimal(x) for x in raw]
    if tag in ("SS", "BS"):
        return list(raw)
    if tag == "M":
        return {k: plain(v) for k, v in raw.items()}
    return [plain(v) for v in raw]


def actual_value(value: Any, kind: str) -> Any:
    """A view column's value, made comparable with ``expected_value``."""
    if value is None:
        return None
    if kind in ("bigint", "decimal"):
        assert isinstance(value, int | Decimal), value
        return Decimal(value)
    if kind == "json":
        return json.loads(value, parse_float=Decimal, parse_int=Decimal)
    return value


# --------------------------------------------------------------------------- tests


def test_views_parse_as_athena_sql_with_a_saved_query_header(lake: Lake) -> None:
    view_set = render_views(infer_schema(lake, "Orders"))
    assert [v.name for v in view_set.views] == ["orders_changes_typed", "orders_current"]
    for view in view_set.views:
        tree = sqlglot.parse_one(view.sql, read="athena")
        assert tree.key == "create"
        # Round trip: Athena SQL regenerated from the tree parses again the same way.
        again = sqlglot.parse_one(tree.sql(dialect="athena"), read="athena")
        assert again.sql(dialect="athena", comments=False) == \
            tree.sql(dialect="athena", comments=False)
        header = queries.parse_query(view.sql, Path(view.file_name))
        assert header.kind == "view"
        assert [c for c, _ in header.outputs] == [
            c.alias_or_name for c in tree.expression.expressions]


def test_typed_values_equal_the_json_values_including_38_digit_numbers(lake: Lake) -> None:
    schema = infer_schema(lake, "Orders")
    view_set = render_views(schema)
    types = {c.attribute: c.type.sql_type for c in view_set.columns}
    kinds = {c.attribute: c.type.kind for c in view_set.columns}
    assert types["big"] == "decimal(38, 0)"
    assert types["money"] == "decimal(38, 10)"
    assert types["tiny"] == "decimal(38, 38)"
    assert types["count"] == "bigint"
    assert types["flag"] == "boolean"
    columns = {c.attribute: c.column for c in view_set.columns}
    assert columns["A"] == "a"
    assert columns["a"] == "a_2"
    assert columns['we"ird name'] == "we_ird_name"
    assert columns["it's"] == "it_s"

    con = duck.connect(lake)
    apply_duckdb(view_set, con)
    got = query(con, "SELECT * FROM orders_changes_typed")
    assert sorted(r["event_id"] for r in got) == [f"ev-{n}" for n in range(1, 6)]  # deduped
    by_event = {r["event_id"]: r for r in got}
    for row in lake_rows():
        image = json.loads(row["new_image"] or row["old_image"])
        source = ITEMS[json.loads(row["item_key"])["Id"]]
        if row["event_id"] == "ev-4":
            source = {**source, "money": {"N": "8.25"}}
        assert set(image) - {"Id"} == set(source)
        out = by_event[row["event_id"]]
        for attr, col in columns.items():
            want = Decimal(json.loads(row["item_key"])["Id"]) if attr == "Id" \
                else expected_value(source.get(attr))
            assert actual_value(out[col], kinds[attr]) == want, (row["event_id"], attr)


def test_current_holds_each_live_items_latest_state(lake: Lake) -> None:
    view_set = render_views(infer_schema(lake, "Orders"))
    con = duck.connect(lake)
    apply_duckdb(view_set, con)
    got = {r["item_key"]: r for r in query(con, "SELECT * FROM orders_current")}
    assert set(got) == {'{"Id":1}', '{"Id":3}'}  # item 2 was removed
    three = got['{"Id":3}']
    assert three["last_event_id"] == "ev-4"  # sequence 100 is after 99
    assert three["money"] == Decimal("8.25")
    assert three["last_changed_at"] == datetime(2024, 5, 2, 10, 0)
    assert got['{"Id":1}']["big"] == Decimal(BIG)
    assert got['{"Id":1}']["tiny"] == Decimal(TINY)
    assert got['{"Id":1}']["money"] == Decimal(MONEY)


def test_duckdb_reads_decimals_without_a_double() -> None:
    # The plain transpilation goes through ->> and a double: it loses digits.
    sql = "SELECT TRY_CAST(json_extract_scalar(image, '$[\"m\"]') AS DECIMAL(38, 10)) AS m " \
          "FROM (SELECT '{\"m\": " + MONEY + "}' AS image) AS t"
    plain_duck = sqlglot.transpile(sql, read="athena", write="duckdb")[0]
    con = duckdb.connect()
    assert con.execute(plain_duck).fetchone()[0] != Decimal(MONEY)  # type: ignore[index]
    exact = rewrite_exact_decimals(sqlglot.parse_one(sql, read="athena")).sql(dialect="duckdb")
    assert con.execute(exact).fetchone()[0] == Decimal(MONEY)  # type: ignore[index]


def test_values_that_drift_after_generation_read_as_null(tmp_path: Path) -> None:
    rows = drift_rows()
    lake = write_lake(tmp_path / "lake", rows)
    # Views learnt from day 1 only: qty is bigint then; on day 3 it became a string.
    schema = SchemaBuilder("Orders").add_all(r for r in rows if r["dt"] == "2024-05-01").build()
    view_set = render_views(schema)
    con = duck.connect(lake)
    apply_duckdb(view_set, con)
    got = {r["event_id"]: r["qty"] for r in query(con, "SELECT * FROM orders_changes_typed")}
    assert got["ev-4"] == 7
    assert got["ev-5"] is None  # "five" does not fit bigint: NULL, the query still runs


def test_json_path_quotes_any_attribute_name() -> None:
    con = duckdb.connect()
    for name in ['we"ird', "back\\slash", "it's", "dot.ted", "$[0]", "x]y", " ", "nl\nx"]:
        image = json.dumps({name: "hit", "other": "miss"})
        sql = (f"SELECT json_extract_scalar(image, {_literal(json_path(name))}) "
               f"FROM (SELECT {_literal(image)} AS image) AS t")
        duck_sql = sqlglot.transpile(sql, read="athena", write="duckdb")[0]
        assert con.execute(duck_sql).fetchone() == ("hit",), name


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_catalog_file_serves_the_views_to_any_duckdb_client(lake: Lake, tmp_path: Path) -> None:
    view_set = render_views(infer_schema(lake, "Orders"))
    path = tmp_path / "bi.duckdb"
    assert apply_duckdb_catalog(view_set, lake, path) == [
        "changes", "orders_changes_typed", "orders_current"]
    # A BI tool's own session, in another time zone, read-only.
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'America/New_York'")
    rows = query(con, "SELECT item_key, big, money, last_changed_at FROM orders_current "
                      "ORDER BY item_key")
    assert rows == [
        {"item_key": '{"Id":1}', "big": Decimal(BIG), "money": Decimal(MONEY),
         "last_changed_at": datetime(2024, 5, 1, 10, 0)},
        {"item_key": '{"Id":3}', "big": Decimal(0), "money": Decimal("8.25"),
         "last_changed_at": datetime(2024, 5, 2, 10, 0)},
    ]
    assert con.execute("SELECT count(*) FROM orders_changes_typed").fetchone() == (5,)


def test_transpiled_views_are_what_apply_runs(lake: Lake, tmp_path: Path) -> None:
    view_set = render_views(infer_schema(lake, "Orders"))
    paths = write_views(view_set, tmp_path / "out")
    assert [p.name for p in paths] == ["orders_changes_typed.sql", "orders_current.sql"]
    assert paths[1].read_text(encoding="utf-8") == view_set.view("current").sql
    duck_sql = to_duckdb(view_set.view("current"))
    assert "from_json" in duck_sql.lower()


# --------------------------------------------------------------------------- CLI


def test_cli_schema_reports_drift_on_a_generated_lake(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = write_lake(tmp_path / "lake", drift_rows(), jsonl_days=("2024-05-02",))
    code, out, err = run_cli(["schema", "--table", "Orders", "--lake", lake.uri,
                              "--output", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    drift = {(d["kind"], d["attribute"]): d for d in report["drift"]}
    assert set(drift) == {("added", "promo"), ("removed", "legacy"), ("type_changed", "qty")}
    assert drift["type_changed", "qty"]["at"] == "2024-05-03T10:00:30.000Z"
    assert (drift["type_changed", "qty"]["before"], drift["type_changed", "qty"]["after"]) \
        == (["N"], ["S"])
    assert drift["added", "promo"]["at"] == "2024-05-02T10:00:00.000Z"
    assert drift["removed", "legacy"]["at"] == "2024-05-01T10:01:00.000Z"
    qty = next(a for a in report["attributes"] if a["name"] == "qty")
    assert qty["types"] == {"N": 4, "S": 1}
    assert qty["sql_type"] == "varchar"
    assert any("'qty'" in w for w in report["warnings"])

    # --since after the type change: no conflict left to report.
    code, out, _ = run_cli(["schema", "--table", "Orders", "--lake", lake.uri,
                            "--since", "2024-05-03", "--output", "json"], capsys)
    assert code == 0
    assert json.loads(out)["changes"] == 2

    code, out, err = run_cli(["schema", "--table", "Orders", "--lake", lake.uri], capsys)
    assert code == 0
    assert "type_changed" in out
    assert "warning: attribute 'qty'" in err


def test_cli_views_writes_files_and_creates_the_duckdb_catalog(
        lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "views"
    code, out, err = run_cli(["views", "--table", "Orders", "--lake", lake.uri, "--out",
                              str(out_dir), "--apply", "duckdb", "--binary", "varbinary"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["orders_changes_typed.sql",
                                                        "orders_current.sql"]
    catalog = Path(lake.root) / "_ddbtrail" / "ddbtrail.duckdb"
    assert str(catalog) in out
    con = duckdb.connect(str(catalog), read_only=True)
    assert con.execute("SELECT blob FROM orders_current WHERE item_key = '{\"Id\":1}'").fetchone() \
        == (b"\x00\x01\xff",)


def test_cli_errors_are_one_line(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(["views", "--table", "Nope", "--lake", lake.uri], capsys)
    assert code == 1
    assert err.strip().splitlines() == [f"error: table Nope: no changes in lake {lake.uri} "
                                        "(it holds Orders; check --table and --lake)"]
    code, _, err = run_cli(["views", "--table", "Orders", "--lake", lake.uri,
                            "--apply", "postgres"], capsys)
    assert code == 2
    assert err.startswith("error: --apply: postgres is not one of duckdb, athena")
