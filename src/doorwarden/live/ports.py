"""What live/cluster.py needs of the relay: protocols, since the relay imports the
cluster (modules never import each other back: tests/unit/test_import_graph.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Protocol

from doorwarden.live.channel import Channel
from doorwarden.live.snapshots import Snapshots


class AgentLink(Protocol):
    """What the cluster reads of an agent connected here (relay.AgentLink)."""

    device_id: uuid.UUID
    cameras: list[str]

    def resolve(self, camera: str) -> str | None: ...


class LiveHub(Protocol):
    """What the cluster needs of its hub (relay.LiveHub, which imports this module)."""

    @property
    def local(self) -> Mapping[uuid.UUID, AgentLink]: ...
    @property
    def channels(self) -> Mapping[tuple[uuid.UUID, str], Channel]: ...
    @property
    def snapshots(self) -> Snapshots: ...
    def channels_of(self, device_id: uuid.UUID) -> list[Channel]: ...
    def adopt_default(self, device_id: uuid.UUID, cameras: list[str]) -> None: ...
    async def tell(self, device_id: uuid.UUID, message: dict[str, object]) -> bool: ...
    async def disconnect(self, device_id: uuid.UUID) -> None: ...
    async def release(self, device_id: uuid.UUID, message: str, ended_by: str) -> None: ...
    async def remote_watch(
        self, device_id: uuid.UUID, camera: str, instance: str, until: float
    ) -> Channel | None: ...
    async def remote_left(self, channel: Channel) -> None: ...
