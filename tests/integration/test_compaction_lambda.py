"""The compaction Lambda's own code (handlers/compact_partition.py, called as Lambda calls it)
on moto's S3 over a day of Firehose-shaped files: it plans only closed partitions not yet
compacted, and after it a key lookup reads what it reads on a lake compacted by
``ddbtrail compact``, a fraction of the raw day."""

from __future__ import annotations

import datetime as dt_mod
import gzip
import importlib.util
import json
import random
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.iostat import CountingFS
from ddbtrail.core.row import arrow_schema
from ddbtrail.lake.compact import compact, is_compacted, today_utc
from ddbtrail.lake.files import Lake
from ddbtrail.query import lookups

HANDLER = Path(__file__).parents[2] / "handlers" / "compact_partition.py"
BUCKET = "compaction-lake"
TABLE = "Orders"
ITEMS = 400
pytestmark = pytest.mark.integration


class Context:
    """The parts of LambdaContext the handler and Powertools read."""

    function_name = "ddbtrail-compaction"
    memory_limit_in_mb = 3008
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ddbtrail-compaction"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def day(offset: int) -> str:
    """Today (UTC) plus ``offset`` days, as a dt."""
    return (dt_mod.date.fromisoformat(today_utc()) + dt_mod.timedelta(days=offset)).isoformat()


def key_of(item: int) -> str:
    return json.dumps({"pk": f"ORDER#{item:05d}"}, separators=(",", ":"))


def firehose_day(dt: str, *, files: int = 48, rows_per_file: int = 60,
                 seed: int = 1) -> list[tuple[str, bytes]]:
    """One day of one table as Firehose leaves it: a small Parquet file per buffer flush,
    changes of every item interleaved in arrival order, some delivered twice."""
    rnd = random.Random(seed)
    schema = arrow_schema(include_partitions=False)
    out, seq = [], 10**20
    for f in range(files):
        rows = []
        for r in range(rows_per_file):
            seq += rnd.randint(1, 999)
            item = rnd.randrange(ITEMS)
            key = key_of(item)
            image = json.dumps({"pk": f"ORDER#{item:05d}", "n": seq % 997,
                                "note": "".join(rnd.choice("abcdef ") for _ in range(300))})
            rows.append({
                "schema_version": 1, "event_id": f"{dt}-{f}-{r}", "sequence_number": str(seq),
                "action": "MODIFY", "item_key": key, "keys": key, "old_image": image,
                "new_image": image, "type_hints": None, "changed_attributes": ["n"],
                "timestamp": 1_741_000_000_000 + seq % 10**6,
                "event_time": f"{dt}T00:00:00.000Z", "ingested_at": f"{dt}T00:00:01.000Z",
                "stream_view_type": "NEW_AND_OLD_IMAGES", "size_bytes": 700,
                "ttl_delete": False, "user_identity": None, "event_source": "aws:dynamodb",
                "aws_region": "us-east-1", "spill_uri": None, "snapshot_id": None})
        if f % 10 == 3:
            rows += rows[:5]  # at-least-once: a redelivered slice
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
        name = f"ddbtrail-changes-1-{dt}-{f:02d}-00-00-{uuid.UUID(int=rnd.getrandbits(128))}"
        out.append((f"lake/table_name={TABLE}/dt={dt}/{name}.parquet",
                    sink.getvalue().to_pybytes()))
    return out


