"""Agents held by other instances, as this hub shows them (`LiveHub.agents`): what the
pages, modes and settings pushes read of a connected agent, and where `tell` goes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Generic, TypeVar

Tell = Callable[[uuid.UUID, dict[str, object]], Awaitable[bool]]
Disconnect = Callable[[uuid.UUID], Awaitable[None]]
Link = TypeVar("Link")


class RemoteAgent:
    """An agent connected to another instance (`instance`), since `at` (its wall time)."""

    def __init__(
        self,
        device_id: uuid.UUID,
        cameras: list[str],
        instance: str,
        at: float,
        tell: Tell,
        disconnect: Disconnect,
    ) -> None:
        self.device_id, self.cameras, self.instance, self.at = device_id, cameras, instance, at
        self._tell, self._disconnect = tell, disconnect
        self.send_bytes = None  # talk audio is not routed (live/talk.py, REMOTE_TALK)
        self.streaming: set[str] = set()

    def resolve(self, camera: str) -> str | None:
        if camera == "":
            return self.cameras[0] if self.cameras else None
        return camera if camera in self.cameras else None

    async def send(self, text: str) -> None:
        if not await self._tell(self.device_id, json.loads(text)):
            raise ConnectionError("the camera's instance did not take the message")

    async def close(self) -> None:
        await self._disconnect(self.device_id)


class Agents(Mapping[uuid.UUID, "Link | RemoteAgent"], Generic[Link]):
    """Agents held here first, then those held elsewhere."""

    def __init__(
        self, local: Mapping[uuid.UUID, Link], remote: Mapping[uuid.UUID, RemoteAgent]
    ) -> None:
        self.local, self.remote = local, remote

    def __getitem__(self, key: uuid.UUID) -> Link | RemoteAgent:
        if key in self.local:
            return self.local[key]
        return self.remote[key]

    def __iter__(self) -> Iterator[uuid.UUID]:
        yield from self.local
        yield from (k for k in self.remote if k not in self.local)

    def __len__(self) -> int:
        return sum(1 for _ in self)
