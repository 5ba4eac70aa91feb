"""Signers: the local Ed25519 key file (made 0600 on first use) and KMS's ECDSA P-256, both
checked from the public key alone; a digest's signature covers every field."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ddbtrail.core.exceptions import ConfigError
from ddbtrail.evidence.digests import signing_string
from ddbtrail.evidence.signing import (
    ED25519,
    KMS_SIGNING_ALGORITHM,
    Ed25519FileSigner,
    KmsSigner,
    default_key_path,
    public_path,
    signature_valid,
)


def test_a_key_file_is_made_on_first_use_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-key.pem"
    signer = Ed25519FileSigner(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    public = public_path(path).read_bytes()
    assert public == signer.public_pem
    signature = signer.sign(b"data")
    assert signature_valid(public, ED25519, b"data", signature)
    assert not signature_valid(public, ED25519, b"datA", signature)
    assert not signature_valid(public, KMS_SIGNING_ALGORITHM, b"data", signature)
    # The same key is read back, never replaced.
    assert Ed25519FileSigner(path).key_id == signer.key_id


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        Ed25519FileSigner(tmp_path / "nope.pem")


def test_the_default_key_lives_outside_any_lake(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.delenv("DDBTRAIL_SIGNING_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_key_path() == tmp_path / "ddbtrail" / "signing-key.pem"
    monkeypatch.setenv("DDBTRAIL_SIGNING_KEY", str(tmp_path / "k.pem"))
    assert default_key_path() == tmp_path / "k.pem"


class FakeKms:
    """KMS Sign and GetPublicKey over a local P-256 key, with the arguments KMS requires."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.calls: list[dict[str, Any]] = []

    def sign(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        assert len(kwargs["Message"]) <= 4096  # KMS's limit for MessageType RAW
        return {"Signature": self.key.sign(kwargs["Message"], ec.ECDSA(hashes.SHA256()))}

    def get_public_key(self, **_: Any) -> dict[str, Any]:
        return {"PublicKey": self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)}


def test_kms_signatures_verify_from_the_public_key_alone() -> None:
    kms = FakeKms()
    signer = KmsSigner("alias/digests", client=kms)
    doc = {"table": "orders", "sequence": 3, "files": [{"path": "a", "sha256": "0" * 64}] * 500}
    data = signing_string(doc)
    signature = signer.sign(data)
    assert kms.calls[0]["MessageType"] == "RAW"
    assert kms.calls[0]["SigningAlgorithm"] == "ECDSA_SHA_256"
    assert signature_valid(signer.public_pem(), KMS_SIGNING_ALGORITHM, data, signature)
    changed = signing_string({**doc, "files": doc["files"][1:]})
    assert not signature_valid(signer.public_pem(), KMS_SIGNING_ALGORITHM, changed, signature)
