"""`<state_dir>/settings.json`: the settings documents this agent applied, per camera.

    {"cameras": {"front": {"version": 4, "document": "<the server's JSON text>",
                           "signature": "<base64url>", "overrides": {"privacy_zones": ...}}}}

The document and its signature are kept as the server sent them, so a restart can check
them again against the pinned key before trusting them; `overrides` repeats the
document's settings for readers without the key (`doorwarden agent status`). The version
is what replay protection compares with: an update must be newer than the one kept here.

The file is rewritten whole, atomically (identity.write_atomic: temporary file, fsync,
rename, directory fsync), so a crash leaves the old version or the new one, never half.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from doorwarden.agent.delivery.identity import write_atomic

log = structlog.get_logger("doorwarden.agent.settings.store")

SETTINGS_FILE = "settings.json"
MAX_FILE_BYTES = 4 * 1024 * 1024  # 64 cameras x a 96 KiB document, with room to spare


@dataclass(frozen=True)
class Stored:
    """One camera's applied settings, as the server signed them."""

    version: int
    document: str
    signature: str
    overrides: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version, "document": self.document,
            "signature": self.signature, "overrides": self.overrides,
        }  # fmt: skip

    @classmethod
    def from_json(cls, body: object) -> Stored:
        """ValueError naming what is wrong."""
        if not isinstance(body, dict):
            raise ValueError("not an object")
        version, document = body.get("version"), body.get("document")
        signature, overrides = body.get("signature"), body.get("overrides")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError("version: not a positive integer")
        if not isinstance(document, str) or not isinstance(signature, str):
            raise ValueError("document and signature must be strings")
        if not isinstance(overrides, dict):
            raise ValueError("overrides: not an object")
        return cls(version, document, signature, overrides)


class SettingsStore:
    """The applied settings of every camera; `save` replaces one camera's entry."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / SETTINGS_FILE
        self._lock = threading.Lock()  # one writer at a time: entries are merged in memory
        self._entries: dict[str, Stored] | None = None

    def load(self) -> dict[str, Stored]:
        """Every camera's entry; {} when there is no file. An unreadable file or entry is
        logged and left out (the YAML then rules that camera until the server sends its
        settings again, which it does on every connection)."""
        with self._lock:
            self._entries = self._read()
            return dict(self._entries)

    def save(self, camera: str, entry: Stored) -> None:
        """Durably, or OSError and nothing changed on disk."""
        with self._lock:
            entries = self._entries if self._entries is not None else self._read()
            updated = {**entries, camera: entry}
            body = {"cameras": {name: e.to_json() for name, e in sorted(updated.items())}}
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(body, sort_keys=True, indent=1).encode())
            self._entries = updated

    def _read(self) -> dict[str, Stored]:
        try:
            with self.path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.error("settings.unreadable", path=str(self.path), error=str(exc))
            return {}
        try:
            if len(raw) > MAX_FILE_BYTES:
                raise ValueError("file too large")
            body = json.loads(raw)
            cameras = body.get("cameras") if isinstance(body, dict) else None
            if not isinstance(cameras, dict):
                raise ValueError("no cameras object")
        except ValueError as exc:
            log.error("settings.unreadable", path=str(self.path), error=str(exc))
            return {}
        return _entries(cameras, self.path)


def _entries(cameras: Mapping[str, object], path: Path) -> dict[str, Stored]:
    out: dict[str, Stored] = {}
    for name, body in cameras.items():
        try:
            out[str(name)] = Stored.from_json(body)
        except ValueError as exc:
            log.error("settings.bad_entry", path=str(path), camera=name, error=str(exc))
    return out
