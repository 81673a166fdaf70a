"""The server's signature on a camera's settings (docs/camera-settings.md).

Privacy zones are a safeguard: a server, or someone between it and the camera, must not
be able to make a camera forget one by replaying an older, zone-less version. So each
settings document the server sends names the device, the camera and a version, and is
signed with the server's Ed25519 key (the audit log's key, which the agent learned at
pairing); the agent applies only a document signed for it, with a version above the one
it applied last.

The signature covers the document's exact bytes (a domain-separation prefix, then the
UTF-8 JSON the server wrote), not a re-serialisation: the settings hold floats, which
canonical JSON refuses, and bytes need no agreement on formatting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from doorwarden.crypto import strict_json
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import SigningKey, b64d, b64e, verify_signature

CONTEXT = b"doorwarden camera settings v1\n"
MAX_DOCUMENT_BYTES = 96 * 1024


@dataclass(frozen=True)
class SettingsDocument:
    """What the server signs: these settings (overrides by dotted field name) are camera
    `camera` of device `device_id`'s, version `version`, issued at `issued_at` (ISO UTC)."""

    device_id: str
    camera: str
    version: int
    issued_at: str
    settings: dict[str, Any]

    def to_json(self) -> str:
        body = {
            "device_id": self.device_id, "camera": self.camera, "version": self.version,
            "issued_at": self.issued_at, "settings": self.settings,
        }  # fmt: skip
        return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sign_document(private: bytes, document: SettingsDocument) -> tuple[str, str]:
    """(the document's JSON text, its signature in base64url) as sent to the agent."""
    text = document.to_json()
    signature = SigningKey.from_bytes(private).sign(CONTEXT + text.encode())
    return text, b64e(signature)


def open_document(public: bytes, text: str, signature: str) -> SettingsDocument:
    """The document `text` if `signature` is the server's over it; MalformedError (or the
    SignatureError of crypto.keys.verify_signature) otherwise. Checks the form only: the
    caller checks the device, the camera and that the version is newer."""
    data = text.encode()
    if len(data) > MAX_DOCUMENT_BYTES:
        raise MalformedError("settings document too large")
    verify_signature(public, CONTEXT + data, b64d(signature, what="signature"))
    body = strict_json.loads(text, max_bytes=MAX_DOCUMENT_BYTES)
    if not isinstance(body, dict):
        raise MalformedError("settings document: not an object")
    try:
        document = SettingsDocument(
            device_id=body["device_id"], camera=body["camera"], version=body["version"],
            issued_at=body["issued_at"], settings=body["settings"],
        )  # fmt: skip
    except KeyError as exc:
        raise MalformedError(f"settings document: {exc.args[0]} missing") from None
    if not (
        isinstance(document.device_id, str) and isinstance(document.camera, str)
        and isinstance(document.version, int) and not isinstance(document.version, bool)
        and document.version > 0 and isinstance(document.issued_at, str)
        and isinstance(document.settings, dict)
    ):  # fmt: skip
        raise MalformedError("settings document: a field has the wrong type")
    return document
