"""Device signing keys (Ed25519) and recipient keys (X25519), as raw 32-byte values.

Raw keys, base64url-encoded where they travel as text, keep the format trivial for a
verifier in another language; a key id is the first 16 bytes of the public key's SHA-256.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from doorwarden.crypto.errors import MalformedError, SignatureError

KEY_BYTES = 32


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str, *, what: str, length: int | None = None) -> bytes:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise MalformedError(f"{what}: not base64url") from exc
    if length is not None and len(data) != length:
        raise MalformedError(f"{what}: expected {length} bytes, got {len(data)}")
    return data


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:32]


def _raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _raw_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


class SigningKey:
    """A camera's identity: signs manifests."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._key = private
        self.public = _raw_public(private.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> SigningKey:
        if len(raw) != KEY_BYTES:
            raise MalformedError(f"signing key: expected {KEY_BYTES} bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return _raw_private(self._key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


def verify_signature(public: bytes, data: bytes, signature: bytes) -> None:
    """Raise SignatureError unless `signature` is `public`'s signature of `data`."""
    if len(public) != KEY_BYTES:
        raise MalformedError(f"device key: expected {KEY_BYTES} bytes, got {len(public)}")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except InvalidSignature:
        raise SignatureError("the signature does not match the device key") from None


class RecipientKey:
    """A key clips are encrypted to: the household's (standard mode) or a member's own
    (end-to-end mode)."""

    def __init__(self, private: X25519PrivateKey) -> None:
        self._key = private
        self.public = _raw_public(private.public_key())

    @classmethod
    def generate(cls) -> RecipientKey:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> RecipientKey:
        if len(raw) != KEY_BYTES:
            raise MalformedError(f"recipient key: expected {KEY_BYTES} bytes, got {len(raw)}")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return _raw_private(self._key)

    def exchange(self, peer_public: bytes) -> bytes:
        return self._key.exchange(X25519PublicKey.from_public_bytes(peer_public))
