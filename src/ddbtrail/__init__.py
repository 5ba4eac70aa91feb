"""ddbtrail: item-level audit trail and change lake for Amazon DynamoDB.

``import ddbtrail as dt`` gives the public API (``ddbtrail.api``; docs/api.md):
``dt.Lake.open``, ``dt.history``, ``dt.as_of``, ``dt.who``, ``dt.query``, ``dt.queries``,
``dt.schema``, ``dt.snapshot``, ``dt.compact``, ``dt.restore``, ``dt.cost``, ``dt.seal``,
``dt.verify``.
"""

from __future__ import annotations

import logging
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# A library's records go where the application's logging sends them, never to Python's
# last-resort stderr handler; the CLI installs its own one-line handler (cli/_run.py).
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from ddbtrail.api import (
        DayCheck,
        DdbtrailError,
        InvalidArgument,
        Lake,
        LakeError,
        QueryError,
        Restored,
        TableNotInLake,
        TrinoSettings,
        VerifyReport,
        as_of,
        compact,
        cost,
        history,
        queries,
        query,
        restore,
        schema,
        seal,
        snapshot,
        verify,
        who,
    )

__all__ = [
    "DayCheck", "DdbtrailError", "InvalidArgument", "Lake", "LakeError", "QueryError",
    "Restored", "TableNotInLake", "TrinoSettings", "VerifyReport", "__version__", "as_of",
    "compact", "cost", "history", "queries", "query", "restore", "schema", "seal", "snapshot",
    "verify", "who",
]


class _Package(types.ModuleType):
    """``ddbtrail.query`` and ``ddbtrail.cost`` are also a subpackage and a module; the
    import system binds those on the package when they load. ``dt.query`` and ``dt.cost``
    stay the API's functions (code imports the modules by full name:
    ``from ddbtrail.query import saved``)."""

    @property
    def query(self) -> Any:
        from ddbtrail.api import query

        return query

    @query.setter
    def query(self, module: Any) -> None:
        pass

    @property
    def cost(self) -> Any:
        from ddbtrail.api import cost

        return cost

    @cost.setter
    def cost(self, module: Any) -> None:
        pass


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    # Loaded on first use: the capture Lambda imports ddbtrail.core and must not pay
    # for the API's readers.
    if name in __all__:
        from ddbtrail import api

        return getattr(api, name)
    raise AttributeError(f"module 'ddbtrail' has no attribute {name!r}")
