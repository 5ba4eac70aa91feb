"""reconcile_receipts and its detail on Trino over the receipts' own JSON files (the Glue
table of glue/receipts.json): the same rows as on DuckDB, gaps included."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddbtrail.query import saved
from ddbtrail.query.trino_local import LocalTrino
from tests.sql.test_reconcile_receipts import WINDOW, build_case, expected
from tests.trino.conftest import register
from tests.trino.equivalence import canonical_rows

pytestmark = pytest.mark.trino


def test_same_figures_and_gaps_on_trino(trino_server: LocalTrino, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    lake, stored, receipts = build_case(root)
    tl = register(trino_server, lake, root, fmt="parquet", table_names=["Orders", "Customers"])
    try:
        for name in ("reconcile_receipts", "reconcile_receipts_detail"):
            query = saved.load(name)
            duck = saved.run_local(query, WINDOW, lake)
            trino = saved.run_trino(query, WINDOW, con=tl.con)
            assert trino.column_names == duck.column_names
            assert canonical_rows(trino, ordered=True) == canonical_rows(duck, ordered=True)
        summary = saved.run_trino(saved.load("reconcile_receipts"), WINDOW, con=tl.con)
        assert summary.to_pylist() == expected(stored, receipts)
    finally:
        tl.con.close()
