"""Passwords (argon2id) and random bearer secrets (sessions, API tokens, codes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's second recommended profile (argon2id, t=3,
# m=64 MiB, p=4). Hashing runs in a worker thread so a sign-in never stalls the server.
_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so timing does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(_verify)


def new_secret(prefix: str = "", nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def secret_digest(value: str) -> str:
    """SHA-256 for high-entropy random secrets (lookups by hash; argon2 would add nothing)."""
    return hashlib.sha256(value.encode()).hexdigest()


def sign(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_ok(key: str, message: str, signature: str) -> bool:
    return hmac.compare_digest(sign(key, message), signature)
