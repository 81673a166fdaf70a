"""Sending a camera's settings to its agent, signed (docs/live-view.md, `settings`):

    {"type": "settings", "camera": C, "document": TEXT, "signature": SIG}

TEXT is a SettingsDocument (device, camera, version, issued_at, overrides) and SIG the
server's Ed25519 signature over it with the audit log's key (crypto/settings_sig.py); the
agent learned that key at pairing and applies only a document signed for it with a
version above the one it applied.

Sent after every committed change and, when an agent connects, for every camera of the
device that has a version (after the mode: the live router holds `device_lock` while it
sends them and attaches the agent). Every send reads the row afresh under the same lock,
so a change committed while the agent connects reaches it either way, and two sends for
a camera cannot pass each other.

This package sits below the live relay (import layers), so the hub is described here by
what is used of it, not imported.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.crypto.keys import b64e
from doorwarden.crypto.settings_sig import SettingsDocument, sign_document
from doorwarden.devices.settings import service
from doorwarden.devices.settings.models import CameraSettingsRow

log = structlog.get_logger("doorwarden.devices.settings")
_locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()


class Signer(Protocol):
    """The audit log's signer (audit/log.py LogSigner): its raw private key and public key."""

    @property
    def private(self) -> bytes: ...

    @property
    def key(self) -> Any: ...  # a NoteKey: `.public` raw 32 bytes


class Linked(Protocol):
    @property
    def cameras(self) -> Sequence[str]: ...


class Hub(Protocol):
    """What is used of live.relay.LiveHub."""

    @property
    def agents(self) -> Mapping[uuid.UUID, Linked]: ...

    async def tell(self, device_id: uuid.UUID, message: dict[str, object]) -> bool: ...


def settings_key(signer: Signer) -> str:
    """The key agents verify settings with: base64url of the raw Ed25519 public key."""
    return b64e(bytes(signer.key.public))


def device_lock(device_id: uuid.UUID) -> asyncio.Lock:
    lock = _locks.get(device_id)
    if lock is None:
        lock = _locks[device_id] = asyncio.Lock()
    return lock


def message(signer: Signer, row: CameraSettingsRow, now: datetime) -> dict[str, Any]:
    document = SettingsDocument(
        device_id=str(row.device_id),
        camera=row.camera,
        version=row.version,
        issued_at=now.astimezone(UTC).isoformat(),
        settings=dict(row.overrides or {}),
    )
    text, signature = sign_document(signer.private, document)
    return {"type": "settings", "camera": row.camera, "document": text, "signature": signature}


async def messages_for(
    db: AsyncSession, signer: Signer, device_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """The messages for every camera of the device with a version (a row made by a
    report alone has none: nothing to apply)."""
    rows = await service.rows_of(db, device_id)
    return [message(signer, row, now) for row in rows if row.version > 0]


async def send_settings(
    db: AsyncSession,
    hub: Hub,
    signer: Signer,
    device_id: uuid.UUID,
    cameras: Iterable[str],
    now: datetime,
) -> int:
    """After a committed change: the cameras' current settings to their agent, if it is
    connected here (else it hears them when it connects). The number sent."""
    async with device_lock(device_id):
        if device_id not in hub.agents:
            return 0
        sent = 0
        for camera in cameras:
            row = await service.row_of(db, device_id, camera)
            if row is None or row.version == 0:
                continue
            if await hub.tell(device_id, message(signer, row, now)):
                sent += 1
        log.info("settings.sent", device=str(device_id), cameras=sent)
        return sent
