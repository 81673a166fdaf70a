"""Settings documents as the server signs them (crypto/settings_sig.py), with real Ed25519
keys, for the agent's settings tests."""

from __future__ import annotations

import json
from typing import Any

from doorwarden.crypto.keys import SigningKey
from doorwarden.crypto.settings_sig import SettingsDocument, sign_document

DEVICE = "device"  # as tests/unit/agent/live/test_link.py's identity


class ServerKey:
    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.public = self.key.public

    def message(
        self,
        version: int,
        settings: dict[str, Any],
        *,
        camera: str = "front",
        document_camera: str | None = None,
        device: str = DEVICE,
    ) -> dict[str, Any]:
        """The server's `settings` message for `camera`."""
        document = SettingsDocument(
            device_id=device,
            camera=document_camera or camera,
            version=version,
            issued_at="2026-12-06T17:00:00Z",
            settings=settings,
        )
        text, signature = sign_document(self.key.private_bytes(), document)
        return {"type": "settings", "camera": camera, "document": text, "signature": signature}

    def wire(self, *args: Any, **kwargs: Any) -> str:
        return json.dumps(self.message(*args, **kwargs))