def load_handler() -> ModuleType:
    """Import the handler as Lambda does: a fresh module, settings read from the environment."""
    spec = importlib.util.spec_from_file_location("compact_partition", HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("compact_partition", None)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def s3_lake(moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh bucket on moto's server, the handler's environment pointing at it, and the
    lake as a reader opens it (Arrow's S3 through the endpoint)."""
    bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("LAKE_URI", f"s3://{bucket}/lake")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    return {"s3": s3, "bucket": bucket,
           "reader": Lake.open(f"s3://{bucket}/lake", endpoint_url=moto_server.endpoint_url)}


def put(s3: Any, bucket: str, objects: list[tuple[str, bytes]]) -> None:
    for key, body in objects:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def lookup_bytes(lake: Lake, key: str) -> tuple[list[dict[str, Any]], int]:
    """One item's history and the bytes the lookup read to answer it."""
    counting = CountingFS(lake.fs)
    rows = lookups.item_history(Lake(lake.uri, counting.fs, lake.root), TABLE, key)
    return rows, counting.bytes_read


def test_the_lambda_compacts_a_firehose_day_and_lookups_read_the_compacted_figure(
        s3_lake: dict[str, Any], tmp_path: Path) -> None:
    yesterday = day(-1)
    raw = firehose_day(yesterday)
    put(s3_lake["s3"], s3_lake["bucket"], raw)
    # The same day on a local lake, compacted by the library (what `ddbtrail compact` does).
    local = Lake.open(str(tmp_path / "lake"))
    for key, body in raw:
        local.write_atomic(local.path(key.removeprefix("lake/")), body)
    reader = s3_lake["reader"]
    item = key_of(7)
    before, raw_bytes = lookup_bytes(reader, item)
    compact(local)
    _, local_bytes = lookup_bytes(local, item)

    handler = load_handler()
    planned = handler.handler({"step": "plan"}, Context())
    assert planned == {"partitions": [{"table_name": TABLE, "dt": yesterday}], "oversize": [],
                       "remaining": 0}
    done = handler.handler({"step": "partition", **planned["partitions"][0]}, Context())
    assert done["files_before"] == 48 and done["files_after"] == 1
    assert done["rows_before"] - done["rows_after"] == 5 * 5  # the redelivered rows

    after, compacted_bytes = lookup_bytes(reader, item)
    assert after == before and after
    assert compacted_bytes == local_bytes
    assert compacted_bytes * 10 < raw_bytes, (compacted_bytes, raw_bytes)
    files = reader.data_files(TABLE)
    assert is_compacted(files) and len(files) == 1
    # Run again: nothing is left to plan.
    assert handler.handler({"step": "plan"}, Context())["partitions"] == []


def test_the_plan_takes_closed_partitions_not_yet_compacted_oldest_first(
        s3_lake: dict[str, Any]) -> None:
    s3, bucket = s3_lake["s3"], s3_lake["bucket"]
    for offset in (-3, -2, -1, 0):
        put(s3, bucket, firehose_day(day(offset), files=3, rows_per_file=10, seed=offset))
    put(s3, bucket, [(k.replace(f"table_name={TABLE}", "table_name=Customers"), b)
                     for k, b in firehose_day(day(-1), files=2, rows_per_file=10)])
    # Older than the lookback window: left to `ddbtrail compact` (or a longer lookback).
    put(s3, bucket, firehose_day(day(-30), files=2, rows_per_file=10))
    handler = load_handler()
    handler.handler({"step": "partition", "table_name": TABLE, "dt": day(-3)}, Context())

    planned = handler.handler({"step": "plan"}, Context())
    assert planned["partitions"] == [{"table_name": TABLE, "dt": day(-2)},
                                     {"table_name": "Customers", "dt": day(-1)},
                                     {"table_name": TABLE, "dt": day(-1)}]
    longer = handler.handler({"step": "plan", "lookback_days": 60}, Context())
    assert longer["partitions"][0] == {"table_name": TABLE, "dt": day(-30)}
    # Today's partition is still written: the step refuses it, and plans never name it.
    with pytest.raises(Exception, match="not closed"):
        handler.handler({"step": "partition", "table_name": TABLE, "dt": day(0)}, Context())


def test_a_partition_above_the_memory_bound_is_named_not_read(
        s3_lake: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    put(s3_lake["s3"], s3_lake["bucket"], firehose_day(day(-1), files=4, rows_per_file=20))
    monkeypatch.setenv("MAX_PARTITION_BYTES", "10000")
    handler = load_handler()
    planned = handler.handler({"step": "plan"}, Context())
    assert planned["partitions"] == []
    [oversize] = planned["oversize"]
    assert oversize.startswith(f"{TABLE}/dt={day(-1)} (")
    with pytest.raises(Exception, match="over the 10,000"):
        handler.handler({"step": "partition", "table_name": TABLE, "dt": day(-1)}, Context())
    assert len(s3_lake["reader"].data_files(TABLE)) == 4  # untouched


def test_json_lines_are_compacted_by_the_same_code_and_weigh_more_against_memory(
        s3_lake: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from ddbtrail.core.flatten import row_bytes

    objects = []
    for key, body in firehose_day(day(-1), files=6, rows_per_file=20):
        rows = pq.read_table(pa.BufferReader(body)).to_pylist()
        data = gzip.compress(b"".join(row_bytes(r | {"table_name": TABLE, "dt": day(-1)})
                                      for r in rows))
        objects.append((key.replace(".parquet", ".jsonl.gz"), data))
    put(s3_lake["s3"], s3_lake["bucket"], objects)
    reader = s3_lake["reader"]
    size = sum(len(b) for _, b in objects)
    # Under the bound as bytes, over it weighted as Parquet (5x): named, not read.
    monkeypatch.setenv("MAX_PARTITION_BYTES", str(size * 2))
    assert load_handler().handler({"step": "plan"}, Context())["oversize"]
    monkeypatch.setenv("MAX_PARTITION_BYTES", str(size * 5))
    handler = load_handler()
    [part] = handler.handler({"step": "plan"}, Context())["partitions"]
    done = handler.handler({"step": "partition", **part}, Context())
    assert (done["files_before"], done["files_after"]) == (6, 1)
    assert done["rows_before"] - done["rows_after"] == 5  # file 3's redelivered slice
    [compacted] = reader.data_files(TABLE)
    assert compacted.path.endswith(".jsonl.gz") and is_compacted([compacted])
    rows = [json.loads(line) for line in gzip.decompress(
        s3_lake["s3"].get_object(Bucket=s3_lake["bucket"], Key=compacted.path.split("/", 1)[1])[
            "Body"].read()).splitlines()]
    assert [r["item_key"] for r in rows] == sorted(r["item_key"] for r in rows)
    assert len({r["event_id"] for r in rows}) == len(rows) == done["rows_after"]
