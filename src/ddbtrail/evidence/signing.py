"""Who signs digests: a local Ed25519 key file, or an AWS KMS asymmetric key.

A ``Signer`` signs the short signing string of a digest (``digests.signing_string``, well
under KMS's 4,096-byte RAW limit). Verification needs only the public key, as PEM:
Ed25519 for a key file, ECDSA P-256 with SHA-256 for KMS (``kms get-public-key``
returns it as DER; ``public_key_pem`` converts). ``cryptography`` does the mathematics.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from ddbtrail.core.exceptions import ConfigError

ED25519: Final = "Ed25519"
KMS_KEY_SPEC: Final = "ECC_NIST_P256"
KMS_SIGNING_ALGORITHM: Final = "ECDSA_SHA_256"
ALGORITHMS: Final = (ED25519, KMS_SIGNING_ALGORITHM)
KEY_ENV: Final = "DDBTRAIL_SIGNING_KEY"
KEY_FILE: Final = "signing-key.pem"


class Signer(Protocol):
    """Signs digests; ``key_id`` and ``algorithm`` go into each digest it signs."""

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    def sign(self, data: bytes) -> bytes:
        """The signature of ``data``; raises when the key cannot sign."""
        ...


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError as exc:
        raise ConfigError("signing and verifying digests needs the cryptography library: "
                          "pip install 'ddbtrail[evidence]'") from exc
    return serialization


def default_key_path() -> Path:
    """$DDBTRAIL_SIGNING_KEY, else ``$XDG_CONFIG_HOME/ddbtrail/signing-key.pem`` (default
    ``~/.config/ddbtrail/signing-key.pem``): outside any lake, so that write access to a
    lake does not give the key."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ddbtrail" / KEY_FILE


def key_id_of(public_pem: bytes) -> str:
    """A short, stable name of a public key: the first 16 hex digits of its PEM's SHA-256."""
    return hashlib.sha256(public_pem.strip()).hexdigest()[:16]


def public_key_pem(key: bytes) -> bytes:
    """A public key as PEM, from PEM or DER (what KMS GetPublicKey returns)."""
    serialization = _crypto()
    if key.lstrip().startswith(b"-----BEGIN"):
        loaded = serialization.load_pem_public_key(key)
    else:
        loaded = serialization.load_der_public_key(key)
    return bytes(loaded.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def create_key(path: Path) -> Path:
    """Make a new Ed25519 private key at ``path`` (mode 0600, its folder 0700) and its public
    key beside it (``<name>.pub.pem``); refuses to overwrite. Returns ``path``."""
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    public_path(path).write_bytes(public)
    return path


def public_path(private_path: Path) -> Path:
    """Where ``create_key`` puts the public key of ``private_path``."""
    return private_path.with_name(private_path.name.removesuffix(".pem") + ".pub.pem")


@dataclass(frozen=True)
class Ed25519FileSigner:
    """Signs with an Ed25519 private key kept in a PEM file. ``create=True`` makes the key
    (``create_key``) when the file does not exist."""

    path: Path
    create: bool = False
    _key: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        serialization = _crypto()
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = Path(self.path).expanduser()
        if not path.exists() and self.create:
            create_key(path)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"signing key {path}: cannot be read as a PEM private key "
                              f"({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"signing key {path}: not an Ed25519 key")
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "_key", key)

    @property
    def algorithm(self) -> str:
        return ED25519

    @property
    def public_pem(self) -> bytes:
        serialization = _crypto()
        return bytes(self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_pem)

    def sign(self, data: bytes) -> bytes:
        return bytes(self._key.sign(data))


class KmsSigner:
    """Signs with an AWS KMS asymmetric key (``KMS_KEY_SPEC``, ``KMS_SIGNING_ALGORITHM``,
    MessageType RAW). Only a principal the key policy allows kms:Sign can use it."""

    def __init__(self, key_id: str, *, boto3_session: Any = None, client: Any = None) -> None:
        self._key_id = key_id
        if client is None:
            import boto3

            client = (boto3_session or boto3.Session()).client("kms")
        self._kms = client

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> str:
        return KMS_SIGNING_ALGORITHM

    def sign(self, data: bytes) -> bytes:
        answer = self._kms.sign(KeyId=self._key_id, Message=data, MessageType="RAW",
                                SigningAlgorithm=KMS_SIGNING_ALGORITHM)
        return bytes(answer["Signature"])

    def public_pem(self) -> bytes:
        """The key's public half as PEM (kms:GetPublicKey), to give auditors."""
        return public_key_pem(bytes(self._kms.get_public_key(KeyId=self._key_id)["PublicKey"]))


def signature_valid(public_pem: bytes, algorithm: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``algorithm``'s signature of ``data`` under the key."""
    serialization = _crypto()
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(public_pem)
    try:
        if algorithm == ED25519 and isinstance(key, Ed25519PublicKey):
            key.verify(signature, data)
        elif algorithm == KMS_SIGNING_ALGORITHM and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True
