"""Evidence that the trail is complete and unaltered: receipts, signed digests, verification.

At the lake layer: imports ``core`` and ``lake`` only; capture, query, api and cli use it.
The scheduled digest Lambda calls ``seal(Lake.open(uri), signer=KmsSigner(key_id))``;
``ddbtrail.verify`` adds the reconciliation SQL to ``verify_integrity``.
docs/evidence.md says what is proven and what is not.
"""

from ddbtrail.evidence.digests import (
    Finding,
    IntegrityReport,
    SealReport,
    record_compaction,
    seal,
    verify_integrity,
)
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
from ddbtrail.evidence.signing import (
    KMS_KEY_SPEC,
    KMS_SIGNING_ALGORITHM,
    Ed25519FileSigner,
    KmsSigner,
    Signer,
    default_key_path,
    signature_valid,
)

__all__ = [
    "DEFAULT_RECEIPTS_PREFIX",
    "KMS_KEY_SPEC",
    "KMS_SIGNING_ALGORITHM",
    "RECEIPTS_DIR",
    "Ed25519FileSigner",
    "Finding",
    "IntegrityReport",
    "KmsSigner",
    "LakeReceipts",
    "ReceiptChange",
    "ReceiptStore",
    "S3Receipts",
    "SealReport",
    "Signer",
    "default_key_path",
    "read_receipts",
    "record_compaction",
    "seal",
    "signature_valid",
    "verify_integrity",
    "write_receipts",
]
