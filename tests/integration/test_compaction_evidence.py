"""Compaction in AWS on a lake the stack seals (evidence on): the compaction Lambda leaves
the old files and a pending-replacement note; the digest function's seal (the only signer)
writes the compaction digest, deletes the old files and the note; ``ddbtrail.verify`` then
finds the lake complete and intact. Both handlers are called as Lambda calls them, on moto's
S3; the digest function's KMS key is stood in for by a local Ed25519 key."""

from __future__ import annotations

import datetime as dt_mod
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ddbtrail as dt
from ddbtrail.core.exceptions import LakeError
from ddbtrail.core.timefmt import parse_timestamp
from ddbtrail.evidence import Ed25519FileSigner, seal, verify_integrity
from ddbtrail.evidence.digests import load_chain
from ddbtrail.evidence.receipts import LakeReceipts, ReceiptChange, write_receipts
from ddbtrail.lake.boto3fs import boto3_lake
from ddbtrail.lake.compact import compact_one, is_compacted, plan, skipped
from ddbtrail.lake.files import Lake
from ddbtrail.lake.replacements import pending_replacements
from ddbtrail.query import lookups
from tests.cli import run_cli
from tests.integration import test_compaction_lambda
from tests.integration.test_compaction_lambda import (
    TABLE,
    Context,
    day,
    firehose_day,
    key_of,
    load_handler,
    put,
)

DIGEST_HANDLER = Path(__file__).parents[2] / "handlers" / "seal_digests.py"
pytestmark = pytest.mark.integration
s3_lake = test_compaction_lambda.s3_lake  # the fixture: a bucket on moto, handler env


def load_digest_handler(signer: Ed25519FileSigner, monkeypatch: pytest.MonkeyPatch,
                        ) -> ModuleType:
    """handlers/seal_digests.py imported as Lambda does, its KMS signer swapped for ours."""
    monkeypatch.setenv("SIGNING_KEY_ID", "alias/ddbtrail-digests")
    spec = importlib.util.spec_from_file_location("seal_digests", DIGEST_HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("seal_digests", None)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "SIGNER", signer)
    return module


def receipts_for(lake: Lake, objects: list[tuple[str, bytes]], dt: str) -> None:
    """The capture's receipts of the day's changes, received as they were ingested."""
    changes = {}
    for _, body in objects:
        for r in pq.read_table(pa.BufferReader(body)).to_pylist():
            changes[r["event_id"]] = ReceiptChange(TABLE, dt, r["event_id"], r["item_key"],
                                                   r["action"], r["sequence_number"])
    write_receipts(LakeReceipts(lake), list(changes.values()), source="capture",
                   received_ms=parse_timestamp(f"{dt}T00:00:02.000Z"))


def hours_later(hours: int) -> dt_mod.datetime:
    return dt_mod.datetime.now(dt_mod.UTC) + dt_mod.timedelta(hours=hours)


