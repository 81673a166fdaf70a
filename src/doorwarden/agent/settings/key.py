"""The server's settings key, as this agent pins it (docs/camera-settings.md).

Pairing stores it in `device.json` (`settings_key`). A camera paired before the server
sent one fetches it once from `GET /api/v1/device` (with its token, over the same
connection rules as the uploader) and keeps it; from then on it never changes without a
new pairing, so a server (or someone in between) cannot swap in another key later.
"""

from __future__ import annotations

import dataclasses
import threading

import httpx
import structlog

from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityError, IdentityStore
from doorwarden.agent.delivery.uploader import DEVICE_PATH, http_client
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import KEY_BYTES, b64d

log = structlog.get_logger("doorwarden.agent.settings.key")


class SettingsKey:
    """`get()`: the pinned key, fetched on first need; None while it cannot be had."""

    def __init__(
        self,
        identity: DeviceIdentity | None,
        store: IdentityStore | None,
        *,
        client: httpx.Client | None = None,
    ) -> None:
        self.identity = identity
        self.store = store
        self._client = client
        self._key = identity.settings_key if identity is not None else None
        self._lock = threading.Lock()
        self.error: str | None = None  # why the last fetch failed

    def get(self) -> bytes | None:
        with self._lock:
            if self._key is None and self.identity is not None:
                self._key = self._fetch(self.identity)
            return self._key

    def _fetch(self, identity: DeviceIdentity) -> bytes | None:
        client = self._client or http_client(timeout_s=10.0)
        try:
            response = client.get(
                identity.server.rstrip("/") + DEVICE_PATH,
                headers={"authorization": f"Bearer {identity.token}"},
            )
            text = response.json().get("settings_key") if response.status_code == 200 else None
            if not isinstance(text, str):
                raise ValueError(f"no settings_key in the answer ({response.status_code})")
            key = b64d(text, what="settings_key", length=KEY_BYTES)
        except (httpx.HTTPError, ValueError, AttributeError, MalformedError) as exc:
            self.error = str(exc) or type(exc).__name__
            log.warning("settings.key_unavailable", error=self.error)
            return None
        finally:
            if self._client is None:
                client.close()
        self.error = None
        self.identity = dataclasses.replace(identity, settings_key=key)
        if self.store is not None:
            try:
                self.store.save(self.identity)
            except (OSError, IdentityError) as exc:  # used anyway; fetched again next start
                log.warning("settings.key_not_saved", error=str(exc))
        log.info("settings.key_pinned")
        return key
