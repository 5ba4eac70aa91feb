"""``ddbtrail query NAME --engine trino`` against the local server: the rows of
``--engine duckdb`` over the same lake, and one stderr line on a Trino error."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddbtrail.query.trino_local import LocalTrino
from tests.cli import run_cli
from tests.sql.conftest import CASES, read_jsonl, write_lake
from tests.trino.conftest import register

pytestmark = pytest.mark.trino


def _trino(server: LocalTrino, schema: str) -> list[str]:
    return ["--engine", "trino", "--trino-port", str(server.port), "--trino-schema", schema]


def test_item_history_prints_the_duckdb_rows(trino_server: LocalTrino, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "lake"
    lake = write_lake(root, [{**r, "_format": "jsonl"}
                             for r in read_jsonl(CASES / "orders" / "input.jsonl")])
    tl = register(trino_server, lake, root, fmt="jsonl", table_names=["Orders", "Users"])
    for output in ("json", "csv"):
        args = ["query", "item_history", "-p", "table_name=Orders", "-p", 'item_key={"id":1}',
                "--output", output]
        code, duck_out, err = run_cli([*args, "--engine", "duckdb", "--lake", str(root)],
                                      capsys)
        assert (code, err) == (0, "")
        code, trino_out, err = run_cli([*args, *_trino(trino_server, tl.schema)], capsys)
        assert (code, err) == (0, "")
        assert trino_out == duck_out
        assert "900000000000000000001" in trino_out


def test_a_trino_error_is_one_line_naming_the_query(trino_server: LocalTrino,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["query", "item_history", "-p", "table_name=Orders",
                              "-p", 'item_key={"id":1}',
                              *_trino(trino_server, "no_such_schema")], capsys)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "item_history" in err and "failed on Trino" in err and "no_such_schema" in err


def test_a_password_without_tls_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # Checked before any connection: no server needed.
    code, _, err = run_cli(["query", "item_history", "-p", "table_name=Orders",
                            "-p", 'item_key={"id":1}', "--engine", "trino",
                            "--trino-password", "secret"], capsys)
    assert code == 2
    assert "https" in err and "secret" not in err


def test_the_api_runs_a_saved_query_on_trino_as_on_duckdb(trino_server: LocalTrino,
                                                         tmp_path: Path) -> None:
    import ddbtrail as dt

    root = tmp_path / "lake"
    lake = write_lake(root, [{**r, "_format": "parquet"}
                             for r in read_jsonl(CASES / "orders" / "input.jsonl")])
    tl = register(trino_server, lake, root, table_names=["Orders", "Users"])
    params = {"table_name": "Orders", "item_key": '{"id":1}'}
    on_duckdb = dt.query(str(root), "item_history", **params)
    on_trino = dt.query(None, "item_history", engine="trino", **params,
                        trino=dt.TrinoSettings(port=trino_server.port, schema=tl.schema))
    assert on_duckdb.num_rows > 0
    assert on_trino.to_pylist() == on_duckdb.to_pylist()