@pytest.fixture
def sealed_day(s3_lake: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> dict[str, Any]:
    """Yesterday's Firehose files with their receipts, sealed by the digest function's
    code; the compaction function's environment has EVIDENCE on, as the stack sets it."""
    yesterday = day(-1)
    raw = firehose_day(yesterday, files=12, rows_per_file=40)
    put(s3_lake["s3"], s3_lake["bucket"], raw)
    reader = s3_lake["reader"]
    receipts_for(reader, raw, yesterday)
    signer = Ed25519FileSigner(tmp_path / "signing-key.pem", create=True)
    digests = load_digest_handler(signer, monkeypatch)
    # An hour on: the files' hour is closed and settled.
    assert seal(digests.LAKE, signer=digests.SIGNER, now=hours_later(2)).files == 12
    monkeypatch.setenv("EVIDENCE", "true")
    return {**s3_lake, "dt": yesterday, "signer": signer, "digests": digests,
            "compaction": load_handler(), "lake": digests.LAKE}


def verify(env: dict[str, Any], signer: Ed25519FileSigner) -> Any:
    return dt.verify(dt.Lake.open(env["reader"].uri, endpoint_url=env["s3"].meta.endpoint_url),
                     public_key=signer.public_pem, settle_seconds=0)


def test_the_digest_function_completes_the_compaction_and_the_lake_verifies(
        sealed_day: dict[str, Any]) -> None:
    reader = sealed_day["reader"]
    item = key_of(7)
    before = lookups.item_history(reader, TABLE, item)
    old = {f.path for f in reader.data_files(TABLE)}
    compaction = sealed_day["compaction"]
    [part] = compaction.handler({"step": "plan"}, Context())["partitions"]
    done = compaction.handler({"step": "partition", **part}, Context())
    assert (done["files_before"], done["files_after"]) == (12, 1)

    # The Lambda deleted nothing and signed nothing: old and new files, one note.
    files = {f.path for f in reader.data_files(TABLE)}
    assert old < files and len(files - old) == 1
    [note] = pending_replacements(reader)
    assert set(note.replaced) == old and set(note.written) == files - old
    assert lookups.item_history(reader, TABLE, item) == before  # dedup by event_id
    assert [d.kind for d in load_chain(reader, TABLE).digests] == ["delivery"] * len(
        load_chain(reader, TABLE).digests)
    # Not compacted again before it is sealed.
    assert compaction.handler({"step": "plan"}, Context())["partitions"] == []
    again = compaction.handler({"step": "partition", **part}, Context())
    assert again["files_after"] is None and len(pending_replacements(reader)) == 1

    # The next hourly seal, through the digest handler, completes it.
    digests = sealed_day["digests"]
    report = seal(digests.LAKE, signer=digests.SIGNER, now=hours_later(4))
    assert (report.replacements, report.failed) == (1, [])
    kinds = [d.kind for d in load_chain(reader, TABLE).digests]
    assert kinds[-1] == "compaction" and kinds.count("compaction") == 1
    compacted = reader.data_files(TABLE)
    assert is_compacted(compacted) and {f.path for f in compacted} == files - old
    assert pending_replacements(reader) == []
    assert lookups.item_history(reader, TABLE, item) == before

    report = verify(sealed_day, sealed_day["signer"])
    assert report.complete and report.intact, report.findings
    assert report.days and all(d.complete for d in report.days)
    # The handler itself runs clean on the completed lake (nothing pending, nothing failed).
    assert digests.handler({}, Context())["replacements"] == 0


def test_a_seal_that_stops_between_steps_is_completed_by_the_next(
        sealed_day: dict[str, Any]) -> None:
    reader, lake, signer = sealed_day["reader"], sealed_day["lake"], sealed_day["signer"]
    compaction = sealed_day["compaction"]
    compaction.handler({"step": "partition", "table_name": TABLE, "dt": sealed_day["dt"]},
                       Context())
    [note] = pending_replacements(reader)

    # The digest is written, then the seal dies (a Lambda timeout) on the first delete.
    class Dying:
        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def delete_object(self, **kwargs: Any) -> None:
            raise SystemExit("Task timed out after 900.00 seconds")

    dying = boto3_lake(lake.uri, Dying(sealed_day["s3"]))
    with pytest.raises(SystemExit):
        seal(dying, signer=signer, now=hours_later(4))
    assert [d.kind for d in load_chain(reader, TABLE).digests][-1] == "compaction"
    assert pending_replacements(reader) == [note]
    assert not is_compacted(reader.data_files(TABLE))  # old files still there
    # The partition is still not compacted again meanwhile.
    assert plan(reader, today=day(0)) == []
    assert [s.reason for s in skipped(reader, today=day(0))] == ["pending"]

    # Next hour: no second digest, the old files and the note go.
    report = seal(lake, signer=signer, now=hours_later(5))
    assert (report.replacements, report.failed) == (1, [])
    assert [d.kind for d in load_chain(reader, TABLE).digests].count("compaction") == 1
    assert is_compacted(reader.data_files(TABLE)) and pending_replacements(reader) == []
    report = verify(sealed_day, signer)
    assert report.complete and report.intact, report.findings


def test_a_note_waits_while_an_old_file_is_not_sealed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a folder lake, whose file times can be set: a late file of the day arrives after
    the last seal and is compacted with the rest; the note waits until it is sealed."""
    import os

    lake = Lake.open(str(tmp_path / "lake"))
    signer = Ed25519FileSigner(tmp_path / "key.pem", create=True)
    now = dt_mod.datetime.now(dt_mod.UTC)
    t0 = now.replace(minute=0, second=0, microsecond=0) - dt_mod.timedelta(hours=10)

    def land(objects: list[tuple[str, bytes]], at: dt_mod.datetime) -> None:
        for key, body in objects:
            path = lake.path(key.removeprefix("lake/"))
            lake.write_atomic(path, body)
            os.utime(path, (at.timestamp(), at.timestamp()))

    land(firehose_day(day(-1), files=4, rows_per_file=10), t0 + dt_mod.timedelta(minutes=10))
    assert seal(lake, signer=signer, now=t0 + dt_mod.timedelta(hours=1)).files == 4
    land(firehose_day(day(-1), files=1, rows_per_file=5, seed=9),
         t0 + dt_mod.timedelta(hours=1, minutes=30))
    result = compact_one(lake, TABLE, day(-1), defer_delete=True)
    assert result.files_after == 1 and len(lake.data_files(TABLE)) == 6
    at = (t0 + dt_mod.timedelta(hours=1, minutes=40)).timestamp()
    os.utime(result.new_files[0], (at, at))  # in an hour the next seal closes

    # `ddbtrail compact` would leave it alone too, and says why (run for real, it seals
    # first, which completes the note).
    code, out, _ = run_cli(["compact", "--lake", lake.uri, "--dry-run"], capsys)
    assert code == 0 and "Would compact 0 partition(s)" in " ".join(out.split())
    assert "1 partition(s) whose last compaction awaits its signed digest" in " ".join(
        out.split())
    early = seal(lake, signer=signer, now=t0 + dt_mod.timedelta(hours=1, minutes=59))
    assert (early.replacements, early.failed) == (0, [])
    assert len(pending_replacements(lake)) == 1 and len(lake.data_files(TABLE)) == 6
    later = seal(lake, signer=signer, now=t0 + dt_mod.timedelta(hours=3))
    # The late file as a delivery; the compacted file only in the compaction digest.
    assert (later.replacements, later.files) == (1, 1)
    assert is_compacted(lake.data_files(TABLE)) and pending_replacements(lake) == []
    integrity = verify_integrity(lake, public_key=signer.public_pem, now=now)
    assert integrity.intact, integrity.findings


def test_without_evidence_compact_one_deletes_and_writes_no_note(
        sealed_day: dict[str, Any]) -> None:
    reader = sealed_day["reader"]
    result = compact_one(reader, TABLE, sealed_day["dt"])
    assert result.files_after == 1 and is_compacted(reader.data_files(TABLE))
    assert pending_replacements(reader) == []


def test_a_compaction_that_lost_an_event_is_refused_and_its_old_files_kept(
        sealed_day: dict[str, Any]) -> None:
    """The seal signs a pending compaction only if its new files hold every event of the
    old ones: a written file short of a row fails the digest function's run (its alarm),
    naming the note and the event, and nothing is deleted."""
    reader, s3, bucket = sealed_day["reader"], sealed_day["s3"], sealed_day["bucket"]
    compaction = sealed_day["compaction"]
    compaction.handler({"step": "partition", "table_name": TABLE, "dt": sealed_day["dt"]},
                       Context())
    [note] = pending_replacements(reader)
    [written] = note.written
    key = written.split("/", 1)[1]
    rows = pq.read_table(pa.BufferReader(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    lost = rows.column("event_id")[0].as_py()
    sink = pa.BufferOutputStream()
    pq.write_table(rows.slice(1), sink)
    s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue().to_pybytes())

    old = set(note.replaced)
    digests = sealed_day["digests"]
    report = seal(digests.LAKE, signer=digests.SIGNER, now=hours_later(4))
    [refused] = report.failed
    assert (refused.table, refused.kind, report.replacements) == (
        TABLE, "replacement_refused", 0)
    assert lost in refused.detail and refused.subject.endswith(".json")
    assert pending_replacements(reader) == [note]
    assert old <= {f.path for f in reader.data_files(TABLE)}
    assert "compaction" not in [d.kind for d in load_chain(reader, TABLE).digests]
    with pytest.raises(LakeError, match=lost):
        digests.handler({}, Context())
