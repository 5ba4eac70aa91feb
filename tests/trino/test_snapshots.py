"""The daily snapshot sequence on Trino, as the maintenance state machine runs it on Athena:
snapshot_candidates (and snapshot_check of each), INSERT INTO snapshots <snapshot_state>,
INSERT INTO snapshots <snapshot_complete>, then as-of queries through the snapshot. The
same build made by ``ddbtrail snapshot`` (DuckDB) over a copy of the lake gives the same
snapshot rows and the same as-of answers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ddbtrail.core.timefmt import iso_ms, parse_timestamp
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved, snapshots
from ddbtrail.query import trino as engine
from ddbtrail.query.trino_local import LocalTrino
from tests.sql.conftest import CASES, read_jsonl, write_lake
from tests.trino.conftest import register
from tests.trino.equivalence import canonical_rows

pytestmark = pytest.mark.trino

AT = "2024-05-02T23:59:59.999Z"
NOW = "2024-05-05T00:00:00.000Z"
SETTLE = 900


def _run(name: str, values: dict[str, str], con: object) -> list[list[object]]:
    query = saved.load(name)
    return canonical_rows(saved.run_trino(query, {p.name: values[p.name]
                                                    for p in query.parameters}, con=con))


def test_snapshot_sequence_same_on_trino_and_duckdb(trino_server: LocalTrino,
                                                     tmp_path: Path) -> None:
    given = read_jsonl(CASES / "orders" / "input.jsonl")
    trino_root, duck_root = tmp_path / "trino-lake", tmp_path / "duck-lake"
    lake = write_lake(trino_root, [{**r, "_format": "parquet"} for r in given])
    shutil.copytree(trino_root, duck_root)
    duck_lake = Lake.open(str(duck_root))

    # ddbtrail snapshot on DuckDB, at the end of a day, with a fixed build time.
    built = snapshots.build(duck_lake, "Orders", parse_timestamp(AT), settle_seconds=SETTLE,
                            now_ms=parse_timestamp(NOW))
    assert built.items > 0

    # The state machine's statements on Trino, with the values it binds.
    tl = register(trino_server, lake, trino_root, table_names=["Orders", "Users"])
    values = {"table_name": "Orders", "at": AT, "made_at": built.made_at,
              "visible_before": iso_ms(parse_timestamp(NOW) - SETTLE * 1000),
              "base": snapshots.NO_SNAPSHOT, "base_made_at": snapshots.NO_BUILD}
    assert _run("snapshot_candidates", values, tl.con) == []
    for name in ("snapshot_state", "snapshot_complete"):
        query = saved.load(name)
        bound = saved.positional(query, saved.bind(
            query, {p.name: values[p.name] for p in query.parameters}))
        engine.execute(tl.con, f"INSERT INTO snapshots\n{query.sql}", bound)

    # Trino reads DuckDB's snapshot file through the same table: the rows are equal.
    duck_tl = register(trino_server, duck_lake, duck_root, table_names=["Orders", "Users"])
    columns = "SELECT * FROM snapshots WHERE table_name = 'Orders'"
    from_trino = canonical_rows(engine.execute(tl.con, columns))
    assert from_trino == canonical_rows(engine.execute(duck_tl.con, columns))
    # The items, one row per change partition the build read, and the complete row.
    actions = [row[2] for row in from_trino]
    assert len(actions) - actions.count("PARTITION") - actions.count("COMPLETE") == built.items
    assert actions.count("COMPLETE") == 1 and actions.count("PARTITION") >= 1

    # Both lakes now name the build as the base of a later snapshot, fresh on both ...
    later = {**values, "at": "2024-05-03T23:59:59.999Z"}
    base = _run("snapshot_candidates", later, tl.con)
    assert base == _run("snapshot_candidates", later, duck_tl.con)
    assert base and base[0][0] == parse_timestamp(AT)
    check = {"table_name": "Orders", "candidate": AT, "candidate_made_at": built.made_at}
    assert _run("snapshot_check", check, tl.con) == _run("snapshot_check", check,
                                                         duck_tl.con) == [[0, False]]
    # ... until a change of the build's day arrives late (the check counts that day).
    late = {**given[0], "event_id": "late-1", "sequence_number": "900000000000000000099",
            "event_time": iso_ms(parse_timestamp(AT) - 60_000), "_file": "late"}
    write_lake(trino_root, [late])
    write_lake(duck_root, [late])
    assert _run("snapshot_check", check, tl.con) == _run("snapshot_check", check,
                                                         duck_tl.con) == [[1, True]]
    # ... and the as-of queries read through it alike, on Trino and on DuckDB.
    table_as_of = saved.load("table_as_of")
    args = {"table_name": "Orders", "at": later["at"]}
    state = saved.run_trino(table_as_of, args, con=tl.con)
    assert canonical_rows(state) == canonical_rows(saved.run_local(table_as_of, args,
                                                                   duck_lake))
    keys = state.column("item_key").to_pylist()
    assert keys
    item_as_of = saved.load("item_as_of")
    for key in keys:
        one = {**args, "item_key": key}
        got = canonical_rows(saved.run_trino(item_as_of, one, con=tl.con))
        assert got == canonical_rows(saved.run_local(item_as_of, one, duck_lake)), key
        assert got, key
