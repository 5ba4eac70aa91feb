"""Backoff with full jitter and a token bucket: how every job paces its calls to AWS."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ddbtrail.core.exceptions import InvalidArgument


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by a deadline."""

    max_attempts: int = 8
    base_delay: float = 0.1
    max_delay: float = 5.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay, self.base_delay * (2 ** attempt)))


class TokenBucket:
    """Tokens refill at ``rate`` per second up to ``burst``; ``take`` waits for them.

    ``take(n)`` may drive the balance negative (debt) so that a cost known only after
    the fact, such as a Scan page's consumed capacity, is paid by waiting later.
    Thread-safe.
    """

    def __init__(self, rate: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise InvalidArgument("rate", rate, "must be greater than 0")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def wait(self) -> float:
        """Block until the balance is positive; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens > 0:
                    return waited
                delay = -self._tokens / self.rate + 1e-3
            self._sleep(delay)
            waited += delay

    def take(self, n: float = 1.0) -> float:
        """Wait for ``n`` tokens (at most ``burst`` are needed up front), then spend
        them. Returns the seconds waited."""
        waited = 0.0
        need = min(n, self.burst)
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= need:
                    self._tokens -= n
                    return waited
                delay = (need - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay

    def charge(self, n: float) -> None:
        """Spend ``n`` tokens now, going into debt if needed (paid by the next wait)."""
        with self._lock:
            self._refill()
            self._tokens -= n


def parse_rate(text: str) -> float:
    """``"50"``, ``"50/s"`` or ``"3000/min"`` -> items per second. Raises InvalidArgument."""
    raw = text.strip().lower()
    per = 1.0
    for suffix, secs in (("/s", 1.0), ("/sec", 1.0), ("/m", 60.0), ("/min", 60.0)):
        if raw.endswith(suffix):
            raw, per = raw[: -len(suffix)], secs
            break
    try:
        value = float(raw) / per
    except ValueError:
        raise InvalidArgument("rate", text, "expected a number per second, e.g. 50/s") from None
    if not value > 0:
        raise InvalidArgument("rate", text, "must be greater than 0")
    return value


# AWS error codes that retrying cannot fix: the request names something missing, is not
# allowed, or is invalid. Every job stops at the first one instead of retrying it.
_MISSING: Final = frozenset({
    "ResourceNotFoundException", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
    "NoSuchBucket", "TableNotFoundException"})
_DENIED: Final = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized",
    "UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId",
    "ExpiredToken", "ExpiredTokenException", "AuthFailure", "KMSAccessDeniedException",
    "AWS.SimpleQueueService.UnsupportedOperation"})
_INVALID: Final = frozenset({
    "ValidationException", "InvalidParameterValue", "InvalidParameterValueException",
    "InvalidArgumentException", "SerializationException"})
PERMANENT_CODES: Final = _MISSING | _DENIED | _INVALID


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (read duck-typed: core has no I/O
    dependencies); "" for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def is_permanent(exc: BaseException) -> bool:
    """True for an AWS error that no retry can fix (see PERMANENT_CODES)."""
    return error_code(exc) in PERMANENT_CODES


def fix_hint(code: str, resource: str) -> str:
    """What the user should do about a permanent error ``code`` on ``resource``."""
    if code in _MISSING:
        return (f"{resource} does not exist: create it, or check the name, `region` and "
                "`endpoint_url`")
    if code in _DENIED:
        return (f"the caller may not use {resource}: grant it access, or pick other "
                "credentials with `profile`")
    if code in _INVALID:
        return (f"{resource} rejected the request: check that it matches the source (key "
                "schema, attribute types)")
    return "retry later"
