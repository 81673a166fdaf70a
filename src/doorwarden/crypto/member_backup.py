"""Backups of a member's X25519 private key: the Python twin of static/e2e/keyring.js.

Pure (no I/O): the tests and the demo seed make and open the same records the browser
does. A record is

    {"key_id", "method": "passphrase" | "passkey",
     "kdf": {"name": "argon2id", "m_kib", "t", "p", "salt"}
          | {"name": "webauthn-prf", "credential_id", "salt"},
     "nonce", "ciphertext"}

and its ciphertext is AES-256-GCM of the 32-byte private key under
HKDF-SHA256(ikm = the KDF's 32-byte output or the passkey's PRF output, salt = b"",
info = INFO), with the key id and the user id as associated data (a record cannot be
moved to another account or passed off as another key's backup).

Argon2id (RFC 9106) stretches a passphrase: memory-hard, so a GPU or ASIC guessing
passphrases pays for the memory of each guess, not only its arithmetic. The only check
of a passphrase is the AES-GCM tag: nothing in the record says more than "wrong".
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from doorwarden.crypto.errors import MalformedError, SealError
from doorwarden.crypto.keys import KEY_BYTES, RecipientKey, b64d, b64e, key_id

INFO = b"doorwarden/member-key-backup/v1"
SALT_BYTES = 16
NONCE_BYTES = 12
# What the page uses (docs/e2e.md has the measured time in chromium). RFC 9106's second
# recommended option is 64 MiB; one lane because the browser's Argon2 runs on one thread.
DEFAULT_M_KIB = 64 * 1024
DEFAULT_T = 3
DEFAULT_P = 1
# Bounds on what a record may ask for: a forged record must not make a browser spend a
# gigabyte (or make a weak backup look acceptable). OWASP's floor is 19 MiB, t=2.
M_KIB_RANGE = (19 * 1024, 1024 * 1024)
T_RANGE = (2, 10)
P_RANGE = (1, 4)


class WrongPassphrase(SealError):
    """The passphrase (or passkey) does not open this backup. Nothing more is known."""


def _aad(kid: str, user_id: str) -> bytes:
    return f"{INFO.decode()}|{kid}|{user_id}".encode()


def _aes_key(ikm: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=b"", info=INFO).derive(ikm)


def _check_range(name: str, value: object, bounds: tuple[int, int]) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedError(f"kdf.{name} must be an integer")
    if not bounds[0] <= value <= bounds[1]:
        raise MalformedError(f"kdf.{name} must be between {bounds[0]} and {bounds[1]}")
    return value


def normalize_passphrase(passphrase: str) -> bytes:
    """NFKC, as the page does (String.normalize), so the same words typed on two keyboards
    derive the same key."""
    if not passphrase:
        raise MalformedError("the passphrase is empty")
    return unicodedata.normalize("NFKC", passphrase).encode("utf-8")


def argon2id(passphrase: str, salt: bytes, *, m_kib: int, t: int, p: int) -> bytes:
    _check_range("m_kib", m_kib, M_KIB_RANGE)
    _check_range("t", t, T_RANGE)
    _check_range("p", p, P_RANGE)
    return hash_secret_raw(
        normalize_passphrase(passphrase),
        salt,
        time_cost=t,
        memory_cost=m_kib,
        parallelism=p,
        hash_len=32,
        type=Type.ID,
    )


def _seal(
    private_raw: bytes, *, user_id: str, ikm: bytes, method: str, kdf: dict[str, Any]
) -> dict[str, Any]:
    if len(private_raw) != KEY_BYTES:
        raise MalformedError("a member private key is 32 bytes")
    kid = key_id(RecipientKey.from_bytes(private_raw).public)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_aes_key(ikm)).encrypt(nonce, private_raw, _aad(kid, user_id))
    return {
        "key_id": kid,
        "method": method,
        "kdf": kdf,
        "nonce": b64e(nonce),
        "ciphertext": b64e(sealed),
    }


def _open(record: dict[str, Any], *, user_id: str, ikm: bytes) -> bytes:
    nonce = b64d(record["nonce"], what="nonce", length=NONCE_BYTES)
    sealed = b64d(record["ciphertext"], what="ciphertext", length=KEY_BYTES + 16)
    try:
        raw = AESGCM(_aes_key(ikm)).decrypt(nonce, sealed, _aad(record["key_id"], user_id))
    except InvalidTag:
        raise WrongPassphrase("wrong passphrase") from None
    if key_id(RecipientKey.from_bytes(raw).public) != record["key_id"]:
        # Only a writer who knew the passphrase could get here: a record made wrongly.
        raise MalformedError("the backup opens to a key other than the one it names")
    return raw


def check_record(record: object) -> dict[str, Any]:
    """The record's shape, strictly: exactly the fields above, nothing else."""
    if not isinstance(record, dict) or set(record) != {
        "key_id",
        "method",
        "kdf",
        "nonce",
        "ciphertext",
    }:
        raise MalformedError("a backup has exactly key_id, method, kdf, nonce, ciphertext")
    kdf = record["kdf"]
    if record["method"] == "passphrase":
        fields = {"name", "m_kib", "t", "p", "salt"}
        name = "argon2id"
    elif record["method"] == "passkey":
        fields, name = {"name", "credential_id", "salt"}, "webauthn-prf"
    else:
        raise MalformedError("method is passphrase or passkey")
    if not isinstance(kdf, dict) or set(kdf) != fields or kdf["name"] != name:
        raise MalformedError(f"a {record['method']} backup's kdf is {name} with {sorted(fields)}")
    if name == "argon2id":
        for field, bounds in (("m_kib", M_KIB_RANGE), ("t", T_RANGE), ("p", P_RANGE)):
            _check_range(field, kdf[field], bounds)
    b64d(kdf["salt"], what="kdf.salt", length=SALT_BYTES if name == "argon2id" else 32)
    b64d(record["nonce"], what="nonce", length=NONCE_BYTES)
    b64d(record["ciphertext"], what="ciphertext", length=KEY_BYTES + 16)
    if not isinstance(record["key_id"], str) or len(record["key_id"]) != 32:
        raise MalformedError("key_id is 32 hex characters")
    return record


