"""S3 write failures under the local delivery stream, against a ground-truth log.

The lake's pyarrow filesystem fails a seeded share of directory creations and object
writes (data files, checkpoints, the error output alike). The runner must keep rows
buffered, never checkpoint past rows that are not written, and a restart (a new process:
the buffer is gone) must read them again from the stream.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from ddbtrail.capture.runner import RunnerSettings
from ddbtrail.capture.runner.pipeline import build_capture
from ddbtrail.core.exceptions import DdbtrailError
from ddbtrail.lake.files import Lake
from tests.faults.conftest import no_sleep
from tests.faults.figures import record, seed
from tests.faults.ledger import Ledger, make_table, verify

pytestmark = pytest.mark.integration


class FlakyHandler(pafs.FileSystemHandler):
    """A pyarrow filesystem (wrapping ``inner``) whose writes fail at random, like S3 can."""

    def __init__(self, inner: pafs.FileSystem, rng: random.Random, p: float) -> None:
        self.inner = inner
        self.rng = rng
        self.p = p
        self.failures = 0
        self.writes = 0

    def _maybe_fail(self, what: str, path: str) -> None:
        if self.rng.random() < self.p:
            self.failures += 1
            raise OSError(f"injected: {what} {path}: SlowDown (503)")

    def get_type_name(self) -> str:
        return "flaky"

    def equals(self, other: Any) -> bool:
        return other is self

    def normalize_path(self, path: str) -> str:
        return str(self.inner.normalize_path(path))

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return list(self.inner.get_file_info(paths))

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return list(self.inner.get_file_info(selector))

    def create_dir(self, path: str, recursive: bool) -> None:
        self._maybe_fail("create_dir", path)
        self.inner.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.inner.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.inner.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("not allowed")

    def delete_file(self, path: str) -> None:
        self.inner.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.inner.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.inner.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        return self.inner.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self.inner.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        self.writes += 1
        self._maybe_fail("PutObject", path)
        return self.inner.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        return self.inner.open_append_stream(path, metadata=metadata)


def test_failed_lake_writes_stay_buffered_and_restarts_lose_nothing(
        moto_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed(7001))
    ddb, table, _ = make_table(moto_server, "s3-faults")
    streams = moto_server.client("dynamodbstreams")
    root = str(tmp_path / "lake")
    handler = FlakyHandler(pafs.LocalFileSystem(), rng, p=0.4)
    flaky_lake = Lake(uri=root, fs=pafs.PyFileSystem(handler), root=root)
    ledger = Ledger(ddb, table, rng)
    settings = RunnerSettings(batch_size=20, checkpoint_interval=0, poll_interval=0,
                              max_retry_attempts=-1, retry_base_delay=0.001, retry_max_delay=0.005)
    runs = crashes = refused = 0
    for _ in range(3):  # writes keep coming; each round runs until one run ends cleanly
        ledger.write(100)
        for _attempt in range(200):
            runs += 1
            run = build_capture(table, flaky_lake, ddb=ddb, streams=streams, fmt="parquet",
                                settings=settings, buffer_seconds=0)
            # A small buffer: while writes fail, it fills and refuses records per entry
            # (ServiceUnavailableException), which the capture path must retry too.
            run.delivery.max_buffered_bytes = 45_000
            # The capture path's Firehose backoff, without the waiting (faults are injected).
            run.delivery.sleep = no_sleep
            try:
                run.run(once=True)
            except DdbtrailError:
                crashes += 1  # the process exits; its buffer is gone
                continue
            finally:
                refused += run.delivery.stats.refused_records
            break
        else:
            pytest.fail("the capture never completed a run")

    v = verify(Lake.open(root), ledger)
    record("S3 write failures in the local delivery stream", runs=runs,
           faults=handler.failures, written=v.written, lost=v.lost,
           duplicates_delivered=v.duplicates_delivered,
           duplicates_after_dedup=v.duplicates_after_dedup)
    assert handler.failures > 0 and crashes > 0 and refused > 0
    assert v.lost == 0
    assert v.out_of_order == 0
    assert v.events == v.written
    assert v.duplicates_after_dedup == 0
    assert v.disagreeing_copies == 0
