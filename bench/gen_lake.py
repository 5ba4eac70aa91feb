"""Synthetic change lakes for the lookup benchmark, written directly (not through moto).

One call writes two copies of the same changes:

* ``<out>/lake``: the ddbtrail layout, ``table_name=<t>/dt=<d>/`` with Snappy Parquet
  files in ``ddbtrail.core.row.arrow_schema(include_partitions=False)``, split the way Firehose
  flushes them (``files_per_day`` files per day, rows in arrival order);
* ``<out>/naive``: the naive layout, JSON Lines with no partitions (every row carries
  ``table_name`` and ``dt``), so any lookup there is a full scan.

Workload: ``days`` days from 2025-01-01, ``items`` items, item popularity Zipf(``zipf_s``)
(rank 1 is the hottest key), per item INSERT, then MODIFYs, ~3% REMOVEs (a REMOVE is
followed by a fresh INSERT). Images are plain JSON of ~``item_bytes`` bytes; the old image
of a change is the new image of the item's previous change.

Everything is vectorised (numpy + pyarrow compute): no per-row Python.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ddbtrail.core.row import arrow_schema

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
DAY_MS = 86_400_000
ATTRS = ("balance", "name", "notes", "pk", "status", "updated_at", "version")


@dataclass(frozen=True)
class LakeSpec:
    """What to generate. ``changes`` rows over ``days`` days and ``items`` items."""

    changes: int
    items: int = 100_000
    days: int = 30
    zipf_s: float = 1.0
    item_bytes: int = 300
    files_per_day: int = 96  # one Firehose flush every 15 minutes (its longest interval)
    table: str = "Orders"
    seed: int = 7

    def key_of_rank(self, rank: int) -> str:
        """item_key of the item with popularity ``rank`` (1 = hottest)."""
        return f'{{"pk":"item#{_rank_to_item(self)[rank - 1]:07d}"}}'


def _rank_to_item(spec: LakeSpec) -> np.ndarray:
    # Hot keys are spread over the key space, not clustered at the start of it.
    return np.random.default_rng(spec.seed + 1).permutation(spec.items)


def _str(a: Any) -> pa.Array:
    return pc.cast(pa.array(a), pa.string())


def _lpad(a: Any, width: int) -> pa.Array:
    return pc.utf8_lpad(_str(a), width=width, padding="0")


def _join(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _iso(ms: np.ndarray) -> pa.Array:
    ts = pa.array(ms.astype("datetime64[ms]"), type=pa.timestamp("ms"))
    # %S on a millisecond timestamp prints seconds with three decimals.
    return _join(pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S"), "Z")


@dataclass
class Skeleton:
    """Per-row numbers for every change (numpy, ~100 bytes a row); strings come later."""

    item: np.ndarray
    ts: np.ndarray
    prev: np.ndarray
    occurrence: np.ndarray
    action_code: np.ndarray  # 0 INSERT, 1 MODIFY, 2 REMOVE
    balance: np.ndarray
    status: np.ndarray
    notes: np.ndarray  # uint8 (n, notes_bytes): hex-encoded into the image
    event_id: np.ndarray  # uint8 (n, 16)
    lag: np.ndarray


def skeleton(spec: LakeSpec) -> Skeleton:
    """Draw the workload: who changes when, and each item's chain of changes."""
    rng = np.random.default_rng(spec.seed)
    n = spec.changes
    ranks = np.arange(1, spec.items + 1, dtype=np.float64)
    cdf = np.cumsum(ranks ** -spec.zipf_s)
    cdf /= cdf[-1]
    rank_idx = np.minimum(np.searchsorted(cdf, rng.random(n)), spec.items - 1)
    item = _rank_to_item(spec)[rank_idx]
    del rank_idx
    ts = np.sort(rng.integers(START_MS, START_MS + spec.days * DAY_MS, size=n))

    # Per-item order: occurrence number and the row of the item's previous change.
    order = np.lexsort((ts, item))  # by item, then time
    item_sorted = item[order]
    first = np.ones(n, dtype=bool)
    first[1:] = item_sorted[1:] != item_sorted[:-1]
    del item_sorted
    prev = np.empty(n, dtype=np.int64)
    prev[order] = np.where(first, -1, np.roll(order, 1))
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    occurrence = np.empty(n, dtype=np.int64)
    occurrence[order] = np.arange(n) - group_start
    del order, first, group_start

    removed = (rng.random(n) < 0.03) & (occurrence > 0)
    after_remove = np.zeros(n, dtype=bool)
    has_prev = prev >= 0
    after_remove[has_prev] = removed[prev[has_prev]]
    action_code = np.where(occurrence == 0, 0, np.where(after_remove, 0, np.where(removed, 2, 1)))
    notes_bytes = max(8, spec.item_bytes - 170) // 2
    return Skeleton(
        item=item, ts=ts, prev=prev, occurrence=occurrence,
        action_code=action_code.astype(np.int8),
        balance=rng.integers(0, 10**9, size=n), status=rng.integers(0, 3, n).astype(np.int8),
        notes=rng.integers(0, 256, size=(n, notes_bytes), dtype=np.uint8),
        event_id=rng.integers(0, 256, size=(n, 16), dtype=np.uint8),
        lag=rng.integers(200, 60_000, size=n),
    )