def passphrase_backup(
    private_raw: bytes,
    *,
    user_id: str,
    passphrase: str,
    m_kib: int = DEFAULT_M_KIB,
    t: int = DEFAULT_T,
    p: int = DEFAULT_P,
) -> dict[str, Any]:
    salt = os.urandom(SALT_BYTES)
    ikm = argon2id(passphrase, salt, m_kib=m_kib, t=t, p=p)
    kdf = {"name": "argon2id", "m_kib": m_kib, "t": t, "p": p, "salt": b64e(salt)}
    return _seal(private_raw, user_id=user_id, ikm=ikm, method="passphrase", kdf=kdf)


def open_passphrase_backup(record: dict[str, Any], *, user_id: str, passphrase: str) -> bytes:
    """The private key, or WrongPassphrase (and only that) when the passphrase is wrong."""
    check_record(record)
    if record["method"] != "passphrase":
        raise MalformedError("not a passphrase backup")
    kdf = record["kdf"]
    salt = b64d(kdf["salt"], what="kdf.salt", length=SALT_BYTES)
    ikm = argon2id(passphrase, salt, m_kib=kdf["m_kib"], t=kdf["t"], p=kdf["p"])
    return _open(record, user_id=user_id, ikm=ikm)


def passkey_backup(
    private_raw: bytes, *, user_id: str, prf_output: bytes, credential_id: str, prf_salt: bytes
) -> dict[str, Any]:
    """What the page makes from a passkey's PRF output (tests use it to check the server)."""
    if len(prf_output) != 32 or len(prf_salt) != 32:
        raise MalformedError("a PRF output and its salt are 32 bytes each")
    kdf = {"name": "webauthn-prf", "credential_id": credential_id, "salt": b64e(prf_salt)}
    return _seal(private_raw, user_id=user_id, ikm=prf_output, method="passkey", kdf=kdf)


def open_passkey_backup(record: dict[str, Any], *, user_id: str, prf_output: bytes) -> bytes:
    check_record(record)
    if record["method"] != "passkey":
        raise MalformedError("not a passkey backup")
    return _open(record, user_id=user_id, ikm=prf_output)
