"""ddbtrail as a library: the questions a notebook, a job or the CLI asks of a change lake.

``import ddbtrail as dt`` re-exports these names. Readers return ``pyarrow.Table``
(``.to_pandas()``, ``polars.from_arrow(...)``); AWS is reached through the
``boto3_session``/``endpoint_url`` given to ``Lake.open``; an explicit argument wins over
an environment variable, which wins over the default. Errors are ``DdbtrailError``s;
``InvalidArgument.param`` names the argument at fault. docs/api.md is the guide.
"""

from ddbtrail.api._evidence import DayCheck, VerifyReport, seal, verify
from ddbtrail.api._lake import Lake
from ddbtrail.api._ops import Restored, compact, cost, restore, snapshot
from ddbtrail.api._read import as_of, history, queries, query, schema, who
from ddbtrail.core.exceptions import (
    DdbtrailError,
    InvalidArgument,
    LakeError,
    QueryError,
    TableNotInLake,
)
from ddbtrail.query.trino import TrinoSettings

__all__ = [
    "DayCheck", "DdbtrailError", "InvalidArgument", "Lake", "LakeError", "QueryError",
    "Restored", "TableNotInLake", "TrinoSettings", "VerifyReport", "as_of", "compact", "cost",
    "history", "queries", "query", "restore", "schema", "seal", "snapshot", "verify", "who",
]
