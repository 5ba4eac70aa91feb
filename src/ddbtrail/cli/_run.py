"""What the commands that run the stream runner share: one-line logging, graceful stop,
the live progress line, the stream runner's options and the redaction policy file."""

from __future__ import annotations

import collections
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.live import Live
from rich.text import Text

from ddbtrail.capture.redaction_key import load_key
from ddbtrail.capture.runner.esm import RunStats
from ddbtrail.cli._app import err_console
from ddbtrail.cli._errors import UsageError
from ddbtrail.core.exceptions import DdbtrailError
from ddbtrail.core.redact import RedactionPolicy

_EXTRAS = ("event_id", "error", "first_failure", "failed_entries", "reason", "bytes")


class _OneLineHandler(logging.Handler):
    """Log records as ``warning: message (key=value ...)`` on stderr; never a traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        extras = " ".join(f"{k}={getattr(record, k)}" for k in _EXTRAS if hasattr(record, k))
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        err_console.print(text + (f" ({extras})" if extras else ""), markup=False,
                          highlight=False)


@contextmanager
def cli_logging() -> Iterator[None]:
    """Route ddbtrail's warnings and errors to stderr, one line each, for a command's run."""
    log = logging.getLogger("ddbtrail")
    handler = _OneLineHandler(logging.WARNING)
    old_level, old_propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        log.propagate = old_propagate


@contextmanager
def graceful_stop(stop: Callable[[], None]) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM) calls ``stop``; a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        err_console.print("stopping after the current batch (Ctrl-C again to abort)",
                          markup=False)
        stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# The stream runner's options, as capture and replicate take them (each its own default).
BatchSizeOpt = Annotated[int, typer.Option(help="Records per batch, 1..10000.")]
MaxRetriesOpt = Annotated[int, typer.Option(
    help="Retries of a failing batch before it goes to the on-failure file (-1: forever).")]

RedactionPolicyOpt = Annotated[str | None, typer.Option(
    "--redaction-policy", help="JSON file of per-table attributes to drop or HMAC "
    "(key from REDACTION_KEY); default: $REDACTION_POLICY.")]


def read_policy(path: str | None) -> RedactionPolicy | None:
    """The ``--redaction-policy`` file's policy; None when no file is given (the caller
    then falls back to $REDACTION_POLICY). Raises UsageError naming the option."""
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--redaction-policy {path}: {exc.strerror}") from exc
    return RedactionPolicy.from_json(text, load_key())


class ProgressLine:
    """records/s over the last few seconds, and lag (now minus the last record's time)."""

    def __init__(self, live: Live | None, verb: str = "captured") -> None:
        self.live = live
        self.verb = verb
        self.window: collections.deque[tuple[float, int]] = collections.deque(maxlen=20)

    def __call__(self, stats: RunStats) -> None:
        now = time.monotonic()
        self.window.append((now, stats.records))
        t0, r0 = self.window[0]
        rate = (stats.records - r0) / (now - t0) if now > t0 else 0.0
        lag = "-" if stats.lag_seconds is None else f"{stats.lag_seconds:,.1f} s"
        line = (f"{self.verb} {stats.records:,} records  {rate:,.0f} records/s  lag {lag}  "
                f"shards {stats.shards_done}/{stats.shards_total} done  "
                f"checkpoints {stats.checkpoints:,}")
        if stats.retries:
            line += f"  retries {stats.retries:,}"
        if stats.failed_records:
            line += f"  failed {stats.failed_records:,}"
        if self.live is not None:
            self.live.update(Text(line))


def progress_line(once: bool, verb: str = "captured") -> ProgressLine:
    """A live line on stderr while the run goes on; none with ``--once``."""
    live = None if once else Live(Text("starting..."), console=err_console,
                                  refresh_per_second=4, transient=False)
    return ProgressLine(live, verb)


def run_shown(run: Callable[[], RunStats], stop: Callable[[], None],
              progress: ProgressLine) -> RunStats:
    """``run()`` with Ctrl-C calling ``stop`` (see graceful_stop) and ``progress`` shown
    live until it returns, its last line left on screen."""
    with graceful_stop(stop):
        if progress.live is None:
            return run()
        with progress.live:
            stats = run()
            progress(stats)
            return stats


def fail_on_failed_records(stats: RunStats) -> None:
    """Raise DdbtrailError naming the on-failure files if records failed after retries."""
    if stats.failed_records:
        raise DdbtrailError(
            f"{stats.failed_records} record(s) failed after retries; kept in "
            f"{', '.join(stats.failure_files)}")
