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
* Bytes are relayed as they came; the server never decodes video (DESIGN).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import structlog

from doorwarden.live.snapshots import SNAPSHOT, Snapshots
from doorwarden.live.talk import Talks

log = structlog.get_logger("doorwarden.live")

INIT, KEYFRAME, FRAGMENT = 0, 1, 2  # first byte of an agent's binary message
GOP_CACHE_BYTES = 16 * 1024 * 1024
DEFAULT_CAMERA = ""  # a viewer that names no camera watches the agent's first one

State = Literal["connecting", "streaming", "offline", "error"]


@dataclass(frozen=True)
class Out:
    """One message for a viewer: text (JSON) or bytes (init segment or fragment)."""

    data: str | bytes
    fragment: bool = False
    keyframe: bool = False


class Viewer:
    """One browser's queue. The router's sender task awaits `next()`."""

    def __init__(self, user_id: uuid.UUID | None, max_fragments: int) -> None:
        self.user_id = user_id
        self.max_fragments = max_fragments
        self.sent_bytes = 0
        self.fell_behind = 0
        self._pending: deque[Out] = deque()
        self._fragments = 0
        self._waiting_keyframe = True
        self._ready = asyncio.Event()
        self.closed = False

    def push(self, out: Out) -> None:
        if self.closed:
            return
        if out.fragment:
            if self._fragments >= self.max_fragments:
                self._drop_fragments()
            if self._waiting_keyframe and not out.keyframe:
                return
            self._waiting_keyframe = False
            self._fragments += 1
        self._pending.append(out)
        self._ready.set()

    def restart(self) -> None:
        """A new init segment follows: what was queued belongs to the old stream."""
        self._pending = deque(o for o in self._pending if not o.fragment)
        self._fragments = 0
        self._waiting_keyframe = True

    def _drop_fragments(self) -> None:
        self.fell_behind += 1
        self.restart()
        log.warning("live.viewer_behind", user=str(self.user_id), episodes=self.fell_behind)

    async def next(self) -> Out:
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        out = self._pending.popleft()
        if out.fragment:
            self._fragments -= 1
        return out

    def close(self) -> None:
        self.closed = True
        self._pending.clear()
        self._ready.set()


