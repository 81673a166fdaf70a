"""Snapshots on their way from an agent to the request that asked (devices/settings/
snapshot.py; docs/live-view.md). The agent answers `{"type": "snapshot", "id": ...}` with
a binary `[0x20][camera index][16-byte id][JPEG]` or a text `snapshot_error`; each answer
is handed to the future waiting for its id and is never kept. An answer nobody waits for
any more (the request gave up) is dropped.
"""

from __future__ import annotations

import asyncio
import uuid

import structlog

log = structlog.get_logger("doorwarden.live")

SNAPSHOT = 0x20  # first byte of the agent's binary answer
ID_BYTES = 16
MAX_BYTES = 2 * 1024 * 1024
Result = bytes | str  # the JPEG, or why there is none


class Snapshots:
    def __init__(self) -> None:
        self._waiting: dict[tuple[uuid.UUID, bytes], tuple[str, asyncio.Future[Result]]] = {}

    def expect(
        self, device_id: uuid.UUID, camera: str, snapshot_id: bytes
    ) -> asyncio.Future[Result]:
        """A future for the answer to `snapshot_id`; the caller asks the agent, waits, then
        calls `forget` whatever happened."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting[(device_id, snapshot_id)] = (camera, future)
        return future

    def forget(self, device_id: uuid.UUID, snapshot_id: bytes) -> None:
        self._waiting.pop((device_id, snapshot_id), None)

    def pending(self) -> int:
        return len(self._waiting)

    def _done(self, key: tuple[uuid.UUID, bytes], result: Result) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(result)

    def agent_reply(self, device_id: uuid.UUID, camera: str, body: bytes) -> None:
        """`body`: the id then the JPEG (the kind and camera index already read)."""
        if len(body) < ID_BYTES:
            raise ValueError("a snapshot carries its 16-byte id")
        key = (device_id, bytes(body[:ID_BYTES]))
        waiting = self._waiting.get(key)
        if waiting is None:
            log.info("live.snapshot_unclaimed", device=str(device_id))
            return
        jpeg = bytes(body[ID_BYTES:])
        if camera != waiting[0]:
            self._done(key, "The camera answered with another camera's picture.")
        elif len(jpeg) > MAX_BYTES:
            self._done(key, "The camera's snapshot is larger than 2 MiB.")
        else:
            self._done(key, jpeg)

    def agent_error(self, device_id: uuid.UUID, message: dict[str, object]) -> None:
        snapshot_id = message.get("id")
        try:
            raw = bytes.fromhex(snapshot_id) if isinstance(snapshot_id, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != ID_BYTES:
            raise ValueError("a snapshot_error names its snapshot's id (32 hex digits)")
        text = str(message.get("message") or "The camera could not take a snapshot.")[:300]
        self._done((device_id, raw), text)

    def agent_gone(self, device_id: uuid.UUID, message: str) -> None:
        for key in [k for k in self._waiting if k[0] == device_id]:
            self._done(key, message)
