"""Which settings each camera runs with: the YAML, or the YAML with the web's last
signed document laid over it, and which version that was.

`CameraSettingsState.check` decides whether a document the server signed may replace
what a camera runs (the device and camera it names, a version above the one applied:
replay protection) and merges it; `commit` records it. Nothing here touches a running
camera: handler.py does, between the two.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.settings.merge import Effective, merge
from doorwarden.agent.settings.store import SettingsStore, Stored
from doorwarden.crypto.errors import SealError, SignatureError
from doorwarden.crypto.settings_sig import SettingsDocument, open_document
from doorwarden.formats.camera_settings import SettingsError

log = structlog.get_logger("doorwarden.agent.settings.state")


class Refused(Exception):
    """A settings update this agent does not apply; the message goes back to the server."""


@dataclass(frozen=True)
class Checked:
    """A document that may be applied (`effective`), or one already applied (`same`)."""

    document: SettingsDocument
    stored: Stored
    effective: Effective
    same: bool = False  # the version this camera runs already, sent again (a reconnect)


class CameraSettingsState:
    def __init__(
        self, cameras: Sequence[CameraConfig], store: SettingsStore | None, device_id: str | None
    ) -> None:
        self.base = {c.name: c for c in cameras}
        self.store = store
        self.device_id = device_id
        self.effective: dict[str, Effective] = {c.name: merge(c, {}) for c in cameras}
        self.stored: dict[str, Stored] = {}
        self._lock = threading.Lock()

    def load(self, key: bytes | None) -> None:
        """The settings kept by the last run (before any camera starts). With the server's
        key each document is checked again; one that no longer verifies is dropped (the
        camera runs on the YAML, logged). One that verifies but no longer merges (the YAML
        changed under it) keeps its version, so an older one still cannot be replayed."""
        if self.store is None:
            return
        for name, entry in self.store.load().items():
            if name not in self.base:
                log.warning("settings.unknown_camera", camera=name, effect="ignored")
                continue
            try:
                overrides = entry.overrides
                if key is not None:
                    document = self._open(key, name, entry.document, entry.signature)
                    if document.version != entry.version:
                        raise Refused("the stored version is not the document's")
                    overrides = document.settings
            except Refused as exc:
                log.error("settings.stored_refused", camera=name, error=str(exc))
                continue
            self.stored[name] = entry
            try:
                self.effective[name] = merge(self.base[name], overrides, version=entry.version)
            except SettingsError as exc:
                log.error("settings.stored_invalid", camera=name, version=entry.version,
                          error=str(exc), effect="the camera runs on its file")  # fmt: skip
                continue
            log.info("settings.loaded", camera=name, version=entry.version)

    def applied_version(self, camera: str) -> int:
        entry = self.stored.get(camera)
        return entry.version if entry is not None else 0

    def check(self, key: bytes, camera: object, text: object, signature: object) -> Checked:
        """The server's `settings` message checked; Refused saying why."""
        if not isinstance(camera, str) or camera not in self.base:
            raise Refused(f"no camera {camera!r} on this agent")
        if not isinstance(text, str) or not isinstance(signature, str):
            raise Refused("document and signature must be strings")
        document = self._open(key, camera, text, signature)
        stored = Stored(document.version, text, signature, document.settings)
        with self._lock:
            current = self.stored.get(camera)
            applied = current.version if current is not None else 0
            running = self.effective[camera].version
        if document.version < applied or (
            document.version == applied and current is not None and current.document != text
        ):
            raise Refused(f"version {document.version} is not newer than applied {applied}")
        same = document.version == applied and running == applied
        try:
            effective = merge(self.base[camera], document.settings, version=document.version)
        except SettingsError as exc:
            raise Refused(f"invalid settings: {exc}") from None
        return Checked(document, stored, effective, same=same)

    def commit(self, camera: str, checked: Checked) -> OSError | None:
        """Record what the camera now runs; the OSError when it could not be saved (it
        still applies until the agent restarts)."""
        with self._lock:
            self.effective[camera] = checked.effective
            self.stored[camera] = checked.stored
        if self.store is None or checked.same:
            return None
        try:
            self.store.save(camera, checked.stored)
        except OSError as exc:
            log.error("settings.save_failed", camera=camera, error=str(exc))
            return exc
        return None

    def _open(self, key: bytes, camera: str, text: str, signature: str) -> SettingsDocument:
        try:
            document = open_document(key, text, signature)
        except SignatureError:
            raise Refused("bad signature: not signed by this server's settings key") from None
        except (SealError, UnicodeError) as exc:  # MalformedError; a lone surrogate
            raise Refused(f"malformed document: {exc}") from None
        if self.device_id is not None and document.device_id != self.device_id:
            raise Refused(f"signed for device {document.device_id}, not this one")
        if document.camera != camera:
            raise Refused(f"signed for camera {document.camera!r}, not {camera!r}")
        return document
