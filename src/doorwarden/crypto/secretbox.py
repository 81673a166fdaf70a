"""Encrypting small server-side secrets (TOTP seeds) under a key derived from the
instance secret, so a copy of the database alone does not yield second factors."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


def derive_key(secret: str, purpose: str) -> bytes:
    """A 256-bit key for one purpose; different purposes never share a key."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"doorwarden:{purpose}".encode()
    ).derive(secret.encode())


def seal(key: bytes, plaintext: bytes, *, context: bytes) -> bytes:
    """nonce || AES-256-GCM(plaintext); `context` (e.g. the user id) is authenticated, so a
    sealed value copied onto another row fails to open."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def open_sealed(key: bytes, sealed: bytes, *, context: bytes) -> bytes:
    """Raises cryptography.exceptions.InvalidTag if the value or context was altered."""
    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
