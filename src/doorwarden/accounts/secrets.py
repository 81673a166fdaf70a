"""Passwords (argon2id) and random bearer secrets (sessions, API tokens, codes)."""

from __future__ import annotations

import functools
import hashlib
import secrets

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from doorwarden.config import PasswordCost

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
# As the sign-up and password forms state them.
PASSWORD_RULES = {"min_password": MIN_PASSWORD_LENGTH, "max_password": MAX_PASSWORD_LENGTH}


# Settings default to RFC 9106's second recommended profile (argon2id, t=3, m=64 MiB, p=4).
# Hashing runs in a worker thread so a sign-in never stalls the server.
@functools.cache
def _hasher(cost: PasswordCost) -> PasswordHasher:
    return PasswordHasher(
        time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
    )


@functools.cache
def _dummy_hash(cost: PasswordCost) -> str:
    # Verified when the e-mail is unknown, at the cost a real account's hash has, so
    # timing does not reveal which accounts exist.
    return _hasher(cost).hash(secrets.token_urlsafe(16))


async def hash_password(password: str, cost: PasswordCost) -> str:
    return await anyio.to_thread.run_sync(_hasher(cost).hash, password)


# A hash names its own type and cost; any hasher verifies it at that cost.
_VERIFIER = PasswordHasher()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _VERIFIER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` is the one behind a stored hash."""
    return await anyio.to_thread.run_sync(_verify, password_hash, password)


async def verify_sign_in(password_hash: str | None, password: str, cost: PasswordCost) -> bool:
    """As verify_password; with no account (None), a dummy hash of the current cost is
    checked so that an unknown e-mail takes as long as a wrong password."""
    if not password_hash:
        await anyio.to_thread.run_sync(_verify, _dummy_hash(cost), password)
        return False
    return await verify_password(password_hash, password)


def needs_rehash(password_hash: str, cost: PasswordCost) -> bool:
    """Whether a stored hash was made at another cost than the current settings'."""
    try:
        return _hasher(cost).check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def new_secret(prefix: str = "", nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def secret_digest(value: str) -> str:
    """SHA-256 for high-entropy random secrets (lookups by hash; argon2 would add nothing)."""
    return hashlib.sha256(value.encode()).hexdigest()
