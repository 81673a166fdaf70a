"""Wrapping a clip key to a recipient's X25519 public key (a sealed box, HPKE-style).

For each recipient: a fresh ephemeral X25519 key; the shared secret with the recipient's
key goes through HKDF-SHA256 (salt: ephemeral public | recipient public) to a one-time
key that encrypts the clip key with AES-256-GCM. The one-time key is never reused, so a
fixed nonce is safe; binding both public keys into the derivation and the associated
data means a wrapped key cannot be replayed to another recipient.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from doorwarden.crypto.errors import MalformedError, NotARecipientError
from doorwarden.crypto.keys import KEY_BYTES, RecipientKey, b64d, b64e, key_id

INFO = b"doorwarden/clip-key-wrap/v1"
NONCE = bytes(12)


@dataclass(frozen=True)
class WrappedKey:
    recipient: str  # key id of the recipient's public key
    ephemeral: bytes
    ciphertext: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "recipient": self.recipient,
            "ephemeral": b64e(self.ephemeral),
            "wrapped": b64e(self.ciphertext),
        }

    @classmethod
    def from_json(cls, data: object) -> WrappedKey:
        if not isinstance(data, dict) or set(data) != {"recipient", "ephemeral", "wrapped"}:
            raise MalformedError("a wrapped key needs exactly recipient, ephemeral, wrapped")
        if not all(isinstance(v, str) for v in data.values()):
            raise MalformedError("wrapped key fields must be strings")
        return cls(
            data["recipient"],
            b64d(data["ephemeral"], what="ephemeral key", length=KEY_BYTES),
            b64d(data["wrapped"], what="wrapped key", length=KEY_BYTES + 16),
        )


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=INFO).derive(shared)


def wrap_key(clip_key: bytes, recipient_public: bytes) -> WrappedKey:
    ephemeral = RecipientKey.generate()
    kek = _kek(ephemeral.exchange(recipient_public), ephemeral.public, recipient_public)
    aad = ephemeral.public + recipient_public
    return WrappedKey(
        key_id(recipient_public), ephemeral.public, AESGCM(kek).encrypt(NONCE, clip_key, aad)
    )


def unwrap_key(wrapped: WrappedKey, recipient: RecipientKey) -> bytes:
    if wrapped.recipient != key_id(recipient.public):
        raise NotARecipientError("the clip key was not wrapped to this key")
    kek = _kek(recipient.exchange(wrapped.ephemeral), wrapped.ephemeral, recipient.public)
    try:
        return AESGCM(kek).decrypt(NONCE, wrapped.ciphertext, wrapped.ephemeral + recipient.public)
    except InvalidTag:
        raise NotARecipientError("the wrapped clip key does not open with this key") from None
