"""Command-line interface. Each command lives in its own module; errors become one line
(cli/_errors.py)."""

from __future__ import annotations

import sys

from ddbtrail.cli import backfill as _backfill  # noqa: F401  (registers the command)
from ddbtrail.cli import capture as _capture  # noqa: F401  (registers the command)
from ddbtrail.cli import compact as _compact  # noqa: F401  (registers the command)
from ddbtrail.cli import copy as _copy  # noqa: F401  (registers the command)
from ddbtrail.cli import cost as _cost  # noqa: F401  (registers the command)
from ddbtrail.cli import demo as _demo  # noqa: F401  (registers the command)
from ddbtrail.cli import doctor as _doctor  # noqa: F401  (registers the command)
from ddbtrail.cli import flatten as _flatten  # noqa: F401  (registers the command)
from ddbtrail.cli import lookups as _lookups  # noqa: F401  (registers the command)
from ddbtrail.cli import queries as _queries  # noqa: F401  (registers the command)
from ddbtrail.cli import redrive as _redrive  # noqa: F401  (registers the command)
from ddbtrail.cli import replicate as _replicate  # noqa: F401  (registers the command)
from ddbtrail.cli import report as _report  # noqa: F401  (registers the command)
from ddbtrail.cli import restore as _restore  # noqa: F401  (registers the command)
from ddbtrail.cli import schema as _schema  # noqa: F401  (registers the command)
from ddbtrail.cli import snapshot as _snapshot  # noqa: F401  (registers the command)
from ddbtrail.cli import verify as _verify  # noqa: F401  (registers the command)
from ddbtrail.cli import views as _views  # noqa: F401  (registers the command)
from ddbtrail.cli import who as _who  # noqa: F401  (registers the command)
from ddbtrail.cli._app import app, err_console
from ddbtrail.cli._errors import run

__all__ = ["app", "err_console", "main"]

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with its code: 0 ok, 2 usage error, 1 runtime error (one line
    on stderr, no traceback), 130 interrupted."""
    sys.exit(run(argv))
