"""A fresh snapshot of one camera for the zone editor, from its agent over the control
connection (docs/camera-settings.md). The server asks with a random id, waits up to
TIMEOUT_S for the JPEG (privacy zones already blacked out by the agent) and hands it to
the owner's browser: it is never written anywhere, and each one is audited.

The hub is described by what is used of it (live.relay.LiveHub sits above this package).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

from doorwarden.errors import DomainError

TIMEOUT_S = 5.0
MAX_BYTES = 2 * 1024 * 1024
JPEG_START = b"\xff\xd8"


class CameraOffline(DomainError):
    status_code = 409
    code = "camera_offline"


class SnapshotTimeout(DomainError):
    status_code = 504
    code = "snapshot_timeout"


class SnapshotFailed(DomainError):
    """The agent answered, but with no usable picture."""

    status_code = 502
    code = "snapshot_failed"


class Waiting(Protocol):
    def expect(
        self, device_id: uuid.UUID, camera: str, snapshot_id: bytes
    ) -> asyncio.Future[bytes | str]: ...

    def forget(self, device_id: uuid.UUID, snapshot_id: bytes) -> None: ...


class Linked(Protocol):
    @property
    def cameras(self) -> Sequence[str]: ...


class Hub(Protocol):
    @property
    def agents(self) -> Mapping[uuid.UUID, Linked]: ...

    @property
    def snapshots(self) -> Waiting: ...

    async def tell(self, device_id: uuid.UUID, message: dict[str, object]) -> bool: ...


async def take(
    hub: Hub, device_id: uuid.UUID, camera: str, *, timeout_s: float = TIMEOUT_S
) -> bytes:
    """The JPEG, or CameraOffline (no agent here, or it has no such camera),
    SnapshotTimeout, SnapshotFailed."""
    link = hub.agents.get(device_id)
    if link is None:
        raise CameraOffline("The camera is not connected to this server: try again shortly.")
    if camera not in link.cameras:
        raise CameraOffline("The camera's agent did not announce a camera of this name.")
    snapshot_id = secrets.token_bytes(16)
    future = hub.snapshots.expect(device_id, camera, snapshot_id)
    try:
        asked = await hub.tell(
            device_id, {"type": "snapshot", "camera": camera, "id": snapshot_id.hex()}
        )
        if not asked:
            raise CameraOffline("The camera went offline.")
        try:
            result = await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            raise SnapshotTimeout(
                f"The camera did not send a snapshot within {timeout_s:g} s."
            ) from None
    finally:
        hub.snapshots.forget(device_id, snapshot_id)
    if isinstance(result, str):
        raise SnapshotFailed(result)
    if not result.startswith(JPEG_START):
        raise SnapshotFailed("The camera's snapshot is not a JPEG image.")
    if len(result) > MAX_BYTES:
        raise SnapshotFailed("The camera's snapshot is larger than 2 MiB.")
    return result
