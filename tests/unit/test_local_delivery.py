"""The local delivery stream: Firehose's contract and limits, buffering, partitions, files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.core.exceptions import DeliveryFailed, LakeError
from ddbtrail.core.flatten import row_bytes
from ddbtrail.core.row import arrow_schema
from ddbtrail.delivery.firehose import MAX_RECORD_BYTES
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.lake.files import Lake

STREAM = "s1"


def make_row(n: int, *, table: str = "orders", day: str = "2024-05-01") -> dict[str, Any]:
    ts = 1714521600000 + n
    return {
        "schema_version": 1, "event_id": f"e{n}", "sequence_number": str(1000 + n),
        "action": "INSERT", "item_key": json.dumps({"Id": n}), "keys": json.dumps({"Id": n}),
        "old_image": None, "new_image": json.dumps({"Id": n, "v": "x" * (n % 5)}),
        "type_hints": None, "changed_attributes": ["Id", "v"], "timestamp": ts,
        "event_time": f"{day}T00:00:00.000Z", "ingested_at": f"{day}T00:00:01.000Z",
        "stream_view_type": "NEW_AND_OLD_IMAGES", "size_bytes": 10, "ttl_delete": False,
        "user_identity": None, "event_source": "aws:dynamodb", "aws_region": "us-east-1",
        "spill_uri": None, "snapshot_id": None, "table_name": table, "dt": day,
    }


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def stream(tmp_path: Path, **kw: Any) -> LocalDeliveryStream:
    return LocalDeliveryStream(Lake.open(str(tmp_path / "lake")), name=STREAM, **kw)


def put(ds: LocalDeliveryStream, datas: list[bytes]) -> dict[str, Any]:
    return ds.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": d} for d in datas])


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def data_files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "lake").rglob("*") if p.is_file()
                  and "_ddbtrail" not in p.parts)


# ------------------------------------------------------------------ limits


def test_more_than_500_records_is_rejected_as_a_whole(tmp_path: Path) -> None:
    ds = stream(tmp_path)
    with pytest.raises(ClientError) as exc:
        put(ds, [row_bytes(make_row(i)) for i in range(501)])
    assert error_code(exc) == "ValidationException"
    assert ds.pending_rows == 0


def test_record_over_1000_kib_is_rejected_and_nothing_of_the_call_kept(tmp_path: Path) -> None:
    ds = stream(tmp_path)
    small = row_bytes(make_row(1))
    with pytest.raises(ClientError) as exc:
        put(ds, [small, b"x" * (MAX_RECORD_BYTES + 1)])
    assert error_code(exc) == "ValidationException"
    assert "records.2" in str(exc.value)
    assert ds.pending_rows == 0
    # Exactly at the limit is fine (the Data blob may be 1,024,000 bytes).
    row = make_row(2)
    row["new_image"] = json.dumps({"Id": 2, "pad": ""})
    base = len(row_bytes(row))
    row["new_image"] = json.dumps({"Id": 2, "pad": "y" * (MAX_RECORD_BYTES - base)})
    exact = row_bytes(row)
    assert len(exact) == MAX_RECORD_BYTES
    assert put(ds, [exact])["FailedPutCount"] == 0


def test_request_over_4_mib_is_rejected(tmp_path: Path) -> None:
    ds = stream(tmp_path)
    with pytest.raises(ClientError) as exc:
        put(ds, [b"y" * (900 * 1024)] * 5)
    assert error_code(exc) == "InvalidArgumentException"


def test_wrong_stream_name_and_empty_batch(tmp_path: Path) -> None:
    ds = stream(tmp_path)
    with pytest.raises(ClientError) as exc:
        ds.put_record_batch(DeliveryStreamName="other", Records=[{"Data": b"{}\n"}])
    assert error_code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        put(ds, [])
    assert error_code(exc) == "ValidationException"


# ------------------------------------------------------------------ rows and partitions


def test_packed_records_are_split_and_routed_to_their_partitions(tmp_path: Path) -> None:
    ds = stream(tmp_path, fmt="jsonl")
    a = [make_row(i, table="orders", day="2024-05-01") for i in range(3)]
    b = [make_row(i, table="orders", day="2024-05-02") for i in range(3, 5)]
    c = [make_row(9, table="users", day="2024-05-01")]
    packed = b"".join(row_bytes(r) for r in a)
    resp = put(ds, [packed, row_bytes(b[0]) + row_bytes(b[1]), row_bytes(c[0])])
    assert resp["FailedPutCount"] == 0
    assert len(resp["RequestResponses"]) == 3
    assert all("RecordId" in r for r in resp["RequestResponses"])
    assert ds.flush() == 6
    files = data_files(tmp_path)
    rels = sorted(str(p.relative_to(tmp_path / "lake").parent) for p in files)
    assert rels == ["table_name=orders/dt=2024-05-01", "table_name=orders/dt=2024-05-02",
                    "table_name=users/dt=2024-05-01"]
    for f in files:
        assert f.name.startswith(f"{STREAM}-1-")
        assert f.name.endswith(".jsonl")
        lines = f.read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        table = f.parent.parent.name.split("=")[1]
        day = f.parent.name.split("=")[1]
        assert all(r["table_name"] == table and r["dt"] == day for r in rows)
    got = {json.loads(line)["event_id"] for f in files for line in f.read_text().splitlines()}
    assert got == {r["event_id"] for r in a + b + c}


def test_parquet_output_is_snappy_with_the_row_schema_and_no_partition_columns(
        tmp_path: Path) -> None:
    ds = stream(tmp_path, fmt="parquet")
    rows = [make_row(i) for i in range(10)]
    rows[3]["changed_attributes"] = None
    rows[4]["type_hints"] = json.dumps({"/new_image/b": "B"})
    put(ds, [b"".join(row_bytes(r) for r in rows)])
    ds.flush()
    [f] = data_files(tmp_path)
    assert f.suffix == ".parquet"
    meta = pq.ParquetFile(f).metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"
    table = pq.read_table(f)
    assert table.schema.equals(arrow_schema(include_partitions=False), check_metadata=False)
    expected = [{k: v for k, v in r.items() if k not in ("table_name", "dt")} for r in rows]
    assert table.to_pylist() == expected


def test_gzip_jsonl(tmp_path: Path) -> None:
    ds = stream(tmp_path, fmt="jsonl", gzip_jsonl=True)
    put(ds, [row_bytes(make_row(1))])
    ds.flush()
    [f] = data_files(tmp_path)
    assert f.name.endswith(".jsonl.gz")
    assert json.loads(gzip.decompress(f.read_bytes()))["event_id"] == "e1"


def test_unroutable_rows_go_to_the_error_output_and_the_rest_is_delivered(
        tmp_path: Path) -> None:
    ds = stream(tmp_path, fmt="parquet")
    bad_dt = dict(make_row(2), dt="May 1st")
    wrong_type = dict(make_row(3), timestamp="soon")
    data = (row_bytes(make_row(1)) + b"not json\n" + row_bytes(bad_dt)
            + row_bytes(wrong_type))
    assert put(ds, [data])["FailedPutCount"] == 0
    assert ds.flush() == 1
    [good] = data_files(tmp_path)
    assert pq.read_table(good).column("event_id").to_pylist() == ["e1"]
    errors = list((tmp_path / "lake" / "_ddbtrail" / "delivery-errors").rglob("*.jsonl"))
    reasons = [json.loads(line) for f in errors for line in f.read_text().splitlines()]
    assert len(reasons) == 3
    assert any("not JSON" in r["errorMessage"] for r in reasons)
    assert any("dt 'May 1st'" in r["errorMessage"] for r in reasons)
    assert any("'e3'" in r["errorMessage"] and "Parquet" in r["errorMessage"] for r in reasons)
    assert ds.stats.error_rows == 3


# ------------------------------------------------------------------ buffering


def test_buffers_until_size(tmp_path: Path) -> None:
    one = len(row_bytes(make_row(1)))
    ds = stream(tmp_path, fmt="jsonl", buffer_bytes=one * 3, buffer_seconds=3600)
    put(ds, [row_bytes(make_row(1)), row_bytes(make_row(2))])
    assert data_files(tmp_path) == []
    assert ds.pending_rows == 2
    put(ds, [row_bytes(make_row(3))])
    [f] = data_files(tmp_path)
    assert len(f.read_text().splitlines()) == 3
    assert ds.pending_rows == 0


def test_buffers_until_interval(tmp_path: Path) -> None:
    clock = Clock()
    ds = stream(tmp_path, fmt="jsonl", buffer_seconds=60, clock=clock)
    put(ds, [row_bytes(make_row(1))])
    clock.t = 59
    ds.poll()
    assert data_files(tmp_path) == []
    clock.t = 60
    ds.poll()
    assert len(data_files(tmp_path)) == 1


# ------------------------------------------------------------------ write failures


class FlakyLake(Lake):
    """A lake whose writes fail while ``broken`` is set (per instance)."""

    def set_broken(self, broken: bool) -> None:
        object.__setattr__(self, "broken", broken)  # Lake is a frozen dataclass

    def write_atomic(self, path: str, data: bytes) -> None:
        if getattr(self, "broken", False):
            raise LakeError(f"lake {self.uri}: cannot write {path} (disk full)")
        super().write_atomic(path, data)


def flaky_lake(tmp_path: Path) -> FlakyLake:
    base = Lake.open(str(tmp_path / "lake"))
    lake = FlakyLake(base.uri, base.fs, base.root)
    lake.set_broken(True)
    return lake


def test_failed_write_keeps_rows_and_flush_raises_until_it_works(tmp_path: Path) -> None:
    lake = flaky_lake(tmp_path)
    ds = LocalDeliveryStream(lake, name=STREAM, fmt="parquet", buffer_bytes=1)
    # The size trigger fires during the call; the write fails, yet the records are accepted
    # and kept (Firehose keeps data while its destination is down).
    resp = put(ds, [row_bytes(make_row(i)) for i in range(4)])
    assert resp["FailedPutCount"] == 0
    assert ds.pending_rows == 4
    with pytest.raises(DeliveryFailed, match="4 rows stay buffered"):
        ds.flush()
    assert data_files(tmp_path) == []
    lake.set_broken(False)
    assert ds.flush() == 4
    [f] = data_files(tmp_path)
    assert sorted(pq.read_table(f).column("event_id").to_pylist()) == ["e0", "e1", "e2", "e3"]


def test_full_buffer_refuses_records_per_entry_and_capture_reports_them(tmp_path: Path) -> None:
    lake = flaky_lake(tmp_path)
    one = len(row_bytes(make_row(1)))
    ds = LocalDeliveryStream(lake, name=STREAM, buffer_bytes=1, max_buffered_bytes=one * 2)
    resp = put(ds, [row_bytes(make_row(i)) for i in range(3)])
    assert resp["FailedPutCount"] == 1
    assert resp["RequestResponses"][2]["ErrorCode"] == "ServiceUnavailableException"
    assert ds.pending_rows == 2


def test_capture_batch_delivers_through_the_local_stream(tmp_path: Path, load_event: Any) -> None:
    """The capture Lambda's code path, unchanged, writes the lake through the stand-in."""
    ds = stream(tmp_path, fmt="jsonl")
    event = load_event("sam-cli-dynamodb-update.json")
    result = capture_batch(event, sink=ds, settings=CaptureSettings(table_name="demo"))
    assert result.response() == {"batchItemFailures": []}
    ds.close()
    rows = [json.loads(line) for f in data_files(tmp_path) for line in f.read_text().splitlines()]
    assert sorted(r["event_id"] for r in rows) == sorted(r["eventID"] for r in event["Records"])
    with pytest.raises(ClientError):
        put(ds, [row_bytes(make_row(1))])  # closed
