"""Where the packaged data folders are: ``athena_queries/`` and ``glue/``.

In a source checkout they sit at the top of the repository (one concern per folder); the
wheel carries copies under ``ddbtrail/_data/`` (force-include in pyproject.toml). The
installed copy wins, so an installed CLI never reads a stray checkout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ddbtrail.core.exceptions import ConfigError

_PACKAGE_DIR: Final = Path(__file__).resolve().parent
_CHECKOUT_ROOT: Final = _PACKAGE_DIR.parent.parent  # src/ddbtrail -> repository root


def data_dir(name: str) -> Path:
    """The folder ``name`` (``athena_queries`` or ``glue``). Raises ConfigError if absent."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _CHECKOUT_ROOT / name):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"cannot find the {name}/ folder: looked in {_PACKAGE_DIR / '_data'} "
                      f"and {_CHECKOUT_ROOT}")


def queries_dir() -> Path:
    """The folder of saved Athena queries (``*.sql``)."""
    return data_dir("athena_queries")


def glue_dir() -> Path:
    """The folder of generated Glue definitions (``*.json``)."""
    return data_dir("glue")
