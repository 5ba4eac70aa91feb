"""Evidence end to end: a lake captured, backfilled, delivered twice, redriven, delivered
late and compacted verifies complete and intact (CLI and API); every kind of tampering,
and a batch lost after its receipt, makes verify exit 1 naming the table and the file,
digest or event id."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import ddbtrail as dt
from ddbtrail.capture.batch import CaptureSettings, capture_batch
from ddbtrail.capture.redrive import deliver_records
from ddbtrail.delivery.local import LocalDeliveryStream
from ddbtrail.evidence.receipts import LakeReceipts
from ddbtrail.lake.files import Lake
from ddbtrail.query import saved
from tests.cli import exit_code, run_cli
from tests.e2e.jobs_workload import create_table, workload

pytestmark = pytest.mark.e2e

DAY_MS = 86_400_000


def old_records(table: str, first: int, n: int, *, hours_ago: int = 30) -> tuple[list, str]:
    """GetRecords-shaped records of changes made ``hours_ago`` (a closed partition)."""
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2024-01-01T00:00:00"
    when = time.time() - hours_ago * 3600
    records = [{"eventID": f"late{i:04d}", "eventName": "INSERT", "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {"ApproximateCreationDateTime": when,
                             "Keys": {"pk": {"S": f"old{i}"}, "sk": {"N": str(i)}},
                             "NewImage": {"pk": {"S": f"old{i}"}, "sk": {"N": str(i)},
                                          "v": {"S": "x"}},
                             "SequenceNumber": str(5 * 10**20 + i), "SizeBytes": 20,
                             "StreamViewType": "NEW_AND_OLD_IMAGES"}}
               for i in range(first, first + n)]
    return records, arn


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "signing-key.pem"


@pytest.fixture(autouse=True)
def _signing_key(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBTRAIL_SIGNING_KEY", str(key_file))


@pytest.fixture(scope="module")
def healthy(moto_server: Any, tmp_path_factory: pytest.TempPathFactory,
            key_file: Path) -> tuple[Path, str]:
    """A lake that went through everything a healthy trail goes through; sealed."""
    os.environ["DDBTRAIL_SIGNING_KEY"] = str(key_file)
    ddb, url = moto_server.client("dynamodb"), moto_server.endpoint_url
    root = tmp_path_factory.mktemp("evidence") / "lake"
    table = create_table(ddb, stream=None)
    rng = random.Random(3)
    workload(ddb, table, rng, 30, keys=12)
    ddb.update_table(TableName=table, StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    base = ["--lake", str(root), "--endpoint-url", url]
    assert exit_code(["backfill", "--table", table, *base]) == 0  # SNAPSHOT rows
    workload(ddb, table, rng, 40, keys=12)
    assert exit_code(["capture", "--table", table, "--once", *base]) == 0
    # At-least-once: the checkpoints are lost and the whole stream is delivered again.
    shutil.rmtree(root / "_ddbtrail" / "checkpoints")
    assert exit_code(["capture", "--table", table, "--once", *base]) == 0
    lake = Lake.open(str(root))
    # A redrive of changes made yesterday, run twice (duplicates in a closed partition).
    records, arn = old_records(table, 0, 25)
    for _ in range(2):
        sink = LocalDeliveryStream(lake, fmt="parquet")
        deliver_records(records, arn, sink=sink, capture=CaptureSettings(table_name=table),
                        receipts=LakeReceipts(lake))
        sink.close()
    assert exit_code(["verify", "--lake", str(root), "--seal"]) == 0
    # Compaction replaces yesterday's files; its digest lists the duplicates it drops.
    assert exit_code(["compact", "--lake", str(root)]) == 0
    assert any(p.name.startswith("compacted-") for p in root.rglob("*.parquet"))
    # A late delivery: receipts written, rows still in the delivery buffer.
    late, arn = old_records(table, 100, 5, hours_ago=1)
    sink = LocalDeliveryStream(lake, fmt="parquet")
    result = capture_batch({"Records": [dict(r, eventSourceARN=arn) for r in late]},
                           sink=sink, settings=CaptureSettings(table_name=table),
                           receipts=LakeReceipts(lake))
    assert result.receipts and not result.failed
    waiting = dt.verify(str(root), seal=True, settle_seconds=3600)  # within Firehose's delay
    assert waiting.ok, waiting.findings
    sink.close()  # delivered
    assert dt.verify(str(root), seal=True).ok
    return root, table


def copy_of(healthy: tuple[Path, str], tmp_path: Path) -> Path:
    target = tmp_path / "lake"
    shutil.copytree(healthy[0], target)  # copy2 keeps modification times
    return target


def public_key(key_file: Path) -> str:
    return str(key_file.with_name("signing-key.pub.pem"))


def test_healthy_lake_is_complete_and_intact(healthy: tuple[Path, str], key_file: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    root, table = healthy
    code, out, err = run_cli(["verify", "--lake", str(root), "--public-key",
                              public_key(key_file)], capsys)
    assert (code, err) == (0, "")
    assert "complete and intact" in out and "FINDING" not in out
    report = dt.verify(str(root), public_key=public_key(key_file))
    assert report.ok and report.complete and report.intact
    kinds = {d["kind"] for d in _digests(root)}
    assert kinds == {"delivery", "compaction"}
    compaction = next(d for d in _digests(root) if d["kind"] == "compaction")
    assert len(compaction["removed_duplicates"]) == 25  # the redrive ran twice
    # Every source left receipts; the figures are the reconciliation query's.
    sources = {json.loads(p.read_text())["source"]
               for p in (root / "_ddbtrail" / "receipts").rglob("*.json")}
    assert sources == {"capture", "backfill", "redrive"}
    assert sum(d.received for d in report.days) == sum(d.in_lake for d in report.days) > 0
    window = {"table_name": table, "from": report.window[0], "to": report.window[1]}
    rows = saved.rows(saved.run("reconcile_receipts", window, lake=Lake.open(str(root))))
    assert [(r["day"], r["received"], r["in_lake"]) for r in rows] == [
        (d.day, d.received, d.in_lake) for d in report.days if d.received or d.in_lake]
    # ... and an independent count of the lake's distinct event ids.
    ids = {e for f in Lake.open(str(root)).data_files(table)
           for e in pq.read_table(f.path, columns=["event_id"]).column(0).to_pylist()}
    assert sum(d.in_lake for d in report.days) == len(ids)


def _digests(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((root / "_ddbtrail" / "digests").rglob(
        "*.json"))]


def _compacted(root: Path) -> Path:
    return next(p for p in root.rglob("compacted-*.parquet"))


def _rewrite(path: Path, rows: list[dict[str, Any]], like: Path | None = None) -> None:
    import pyarrow as pa

    schema = pq.read_schema(like or path)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def test_a_row_removed_from_a_file_is_named(healthy: tuple[Path, str], tmp_path: Path,
                                            key_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_of(healthy, tmp_path)
    path = _compacted(root)
    rows = pq.read_table(path).to_pylist()
    gone = rows.pop(3)
    _rewrite(path, rows)
    code, out, _ = run_cli(["verify", "--lake", str(root), "--public-key",
                            public_key(key_file)], capsys)
    assert code == 1
    rel = str(path.relative_to(root))
    assert f"file_modified: {rel}" in out and "24 rows, digest says 25" in out
    assert f"received_not_in_lake: event {gone['event_id']}" in out
    assert healthy[1] in out


def test_a_changed_value_is_named(healthy: tuple[Path, str], tmp_path: Path,
                                  key_file: Path) -> None:
    root = copy_of(healthy, tmp_path)
    path = next(p for p in root.rglob("*.parquet") if "compacted-" not in p.name)
    rows = pq.read_table(path).to_pylist()
    rows[0]["new_image"] = '{"forged": true}'
    _rewrite(path, rows)
    report = dt.verify(str(root), public_key=public_key(key_file))
    assert not report.ok and report.complete and not report.intact
    [finding] = report.findings
    assert (finding.table, finding.kind, finding.subject) == (
        healthy[1], "file_modified", str(path.relative_to(root)))
    assert "row values differ" in finding.detail


def test_a_deleted_file_is_named(healthy: tuple[Path, str], tmp_path: Path,
                                 key_file: Path) -> None:
    root = copy_of(healthy, tmp_path)
    path = _compacted(root)
    lost = set(pq.read_table(path, columns=["event_id"]).column(0).to_pylist())
    path.unlink()
    report = dt.verify(str(root), public_key=public_key(key_file))
    kinds = {(f.kind, f.subject) for f in report.findings}
    assert ("file_deleted", str(path.relative_to(root))) in kinds
    assert {s.removeprefix("event ") for k, s in kinds if k == "received_not_in_lake"} == lost


def test_a_forged_file_is_named(healthy: tuple[Path, str], tmp_path: Path,
                                key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_of(healthy, tmp_path)
    source = _compacted(root)
    forged = source.with_name("forged.parquet")
    rows = pq.read_table(source).to_pylist()[:2]
    for r in rows:
        r["event_id"] = "forged-" + r["event_id"]
    _rewrite(forged, rows, like=source)
    an_hour_ago = time.time() - 7200
    os.utime(forged, (an_hour_ago, an_hour_ago))  # backdated into the sealed hours
    code, out, _ = run_cli(["verify", "--lake", str(root), "--public-key",
                            public_key(key_file)], capsys)
    assert code == 1
    assert f"file_added: {forged.relative_to(root)}" in out
    assert "in_lake_without_receipt: event forged-" in out


def test_a_deleted_or_edited_digest_is_named(healthy: tuple[Path, str], tmp_path: Path,
                                             key_file: Path) -> None:
    root = copy_of(healthy, tmp_path)
    by_sequence = {json.loads(p.read_text())["sequence"]: p
                   for p in (root / "_ddbtrail" / "digests").rglob("*.json")}
    assert len(by_sequence) >= 3
    by_sequence[1].unlink()
    report = dt.verify(str(root), public_key=public_key(key_file))
    after = str(by_sequence[2].relative_to(root))
    found = {(f.kind, f.subject): f.detail for f in report.findings}
    assert "sequences 1..1 are missing" in found[("digest_missing", after)]
    assert ("chain_broken", after) in found

    root = copy_of(healthy, tmp_path / "edited")
    edited = sorted((root / "_ddbtrail" / "digests").rglob("*.json"))[1]
    doc = json.loads(edited.read_text())
    doc["files"] = doc["files"][1:] if doc["files"] else [{"path": "x", "sha256": "0"}]
    edited.write_text(json.dumps(doc))
    report = dt.verify(str(root), public_key=public_key(key_file))
    assert any(f.kind == "digest_invalid" and f.subject == str(edited.relative_to(root))
               for f in report.findings)


def test_a_wrong_public_key_verifies_nothing(healthy: tuple[Path, str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from ddbtrail.evidence.signing import create_key, public_path

    other = create_key(tmp_path / "other.pem")
    code, out, _ = run_cli(["verify", "--lake", str(healthy[0]), "--public-key",
                            str(public_path(other))], capsys)
    assert code == 1 and "digest_invalid" in out


def test_a_batch_lost_after_its_receipt_is_named(healthy: tuple[Path, str], tmp_path: Path,
                                                 key_file: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_of(healthy, tmp_path)
    lake = Lake.open(str(root))
    records, arn = old_records(healthy[1], 500, 3, hours_ago=2)
    sink = LocalDeliveryStream(lake, fmt="parquet")
    result = capture_batch({"Records": [dict(r, eventSourceARN=arn) for r in records]},
                           sink=sink, settings=CaptureSettings(table_name=healthy[1]),
                           receipts=LakeReceipts(lake))
    assert result.receipts  # Firehose accepted the batch ...
    sink._buffers.clear()   # ... and lost it
    code, out, _ = run_cli(["verify", "--lake", str(root), "--public-key",
                            public_key(key_file)], capsys)
    assert code == 1
    for i in range(500, 503):
        assert f"{healthy[1]}: received_not_in_lake: event late{i:04d}" in out
    assert "INCOMPLETE" in out


def test_usage_errors_exit_2(healthy: tuple[Path, str], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["verify", "--lake", str(healthy[0]), "--public-key",
                            str(tmp_path / "nope.pem")], capsys)
    assert code == 2 and "--public-key" in err
