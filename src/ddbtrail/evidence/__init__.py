"""Evidence that the trail is complete and unaltered: receipts, signed digests, verification.

At the lake layer: imports ``core`` and ``lake`` only; capture, query, api and cli use it.
docs/evidence.md says what is proven and what is not.
"""

from ddbtrail.evidence.receipts import (
    DEFAULT_RECEIPTS_PREFIX,
    RECEIPTS_DIR,
    LakeReceipts,
    ReceiptChange,
    ReceiptStore,
    S3Receipts,
    read_receipts,
    write_receipts,
)

__all__ = [
    "DEFAULT_RECEIPTS_PREFIX",
    "RECEIPTS_DIR",
    "LakeReceipts",
    "ReceiptChange",
    "ReceiptStore",
    "S3Receipts",
    "read_receipts",
    "write_receipts",
]
