"""The Iceberg table's metadata stays bounded however often a local writer commits, and the
reader's cache of the loaded table never serves a stale snapshot (issue 28)."""

from __future__ import annotations

import datetime as dt_mod
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ddbtrail.core.row import arrow_schema
from ddbtrail.lake import iceberg
from ddbtrail.lake.compact import compact_iceberg_partition, plan_iceberg
from ddbtrail.lake.files import Lake
from ddbtrail.lake.iceberg import IcebergLake
from ddbtrail.query import lookups
from tests.integration.test_iceberg import TABLE, _independent, _key, _row

DAYS = ("2025-03-01", "2025-03-02", "2025-03-03")


def _batch(n: int, per: int = 3) -> pa.Table:
    """Commit ``n``'s rows: ``per`` changes of keys 0..8, sequence numbers rising."""
    rows = [_row(f"e-{n}-{i}", (n * per + i) % 9, 10 + n * per + i, DAYS[n % len(DAYS)])
            for i in range(per)]
    return pa.Table.from_pylist(rows, schema=arrow_schema(include_partitions=True))


def _event_ids(ice: IcebergLake) -> list[str]:
    """Every event_id in the current snapshot's data files."""
    return [e for p in ice.plan()
            for e in pq.read_table(p.file.path, columns=["event_id"]).column(0).to_pylist()]


def _manifests(table: Any) -> int:
    return len(table.current_snapshot().manifests(table.io))


@pytest.fixture
def few_snapshots(monkeypatch: pytest.MonkeyPatch) -> int:
    """A low snapshot cap, so a short test crosses it several times."""
    monkeypatch.setattr(iceberg, "MAX_SNAPSHOTS", 12)
    return 12


def test_many_appends_keep_metadata_bounded_and_every_row(
        tmp_path: Path, few_snapshots: int) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    ice = IcebergLake(lake, create=True)
    merge_at = 5  # merges every few commits, so a short test merges several times
    with ice.create().transaction() as tx:
        tx.set_properties({"commit.manifest.min-count-to-merge": str(merge_at)})
    most_snapshots = most_manifests = 0
    ever_referenced: set[str] = set()
    for n in range(60):
        ice.append(_batch(n))
        table = ice.table()
        most_snapshots = max(most_snapshots, len(table.metadata.snapshots))
        most_manifests = max(most_manifests, _manifests(table))
        ever_referenced |= {iceberg.file_path(lake, m.manifest_path)
                            for s in table.metadata.snapshots for m in s.manifests(table.io)}
    assert most_snapshots <= few_snapshots + 1  # expired right after the commit past it
    assert len(ice.table().metadata.snapshots) <= few_snapshots
    assert most_manifests <= merge_at
    assert sorted(_event_ids(ice)) == sorted(f"e-{n}-{i}" for n in range(60) for i in range(3))
    # Only the newest metadata.json files are kept.
    folder = Path(lake.root, "ddbtrail", "changes", "metadata")
    kept = int(iceberg.TABLE_PROPERTIES["write.metadata.previous-versions-max"]) + 1
    assert len(list(folder.glob("*.metadata.json"))) == kept
    # Every manifest file on disk is one a snapshot referenced: merging leaves none behind.
    assert {str(p) for p in folder.glob("*-m*.avro")} <= ever_referenced


def test_a_lookup_sees_the_commit_made_right_after_the_previous_lookup(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    ice = IcebergLake(lake, create=True)
    for n in range(4):
        ice.append(_batch(n))
    before = lookups.item_history(lake, TABLE, _key(0))
    assert before == lookups.item_history(lake, TABLE, _key(0))  # served from the cache
    ice.append(pa.Table.from_pylist([_row("late-1", 0, 900, DAYS[0])],
                                    schema=arrow_schema(include_partitions=True)))
    after = lookups.item_history(lake, TABLE, _key(0))
    assert len(after) == len(before) + 1
    # A commit by another writer (its own catalog object, not this process's cache) too.
    _independent(lake).append(pa.Table.from_pylist(
        [_row("late-2", 0, 901, DAYS[0])], schema=arrow_schema(include_partitions=True)))
    assert len(lookups.item_history(lake, TABLE, _key(0))) == len(before) + 2


def test_expiry_never_drops_data_of_the_current_snapshot(
        tmp_path: Path, few_snapshots: int) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    ice = IcebergLake(lake, create=True)
    for n in range(10):
        ice.append(_batch(n))
    results = [compact_iceberg_partition(ice, p)
               for p in plan_iceberg(ice, before="2100-01-01", today="2099-12-31")]
    assert results and not [r.error for r in results if r.error]
    for n in range(10, 30):  # crosses the cap: the compaction's snapshots expire
        ice.append(_batch(n))
    expected = sorted(f"e-{n}-{i}" for n in range(30) for i in range(3))
    assert sorted(_event_ids(ice)) == expected
    # Expire everything that may be expired, delete every file no live snapshot needs:
    # the current snapshot keeps all its rows.
    now = dt_mod.datetime.now(dt_mod.UTC) + dt_mod.timedelta(seconds=1)
    assert ice.expire_snapshots(now) > 0
    assert [s["current"] for s in ice.snapshots()] == [True]
    assert ice.remove_orphans(now)
    assert sorted(_event_ids(ice)) == expected
    history = lookups.item_history(lake, TABLE, _key(0))
    assert len(history) == sum(1 for n in range(30) for i in range(3) if (n * 3 + i) % 9 == 0)


def test_snapshots_past_the_retention_expire_the_current_never(tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    ice = IcebergLake(lake, create=True)
    for n in range(3):
        ice.append(_batch(n))
    table = ice.table()
    newest = max(s.timestamp_ms for s in table.metadata.snapshots)
    day = 86_400_000
    # Not due yet: a day past the retention is the trigger.
    later = newest + iceberg.SNAPSHOT_RETENTION_DAYS * day + day // 2
    assert ice.expire_by_policy(now_ms=later) == 0
    much_later = newest + (iceberg.SNAPSHOT_RETENTION_DAYS + 2) * day
    assert ice.expire_by_policy(now_ms=much_later) == 2
    assert [s["current"] for s in ice.snapshots()] == [True]
    assert sorted(_event_ids(ice)) == sorted(f"e-{n}-{i}" for n in range(3) for i in range(3))


def test_a_table_made_without_the_write_properties_gets_them_on_its_next_write(
        tmp_path: Path) -> None:
    lake = Lake.open(str(tmp_path / "lake"))
    ice = IcebergLake(lake, create=True)
    ice.append(_batch(0))
    with ice.table().transaction() as tx:
        tx.remove_properties(*iceberg.WRITE_PROPERTIES)
    assert not set(iceberg.WRITE_PROPERTIES) & set(ice.table().metadata.properties)
    ice.append(_batch(1))
    props = ice.table().metadata.properties
    assert {k: props.get(k) for k in iceberg.WRITE_PROPERTIES} == iceberg.WRITE_PROPERTIES
    assert len(_event_ids(ice)) == 6
