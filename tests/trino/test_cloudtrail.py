"""item_history_with_actor over CloudTrail files: the same rows on Trino as on DuckDB.

Athena reads CloudTrail's gzipped documents through CloudTrailInputFormat, which Trino
lacks; on Trino the table (same columns, JSON SerDe, ``timestamp`` projection) reads a
JSON Lines copy, one record per line (``ddbtrail.query.trino.write_cloudtrail_jsonl``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ddbtrail.lake.cloudtrail import TrailLogs
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved
from ddbtrail.query import trino as engine
from ddbtrail.query.trino_local import LocalTrino
from tests import trail
from tests.trino.conftest import CLOUDTRAIL_DIR, register
from tests.trino.equivalence import canonical_rows

pytestmark = pytest.mark.trino


def test_item_history_with_actor_same_rows(trino_server: LocalTrino, tmp_path: Path) -> None:
    root = trail.write_lake(tmp_path / "lake")
    lake = Lake.open(str(root))
    logs = TrailLogs.open(str(trail.write_trail(tmp_path / "bucket")))
    written = engine.write_cloudtrail_jsonl(logs, root / CLOUDTRAIL_DIR)
    assert written == len(trail.TRAIL)
    tl = register(trino_server, lake, root, fmt="jsonl")
    query = saved.load("item_history_with_actor")
    seen = 0
    for item_key in ('{"Id":101}', '{"Id":102}'):
        values = {"table_name": "Orders", "item_key": item_key,
                  "from": "2024-05-01T00:00:00Z", "to": "2024-05-03T00:00:00Z"}
        duck = saved.run_local(query, values, lake, cloudtrail=logs)
        got = saved.run_trino(query, values, con=tl.con)
        assert got.column_names == duck.column_names
        assert canonical_rows(got, ordered=True) == canonical_rows(duck, ordered=True)
        for row in got.to_pylist():
            assert (row["actor"], row["actor_match"]) == trail.EXPECTED[row["event_id"]][:2]
            seen += 1
    assert seen == len(trail.EXPECTED)