_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype="S2")


def _hex(raw: np.ndarray) -> pa.Array:
    """Rows of random bytes -> lowercase hex strings, vectorised."""
    n, width = raw.shape
    chars = _HEX[raw].view(f"S{2 * width}").reshape(n)
    return pc.cast(pa.array(chars, type=pa.binary()), pa.string())


def _image(sk: Skeleton, idx: np.ndarray) -> pa.Array:
    """The new image written by each change in ``idx``."""
    item = _lpad(sk.item[idx], 7)
    return _join(
        '{"balance":', _str(sk.balance[idx]), ',"name":"customer ', item, '","notes":"',
        _hex(sk.notes[idx]), '","pk":"item#', item, '","status":"',
        pc.take(pa.array(["active", "pending", "closed"]), pa.array(sk.status[idx])),
        '","updated_at":"', _iso(sk.ts[idx]), '","version":', _str(sk.occurrence[idx] + 1),
        "}",
    )


def build_rows(spec: LakeSpec, sk: Skeleton, lo: int, hi: int) -> pa.Table:
    """Rows ``lo``..``hi`` (event-time order) as an Arrow table with partition columns."""
    idx = np.arange(lo, hi)
    n = hi - lo
    code = sk.action_code[idx]
    new_image = _image(sk, idx)
    prev = sk.prev[idx]
    has_old = (prev >= 0) & (code != 0)
    old_image = pc.if_else(pa.array(has_old), _image(sk, np.where(has_old, prev, idx)),
                           pa.nulls(n, pa.string()))
    new_image = pc.if_else(pa.array(code == 2), pa.nulls(n, pa.string()), new_image)
    changed_choices = pa.array([list(ATTRS), ["balance", "updated_at", "version"], list(ATTRS)],
                               type=pa.list_(pa.string()))
    size = pc.add(pc.coalesce(pc.binary_length(old_image), 0),
                  pc.coalesce(pc.binary_length(new_image), 0))
    key_json = _join('{"pk":"item#', _lpad(sk.item[idx], 7), '"}')
    iso = _iso(sk.ts[idx])

    def const(value: str) -> pa.Array:
        return pa.array(np.full(n, value, dtype=object), type=pa.string())

    columns: dict[str, Any] = {
        "schema_version": pa.array(np.ones(n, dtype=np.int32)),
        "event_id": _hex(sk.event_id[idx]),
        "sequence_number": _join("4000000000000", _lpad(idx, 18)),
        "action": pc.take(pa.array(["INSERT", "MODIFY", "REMOVE"]), pa.array(code)),
        "item_key": key_json,
        "keys": key_json,
        "old_image": old_image,
        "new_image": new_image,
        "type_hints": pa.nulls(n, pa.string()),
        "changed_attributes": pc.take(changed_choices, pa.array(code)),
        "timestamp": pa.array(sk.ts[idx]),
        "event_time": iso,
        "ingested_at": _iso(sk.ts[idx] + sk.lag[idx]),
        "stream_view_type": const("NEW_AND_OLD_IMAGES"),
        "size_bytes": pc.cast(size, pa.int64()),
        "ttl_delete": pa.array(np.zeros(n, dtype=bool)),
        "user_identity": pa.nulls(n, pa.string()),
        "event_source": const("aws:dynamodb"),
        "aws_region": const("us-east-1"),
        "spill_uri": pa.nulls(n, pa.string()),
        "snapshot_id": pa.nulls(n, pa.string()),
        "table_name": const(spec.table),
        "dt": pc.utf8_slice_codeunits(iso, 0, 10),
    }
    return pa.table(columns).cast(arrow_schema(include_partitions=True))


