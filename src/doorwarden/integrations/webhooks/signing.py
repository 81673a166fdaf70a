"""Standard Webhooks signatures (HMAC-SHA256, `v1`) and the endpoint secrets behind them.

A secret is 32 random bytes, shown to its owner as `whsec_<base64>` once; the server keeps
it sealed with AES-256-GCM under a key derived from the instance secret key (HKDF, its
own label, as notify/vapid.py derives the VAPID key), with the endpoint's id as
associated data so a sealed secret copied onto another endpoint's row does not open.
Changing the instance secret key makes every endpoint's secret unreadable: rotate them.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the header carries one
`v1,<base64>` per key (two while a rotated-out key is still honoured), space-separated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "whsec_"
KEY_BYTES = 32  # the spec asks for 24 to 64
SEAL_INFO = b"doorwarden webhook endpoint secrets (AES-256-GCM) v1"
NONCE_BYTES = 12
TOLERANCE_S = 300  # what docs/webhooks.md tells receivers to accept either side


class SecretUnreadable(ValueError):
    """A sealed secret that does not open (the instance secret key changed)."""


class BadSignature(ValueError):
    """A webhook whose signature, timestamp or headers do not verify."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def secret_text(key: bytes) -> str:
    return PREFIX + base64.b64encode(key).decode("ascii")


def key_of(secret: str) -> bytes:
    """The raw key of a `whsec_` secret (a receiver's side; tests)."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        return base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is base64 after whsec_") from exc


def _sealing_key(instance_secret: bytes) -> AESGCM:
    if not instance_secret:
        raise ValueError("instance secret: empty")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEAL_INFO).derive(
        instance_secret
    )
    return AESGCM(key)


def seal(instance_secret: bytes, endpoint_id: uuid.UUID, key: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _sealing_key(instance_secret).encrypt(nonce, key, endpoint_id.bytes)


def unseal(instance_secret: bytes, endpoint_id: uuid.UUID, sealed: bytes) -> bytes:
    try:
        return _sealing_key(instance_secret).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], endpoint_id.bytes
        )
    except (InvalidTag, ValueError) as exc:
        raise SecretUnreadable("the endpoint's secret does not open with this key") from exc


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Signed:
    headers: dict[str, str]
    body: bytes


def sign(keys: list[bytes], webhook_id: str, timestamp: int, body: bytes) -> Signed:
    """The three Standard Webhooks headers (and the body as signed) for one attempt."""
    if "." in webhook_id or not keys:
        raise ValueError("a webhook id has no '.', and there is a key to sign with")
    return Signed(
        {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signature(k, webhook_id, timestamp, body) for k in keys),
            "content-type": "application/json",
        },
        body,
    )


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: int) -> None:
    """A receiver's check (the one docs/webhooks.md shows; the tests' receiver runs it):
    raises BadSignature unless a `v1` signature matches and the timestamp is recent."""
    try:
        webhook_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split(" ")
    except (KeyError, ValueError) as exc:
        raise BadSignature("missing or malformed webhook headers") from exc
    if abs(now - timestamp) > TOLERANCE_S:
        raise BadSignature("timestamp outside the tolerance")
    expected = signature(key_of(secret), webhook_id, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise BadSignature("no signature matches")