@dataclass
class Channel:
    """One camera of one device, and whoever watches it."""

    device_id: uuid.UUID
    camera: str
    viewers: set[Viewer] = field(default_factory=set)
    state: State = "offline"
    message: str | None = None
    init: tuple[str, bytes] | None = None  # (init JSON for viewers, init segment)
    gop: list[bytes] = field(default_factory=list)
    gop_bytes: int = 0
    stop_timer: asyncio.TimerHandle | None = None

    def state_message(self) -> Out:
        return Out(json.dumps({"type": "state", "state": self.state, "message": self.message}))

    def set_state(self, state: State, message: str | None = None) -> None:
        if (state, message) == (self.state, self.message):
            return
        self.state, self.message = state, message
        self.broadcast(self.state_message())

    def broadcast(self, out: Out) -> None:
        for viewer in self.viewers:
            viewer.push(out)

    def welcome(self, viewer: Viewer) -> None:
        """What a viewer joining now needs: the state, then the stream from a keyframe."""
        viewer.push(self.state_message())
        if self.init is not None:
            viewer.push(Out(self.init[0]))
            viewer.push(Out(self.init[1]))
            for i, fragment in enumerate(self.gop):
                viewer.push(Out(fragment, fragment=True, keyframe=i == 0))

    def new_stream(self, init_json: str, segment: bytes) -> None:
        self.init = (init_json, segment)
        self.gop, self.gop_bytes = [], 0
        for viewer in self.viewers:
            viewer.restart()
            viewer.push(Out(init_json))
            viewer.push(Out(segment))
        self.set_state("streaming")

    def fragment(self, data: bytes, *, keyframe: bool) -> None:
        if self.init is None:
            return  # media before its init segment: nobody could decode it
        if keyframe:
            self.gop, self.gop_bytes = [], 0
        if self.gop or keyframe:
            self.gop.append(data)
            self.gop_bytes += len(data)
            if self.gop_bytes > GOP_CACHE_BYTES:  # a very long GOP: late viewers wait instead
                self.gop, self.gop_bytes = [], 0
        self.broadcast(Out(data, fragment=True, keyframe=keyframe))

    def reset(self, state: State, message: str | None = None) -> None:
        self.init, self.gop, self.gop_bytes = None, [], 0
        self.set_state(state, message)


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
        self.agents: dict[uuid.UUID, AgentLink] = {}
        self.channels: dict[tuple[uuid.UUID, str], Channel] = {}
        self.talks = Talks(self.agents)
        self.snapshots = Snapshots()  # for the zone editor (devices/settings/snapshot.py)
        self.closed = False

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
        previous = self.agents.get(link.device_id)
        if previous is not None and previous is not link:  # its talks went with it
            self.talks.agent_gone(
                link.device_id, ended_by="agent-offline", message="The camera reconnected."
            )
        link.cameras = cameras
        self.agents[link.device_id] = link
        waiting = self.channels.pop((link.device_id, DEFAULT_CAMERA), None)
        if waiting is not None and cameras:  # viewers who asked for "the camera"
            channel = self._channel(link.device_id, cameras[0])
            channel.viewers |= waiting.viewers
        elif waiting is not None:
            self.channels[(link.device_id, DEFAULT_CAMERA)] = waiting
        for channel in self._channels_of(link.device_id):
            if channel.viewers:
                await self._start(link, channel)
        return previous if previous is not link else None

    def detach(
        self,
        link: AgentLink,
        message: str = "The camera is offline.",
        ended_by: str = "agent-offline",  # for the audit of a talk this ends (live/talk.py)
    ) -> None:
        if self.agents.get(link.device_id) is not link:
            return  # already replaced by a newer connection of the same agent
        del self.agents[link.device_id]
        self.talks.agent_gone(link.device_id, ended_by=ended_by, message=message)
        self.snapshots.agent_gone(link.device_id, message)
        for channel in self._channels_of(link.device_id):
            channel.reset("offline", message)
            self._forget_if_idle(channel)

    async def tell(self, device_id: uuid.UUID, message: dict[str, object]) -> bool:
        """A control message for a connected agent (modes/push.py's mode); False when the
        agent is not connected to this process."""
        link = self.agents.get(device_id)
        if link is None:
            return False
        await _send_quietly(link, message)
        return True

    async def disconnect(self, device_id: uuid.UUID) -> None:
        """Close a camera's connection (it was removed from its household)."""
        link = self.agents.get(device_id)
        if link is not None:
            self.detach(link, "The camera was removed from this household.", "camera-removed")
            with contextlib.suppress(Exception):
                await link.close()

    def agent_text(self, link: AgentLink, message: dict[str, object]) -> None:
        kind, camera = message.get("type"), message.get("camera")
        if not isinstance(camera, str) or camera not in link.cameras:
            raise ValueError(f"unknown camera {camera!r}")
        if kind == "init":
            mime = message.get("mime")
            if not isinstance(mime, str) or not mime.startswith("video/mp4"):
                raise ValueError("init needs a video/mp4 mime type")
            info = {k: message.get(k) for k in ("mime", "width", "height", "audio")}
            link.pending_init = (camera, json.dumps({"type": "init", **info}))
        elif kind == "error":
            text = str(message.get("message", "The camera cannot stream."))[:300]
            if channel := self.channels.get((link.device_id, camera)):
                channel.reset("error", text)
        elif kind == "talk_state":
            self.talks.agent_state(link, message)
        elif kind == "snapshot_error":
            self.snapshots.agent_error(link.device_id, message)
        else:
            raise ValueError(f"unknown message type {kind!r}")

    def agent_binary(self, link: AgentLink, data: bytes) -> None:
        if len(data) >= 2 and data[0] == SNAPSHOT:
            if data[1] >= len(link.cameras):
                raise ValueError(f"unknown camera index {data[1]}")
            self.snapshots.agent_reply(link.device_id, link.cameras[data[1]], data[2:])
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
        link = self.agents.get(device_id)
        if link is not None:
            camera = link.resolve(camera) or camera
        channel = self._channel(device_id, camera)
        if channel.stop_timer is not None:
            channel.stop_timer.cancel()
            channel.stop_timer = None
        channel.viewers.add(viewer)
        if link is None:
            channel.state, channel.message = "offline", "The camera is offline."
        elif channel.init is None and channel.state != "error":
            channel.state, channel.message = "connecting", None
        channel.welcome(viewer)
        if link is not None:
            await self._start(link, channel)
        return channel

    def leave(self, channel: Channel, viewer: Viewer) -> None:
        viewer.close()
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
        if channel.viewers:
            return
        link = self.agents.get(channel.device_id)
        if link is not None and channel.camera in link.streaming:
            link.streaming.discard(channel.camera)
            await _send_quietly(link, {"type": "stop", "camera": channel.camera})
        self._forget_if_idle(channel)

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

    def _channels_of(self, device_id: uuid.UUID) -> list[Channel]:
        return [c for (d, _), c in self.channels.items() if d == device_id]

    def _channel(self, device_id: uuid.UUID, camera: str) -> Channel:
        return self.channels.setdefault((device_id, camera), Channel(device_id, camera))

    def _forget_if_idle(self, channel: Channel) -> None:
        if not channel.viewers and channel.stop_timer is None:
            self.channels.pop((channel.device_id, channel.camera), None)


async def _send_quietly(link: AgentLink, message: dict[str, object]) -> None:
    """Control messages to an agent whose socket may be closing: its handler cleans up."""
    try:
        await link.send(json.dumps(message))
    except Exception as exc:  # noqa: BLE001 - a dead socket is the agent handler's to report
        log.info("live.agent_send_failed", device=str(link.device_id), error=str(exc))