def build_table(spec: LakeSpec) -> pa.Table:
    """All changes as one Arrow table (small specs only: it is all in memory)."""
    return build_rows(spec, skeleton(spec), 0, spec.changes)


@dataclass
class Generated:
    """Where the lakes went and how big they are (bytes)."""

    spec: dict[str, Any]
    lake: str
    naive: str
    rows: int
    lake_bytes: int
    lake_files: int
    naive_bytes: int
    naive_files: int
    seconds: float


def _dir_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def generate(spec: LakeSpec, out: Path, *, naive: bool = True) -> Generated:
    """Write ``out/lake`` (partitioned Parquet) and ``out/naive`` (flat JSON Lines).

    Works one day at a time, so memory is the numeric skeleton plus one day of rows.
    Reuses ``out`` when ``out/generated.json`` already describes ``spec``.
    """
    import duckdb

    marker = out / "generated.json"
    if marker.exists():
        done = json.loads(marker.read_text())
        if done["spec"] == asdict(spec) and (Path(done["naive"]).exists() or not naive):
            return Generated(**done)
    started = time.perf_counter()
    sk = skeleton(spec)
    lake = out / "lake"
    naive_dir = out / "naive"
    data_schema = arrow_schema(include_partitions=False)
    day_of = (sk.ts - START_MS) // DAY_MS
    bounds = np.searchsorted(day_of, np.arange(spec.days + 1))
    con = duckdb.connect()
    if naive:
        naive_dir.mkdir(parents=True, exist_ok=True)
    for d, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if hi <= lo:
            continue
        day = build_rows(spec, sk, int(lo), int(hi))
        dt = day.column("dt")[0].as_py()
        folder = lake / f"table_name={spec.table}" / f"dt={dt}"
        folder.mkdir(parents=True, exist_ok=True)
        data = day.select(data_schema.names).cast(data_schema)
        cuts = np.linspace(0, data.num_rows, spec.files_per_day + 1).astype(int)
        for i, (a, b) in enumerate(itertools.pairwise(cuts)):
            if b > a:
                name = f"ddbtrail-{spec.table}-1-{dt}-{i:03d}-{spec.seed:04d}.parquet"
                pq.write_table(data.slice(a, b - a), folder / name, compression="snappy")
        if naive:
            # One flat folder of JSON Lines files in arrival order, as a Firehose stream
            # with no partitioning and no conversion would leave it.
            con.register("day_rows", day)
            con.execute(f"COPY day_rows TO '{naive_dir}/part-{d:03d}.jsonl' (FORMAT json)")
            con.unregister("day_rows")
    con.close()
    lake_bytes, lake_files = _dir_size(lake)
    naive_bytes, naive_files = _dir_size(naive_dir) if naive else (0, 0)
    result = Generated(asdict(spec), str(lake), str(naive_dir), spec.changes, lake_bytes,
                       lake_files, naive_bytes, naive_files, time.perf_counter() - started)
    marker.write_text(json.dumps(asdict(result), indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/.out/lake-1m"))
    parser.add_argument("--no-naive", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asdict(generate(LakeSpec(args.changes), args.out,
                                     naive=not args.no_naive)), indent=1))


if __name__ == "__main__":
    main()
