"""Run the ddbtrail CLI in-process, as a user would from a shell."""

from __future__ import annotations

import pytest

from ddbtrail.cli import main


def exit_code(argv: list[str]) -> int:
    """Run ``ddbtrail <argv>`` and return its exit code."""
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``ddbtrail <argv>``; return (exit code, stdout, stderr)."""
    code = exit_code(argv)
    out, err = capsys.readouterr()
    return code, out, err
