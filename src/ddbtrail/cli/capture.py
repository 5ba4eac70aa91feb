"""``ddbtrail capture``: read a table's stream into the lake, as the deployed pipeline does."""

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
from botocore.exceptions import BotoCoreError, ClientError
from rich.live import Live
from rich.text import Text

from ddbtrail.capture.runner.esm import RunnerSettings, RunStats
from ddbtrail.capture.runner.pipeline import build_capture
from ddbtrail.cli._app import FormatOpt, LakeFormat, LakeOpt, app, console, err_console
from ddbtrail.cli._aws import ProfileOpt, aws_client, aws_failure
from ddbtrail.core.exceptions import DdbtrailError, LakeError, UsageError
from ddbtrail.core.redact import RedactionPolicy, load_key
from ddbtrail.delivery.local import FORMATS
from ddbtrail.lake.files import Lake

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


@app.command("capture")
def capture_command(
    *,
    table: Annotated[str, typer.Option("--table", help="DynamoDB table whose stream to read.")],
    lake: LakeOpt = None,
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", help="AWS endpoint URL (DynamoDB, Streams and an s3:// lake).")]
        = None,
    region: Annotated[str | None, typer.Option(
        "--region", help="AWS region [default: AWS_REGION, or the profile's].")] = None,
    profile: ProfileOpt = None,
    fmt: FormatOpt = LakeFormat.parquet,
    once: Annotated[bool, typer.Option(
        "--once", help="Drain every shard to its current end, flush, and exit.")] = False,
    batch_size: BatchSizeOpt = 1000,
    max_retries: MaxRetriesOpt = 10,
    bisect: Annotated[bool, typer.Option(
        help="Split a failing batch in two and retry each half.")] = True,
    checkpoint_interval: Annotated[float, typer.Option(
        help="Seconds between checkpoints (each flushes the delivery stream).")] = 60.0,
    redaction_policy: RedactionPolicyOpt = None,
) -> None:
    """Capture a table's stream into the lake, resuming from checkpoints.

    The same code path as the capture Lambda, with a local delivery stream in Firehose's
    place. Without --once it runs until Ctrl-C, showing records/s and lag.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose parquet, jsonl or iceberg")
    if checkpoint_interval <= 0:
        raise UsageError("--checkpoint-interval must be > 0")
    settings = RunnerSettings(batch_size=batch_size, max_retry_attempts=max_retries,
                              bisect_on_error=bisect, checkpoint_interval=checkpoint_interval)
    policy = read_policy(redaction_policy)
    the_lake = Lake.open(lake, endpoint_url=endpoint_url, region=region, profile=profile)
    _check_writable(the_lake)
    progress = progress_line(once)
    try:
        with cli_logging():
            ddb = aws_client("dynamodb", endpoint_url, region, profile)
            streams = aws_client("dynamodbstreams", endpoint_url, region, profile)
            run = build_capture(table, the_lake, ddb=ddb, streams=streams, fmt=fmt,
                                settings=settings, on_progress=progress, redaction=policy)
            stats = run_shown(lambda: run.run(once=once), run.runner.stop, progress)
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(f"capture {table}", exc, resource=f"table {table}") from exc
    files = len(run.delivery.stats.files)
    console.print(
        f"captured {stats.records:,} records of {table} into {the_lake.uri} "
        f"({files} file{'s' if files != 1 else ''}, {fmt}); checkpoints saved",
        markup=False, highlight=False)
    fail_on_failed_records(stats)


def _check_writable(lake: Lake) -> None:
    """Fail early, in one line, if the lake cannot hold ddbtrail's state."""
    path = lake.state_path("checkpoints")
    try:
        lake.fs.create_dir(path, recursive=True)
    except OSError as exc:
        raise LakeError(f"lake {lake.uri}: cannot be written ({exc})") from exc
