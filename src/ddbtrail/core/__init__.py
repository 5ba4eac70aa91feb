"""The pure core: the row schema, the DynamoDB value codec, flattening, redaction, time and backoff.

Nothing here performs I/O or imports a layer above it; every other layer builds on it.
"""

from ddbtrail.core.exceptions import DdbtrailError
from ddbtrail.core.row import Row, make_row

__all__ = ["DdbtrailError", "Row", "make_row"]
