"""Fixtures shared by every test layer. Sample events live in tests/events/."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).parent / "events"

# Never touch a real account from tests; moto needs this for DynamoDB Streams in-process.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
})
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture
def load_event() -> Callable[[str], Any]:
    """Load a sample event from tests/events/ by file name."""

    def load(name: str) -> Any:
        return json.loads((EVENTS / name).read_text(encoding="utf-8"))

    return load


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Any]:
    """moto's server on a free loopback port, shared by a test session (per xdist worker)."""
    from ddbtrail.local.embedded import EmbeddedAWS

    with EmbeddedAWS() as aws:
        yield aws


@pytest.fixture(autouse=True)
def _ddbtrail_logger_restored() -> Iterator[None]:
    """The Lambda handlers copy Powertools' handler onto the ``ddbtrail`` logger when they
    are imported (right in Lambda); in a test that handler writes to that test's captured
    stream, closed afterwards, so later tests would log into a closed file."""
    log = logging.getLogger("ddbtrail")
    handlers, level, propagate = list(log.handlers), log.level, log.propagate
    yield
    log.handlers[:] = handlers
    log.setLevel(level)
    log.propagate = propagate
