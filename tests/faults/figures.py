"""Figures of the fault and fuzz tests, collected for docs/reliability.md.

Each test calls ``record(scenario, ...)`` with what it did. The line is printed (see it
with ``pytest -s``) and, when ``DDBTRAIL_FIGURES`` names a file, appended to it as one
JSON line: ``python -m tests.faults.report`` sets it, runs the tests and sums the lines.
"""

from __future__ import annotations

import json
import os
from typing import Final

ENV: Final = "DDBTRAIL_FIGURES"
SEED_ENV: Final = "DDBTRAIL_FAULT_SEED"
FIELDS: Final = ("runs", "faults", "written", "lost", "duplicates_delivered",
                 "duplicates_after_dedup", "bad_inputs")


def seed(default: int) -> int:
    """The seed of a fault test: ``DDBTRAIL_FAULT_SEED`` plus ``default``, or ``default``."""
    extra = os.environ.get(SEED_ENV)
    return default + int(extra) if extra else default


def record(scenario: str, **counts: int) -> None:
    """Report one test's figures (keys from ``FIELDS``; missing ones count as 0)."""
    unknown = set(counts) - set(FIELDS)
    assert not unknown, f"unknown figure(s) {unknown}"
    line = json.dumps({"scenario": scenario, **{k: int(counts.get(k, 0)) for k in FIELDS}})
    print(f"figures: {line}")
    path = os.environ.get(ENV)
    if path:
        # One write with O_APPEND: lines from parallel xdist workers do not interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
