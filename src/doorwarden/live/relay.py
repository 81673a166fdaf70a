"""The live relay: one upstream per camera, fanned out to its viewers. Pure asyncio, no
web framework: the router feeds it what the sockets receive and drains what it queues.

* A camera is streamed only while someone watches: the first viewer of a channel sends
  `start` to the agent; when the last one leaves, `stop` follows after `linger_s`, so a
  page reload does not restart the camera's stream.
* A late viewer starts at once: the channel keeps the init segment and the fragments
  since the last keyframe (bounded by `GOP_CACHE_BYTES`).
* A slow viewer never slows the others or the agent: each has its own bounded queue.
  When it is full, the viewer's pending fragments are dropped and it resumes at the next
  keyframe (its picture jumps forward; the page seeks to the live edge). `fell_behind`
  counts these episodes; the capacity benchmark requires it to stay at 0.
* Bytes are relayed as they came; the server never decodes video (DESIGN). In an
  end-to-end household they are ciphertext it cannot read (crypto/live.py): the init
  message's "e2e" block is checked for shape and passed on, the payloads are forwarded
  unchanged, and the keyframe kind the agent puts outside them keeps the GOP cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping

import structlog

from doorwarden.bus import Bus
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.live import check_block
from doorwarden.live.channel import GOP_CACHE_BYTES, Channel, Out, State, Viewer
from doorwarden.live.cluster import Cluster
from doorwarden.live.remote import Agents, RemoteAgent
from doorwarden.live.snapshots import SNAPSHOT, Snapshots
from doorwarden.live.talk import Talks

log = structlog.get_logger("doorwarden.live")

# The channel's parts moved to live/channel.py; they are still this module's to import.
__all__ = ["GOP_CACHE_BYTES", "AgentLink", "Channel", "LiveHub", "Out", "State", "Viewer"]

INIT, KEYFRAME, FRAGMENT = 0, 1, 2  # first byte of an agent's binary message
DEFAULT_CAMERA = ""  # a viewer that names no camera watches the agent's first one


Send = Callable[[str], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]
Close = Callable[[], Awaitable[None]]


class AgentLink:
    """A connected agent: how to send it control messages, and its camera names."""

    def __init__(
        self, device_id: uuid.UUID, send: Send, close: Close, send_bytes: SendBytes | None = None
    ) -> None:
        self.device_id = device_id
        self.send = send
        self.close = close
        self.send_bytes = send_bytes  # talk audio (live/talk.py)
        self.cameras: list[str] = []
        self.streaming: set[str] = set()
        self.pending_init: tuple[str, str] | None = None  # (camera, init JSON for viewers)

    def resolve(self, camera: str) -> str | None:
        if camera == DEFAULT_CAMERA:
            return self.cameras[0] if self.cameras else None
        return camera if camera in self.cameras else None


class LiveHub:
    """All live channels of this server process (see docs/live-view.md for scaling)."""

    def __init__(self, *, linger_s: float, max_viewer_fragments: int) -> None:
        self.linger_s = linger_s
        self.max_viewer_fragments = max_viewer_fragments
        self.local: dict[uuid.UUID, AgentLink] = {}  # agents connected to this process
        self.channels: dict[tuple[uuid.UUID, str], Channel] = {}
        self.cluster: Cluster | None = None  # with a bus: the other instances (cluster.py)
        self.talks = Talks(self.local, elsewhere=lambda d: d in self.agents)
        self.snapshots = Snapshots()  # for the zone editor (devices/settings/snapshot.py)
        self.closed = False

    @property
    def agents(self) -> Mapping[uuid.UUID, AgentLink | RemoteAgent]:
        """Every agent of the deployment this hub knows of: here, then elsewhere."""
        return Agents(self.local, self.cluster.remote if self.cluster is not None else {})

    async def use_bus(self, bus: Bus) -> None:
        """Join the other instances on `bus` (main.py's lifespan)."""
        self.cluster = Cluster(self, bus)
        await self.cluster.start()

    async def aclose(self) -> None:
        """close(), then leave the other instances (they hear these agents go)."""
        self.close()
        if self.cluster is not None:
            await self.cluster.close()

    def close(self) -> None:
        """The server is stopping: no linger timer may start work on a loop that is about
        to close (its task would be destroyed pending)."""
        self.closed = True
        for channel in self.channels.values():
            if channel.stop_timer is not None:
                channel.stop_timer.cancel()
                channel.stop_timer = None

    # -- agents ------------------------------------------------------------------------
    async def attach(self, link: AgentLink, cameras: list[str]) -> AgentLink | None:
        """A hello from `link`; returns the link it replaces (to be closed), if any."""
        previous = self.local.get(link.device_id)
        if previous is not None and previous is not link:  # its talks went with it
            self.talks.agent_gone(
                link.device_id, ended_by="agent-offline", message="The camera reconnected."
            )
        link.cameras = cameras
        self.local[link.device_id] = link
        self.adopt_default(link.device_id, cameras)
        if self.cluster is not None:
            await self.cluster.attached(link)
        for channel in self.channels_of(link.device_id):
            if channel.viewers:
                await self._start(link, channel)
        return previous if previous is not link else None

    def detach(
        self,
        link: AgentLink,
        message: str = "The camera is offline.",
        ended_by: str = "agent-offline",  # for the audit of a talk this ends (live/talk.py)
    ) -> None:
        if self.local.get(link.device_id) is not link:
            return  # already replaced by a newer connection of the same agent
        del self.local[link.device_id]
        if self.cluster is not None:
            self.cluster.detached(link)
        self.talks.agent_gone(link.device_id, ended_by=ended_by, message=message)
        self.snapshots.agent_gone(link.device_id, message)
        for channel in self.channels_of(link.device_id):
            channel.reset("offline", message)
            self._forget_if_idle(channel)

    async def tell(self, device_id: uuid.UUID, message: dict[str, object]) -> bool:
        """A control message for a connected agent (modes/push.py's mode); False when the
        agent is not connected, here or (with a bus) at another instance."""
        link = self.local.get(device_id)
        if link is None:
            if self.cluster is not None and device_id in self.cluster.remote:
                return await self.cluster.tell(device_id, message)
            return False
        await _send_quietly(link, message)
        return True

    async def disconnect(self, device_id: uuid.UUID) -> None:
        """Close a camera's connection (it was removed from its household)."""
        link = self.local.get(device_id)
        if link is not None:
            self.detach(link, "The camera was removed from this household.", "camera-removed")
            with contextlib.suppress(Exception):
                await link.close()
        elif self.cluster is not None and device_id in self.cluster.remote:
            await self.cluster.disconnect(device_id)

    def agent_text(self, link: AgentLink, message: dict[str, object]) -> None:
        kind, camera = message.get("type"), message.get("camera")
        if not isinstance(camera, str) or camera not in link.cameras:
            raise ValueError(f"unknown camera {camera!r}")
        if kind == "init":
            mime = message.get("mime")
            if not isinstance(mime, str) or not mime.startswith("video/mp4"):
                raise ValueError("init needs a video/mp4 mime type")
            info = {k: message.get(k) for k in ("mime", "width", "height", "audio")}
            if "e2e" in message:  # sealed end to end: the viewers' pages need the block
                try:
                    info["e2e"] = check_block(message["e2e"])
                except MalformedError as exc:
                    raise ValueError(f"init: {exc}") from None
            link.pending_init = (camera, json.dumps({"type": "init", **info}))
        elif kind == "error":
            text = str(message.get("message", "The camera cannot stream."))[:300]
            if channel := self.channels.get((link.device_id, camera)):
                channel.reset("error", text)
        elif kind == "talk_state":
            self.talks.agent_state(link, message)
        elif kind == "snapshot_error":
            cluster = self.cluster
            if cluster is None or not cluster.forward_snapshot_error(link.device_id, message):
                self.snapshots.agent_error(link.device_id, message)
        else:
            raise ValueError(f"unknown message type {kind!r}")

    def agent_binary(self, link: AgentLink, data: bytes) -> None:
        if len(data) >= 2 and data[0] == SNAPSHOT:
            if data[1] >= len(link.cameras):
                raise ValueError(f"unknown camera index {data[1]}")
            camera = link.cameras[data[1]]
            cluster = self.cluster
            if cluster is None or not cluster.forward_snapshot(link.device_id, camera, data[2:]):
                self.snapshots.agent_reply(link.device_id, camera, data[2:])
            return
        if len(data) < 2 or data[0] not in (INIT, KEYFRAME, FRAGMENT):
            raise ValueError("a media message starts with its kind and camera index")
        if data[1] >= len(link.cameras):
            raise ValueError(f"unknown camera index {data[1]}")
        camera, payload = link.cameras[data[1]], data[2:]
        if data[0] == INIT:
            pending = link.pending_init
            if pending is None or pending[0] != camera:
                raise ValueError("an init segment must follow its init message")
            link.pending_init = None
            if channel := self.channels.get((link.device_id, camera)):
                channel.new_stream(pending[1], payload)
            return
        if channel := self.channels.get((link.device_id, camera)):
            channel.fragment(payload, keyframe=data[0] == KEYFRAME)

    # -- viewers -----------------------------------------------------------------------
    async def join(self, device_id: uuid.UUID, camera: str, viewer: Viewer) -> Channel:
        link = self.local.get(device_id)
        remote = self.cluster.remote.get(device_id) if self.cluster is not None else None
        if (known := link or remote) is not None:
            camera = known.resolve(camera) or camera
        channel = self._channel(device_id, camera)
        if channel.stop_timer is not None:
            channel.stop_timer.cancel()
            channel.stop_timer = None
        channel.viewers.add(viewer)
        if link is None and remote is not None and channel.init is None:
            channel.state, channel.message = "connecting", None
        elif link is None and remote is None:
            channel.state, channel.message = "offline", "The camera is offline."
        elif channel.init is None and channel.state != "error":
            channel.state, channel.message = "connecting", None
        channel.welcome(viewer)
        if link is not None:
            await self._start(link, channel)
        elif self.cluster is not None:
            await self.cluster.reconcile(device_id)
        return channel

    def leave(self, channel: Channel, viewer: Viewer) -> None:
        viewer.close()
        if viewer not in channel.viewers:  # moved when "the camera" got its name
            channel = next((c for c in self.channels_of(channel.device_id)
                            if viewer in c.viewers), channel)  # fmt: skip
        channel.viewers.discard(viewer)
        if channel.viewers:
            return
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        channel.stop_timer = loop.call_later(
            self.linger_s, lambda: asyncio.ensure_future(self._linger_over(channel))
        )

    async def _linger_over(self, channel: Channel) -> None:
        channel.stop_timer = None
        if channel.watched:
            return
        link = self.local.get(channel.device_id)
        if link is not None and channel.camera in link.streaming:
            link.streaming.discard(channel.camera)
            await _send_quietly(link, {"type": "stop", "camera": channel.camera})
        self._forget_if_idle(channel)
        if self.cluster is not None:
            await self.cluster.reconcile(channel.device_id)

    # -- watchers at other instances (cluster.py) --------------------------------------
    async def release(self, device_id: uuid.UUID, message: str, ended_by: str) -> None:
        """Let this process's link to `device_id` go (it connected elsewhere since)."""
        if (link := self.local.get(device_id)) is not None:
            self.detach(link, message, ended_by)
            with contextlib.suppress(Exception):
                await link.close()

    async def remote_watch(
        self, device_id: uuid.UUID, camera: str, instance: str, until: float
    ) -> Channel | None:
        """Another instance watches `camera` of the agent here until loop time `until`."""
        link = self.local.get(device_id)
        if link is None or (camera := link.resolve(camera) or "") == "":
            return None
        channel = self._channel(link.device_id, camera)
        if channel.stop_timer is not None:
            channel.stop_timer.cancel()
            channel.stop_timer = None
        channel.remote[instance] = until
        await self._start(link, channel)
        return channel

    async def remote_left(self, channel: Channel) -> None:
        """The last other instance stopped watching (it lingered already): stop now."""
        if not channel.watched and channel.stop_timer is None:
            await self._linger_over(channel)

    def adopt_default(self, device_id: uuid.UUID, cameras: list[str]) -> None:
        """Viewers who asked for "the camera" watch the agent's first one, now known."""
        waiting = self.channels.pop((device_id, DEFAULT_CAMERA), None)
        if waiting is not None and cameras:
            channel = self._channel(device_id, cameras[0])
            channel.viewers |= waiting.viewers
            if waiting.stop_timer is not None:
                waiting.stop_timer.cancel()
        elif waiting is not None:
            self.channels[(device_id, DEFAULT_CAMERA)] = waiting

    # -- helpers -----------------------------------------------------------------------
    async def _start(self, link: AgentLink, channel: Channel) -> None:
        camera = link.resolve(channel.camera)
        if camera is None:
            channel.reset("error", f"This camera has no stream named {channel.camera!r}.")
            return
        if camera not in link.streaming:
            link.streaming.add(camera)
            channel.reset("connecting")
            await _send_quietly(link, {"type": "start", "camera": camera})

    def channels_of(self, device_id: uuid.UUID) -> list[Channel]:
        return [c for (d, _), c in self.channels.items() if d == device_id]

    def _channel(self, device_id: uuid.UUID, camera: str) -> Channel:
        return self.channels.setdefault((device_id, camera), Channel(device_id, camera))

    def _forget_if_idle(self, channel: Channel) -> None:
        if not channel.watched and channel.stop_timer is None:
            self.channels.pop((channel.device_id, channel.camera), None)


async def _send_quietly(link: AgentLink, message: dict[str, object]) -> None:
    """Control messages to an agent whose socket may be closing: its handler cleans up."""
    try:
        await link.send(json.dumps(message))
    except Exception as exc:  # noqa: BLE001 - a dead socket is the agent handler's to report
        log.info("live.agent_send_failed", device=str(link.device_id), error=str(exc))
