"""A software WebAuthn authenticator (P-256, "none" attestation) speaking the wire format
a browser sends, so the server's real py_webauthn verification runs in API tests. The
browser tests use Chromium's own virtual authenticator instead."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from doorwarden.crypto.keys import b64d, b64e

UP, UV, AT = 0x01, 0x04, 0x40


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
    ).encode()


@dataclass
class SoftAuthenticator:
    rp_id: str
    origin: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _auth_data(self, flags: int, attested: bytes = b"") -> bytes:
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        return rp_hash + bytes([flags]) + struct.pack(">I", self.sign_count) + attested

    def create(self, options: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
        """navigator.credentials.create(), as PublicKeyCredential.toJSON() sends it."""
        cred = self.credential_id
        attested = bytes(16) + struct.pack(">H", len(cred)) + cred + self._cose_key()
        auth_data = self._auth_data(UP | UV | AT, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = _client_data("webauthn.create", options["challenge"], origin or self.origin)
        return {
            "id": b64e(cred),
            "rawId": b64e(cred),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64e(client_data),
                "attestationObject": b64e(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {"prf": {"enabled": True}},
        }

    def get(self, options: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
        """navigator.credentials.get()."""
        self.sign_count += 1
        auth_data = self._auth_data(UP | UV)
        client_data = _client_data("webauthn.get", options["challenge"], origin or self.origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64e(self.credential_id),
            "rawId": b64e(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64e(client_data),
                "authenticatorData": b64e(auth_data),
                "signature": b64e(signature),
            },
            "clientExtensionResults": {},
        }


def challenge_bytes(options: dict[str, Any]) -> bytes:
    return b64d(options["challenge"], what="challenge")
