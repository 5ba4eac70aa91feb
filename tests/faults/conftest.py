"""Fixtures of the fault-injection tests (see tests/faults/ledger.py for the ground truth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddbtrail.lake.files import Lake

pytestmark = pytest.mark.integration


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.open(str(tmp_path / "lake"))


def no_sleep(_: float) -> None:
    """Retries and backoff without waiting: faults are injected, not waited out."""
