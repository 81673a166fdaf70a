"""A live channel and its viewers' queues (the relay's parts: live/relay.py fans one
upstream out to them, live/cluster.py feeds them from another instance)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

import structlog

log = structlog.get_logger("doorwarden.live")

GOP_CACHE_BYTES = 16 * 1024 * 1024

State = Literal["connecting", "streaming", "offline", "error"]


class Tap(Protocol):
    """What a channel passes on besides its viewers (live/stream.py's Publisher sends
    it to other instances)."""

    def state(self, message: str) -> None: ...
    def init(self, init_json: str, segment: bytes) -> None: ...
    def fragment(self, data: bytes, *, keyframe: bool) -> None: ...


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
    # Other instances watching through the bus (live/cluster.py): instance -> the
    # loop time its lease runs out, and where this channel's stream goes for them.
    remote: dict[str, float] = field(default_factory=dict)
    tap: Tap | None = None

    @property
    def watched(self) -> bool:
        return bool(self.viewers or self.remote)

    def state_message_text(self) -> str:
        return json.dumps({"type": "state", "state": self.state, "message": self.message})

    def state_message(self) -> Out:
        return Out(self.state_message_text())

    def set_state(self, state: State, message: str | None = None) -> None:
        if (state, message) == (self.state, self.message):
            return
        self.state, self.message = state, message
        self.broadcast(self.state_message())
        if self.tap is not None:
            self.tap.state(self.state_message_text())

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
        if self.tap is not None:
            self.tap.init(init_json, segment)
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
        if self.tap is not None:
            self.tap.fragment(data, keyframe=keyframe)

    def reset(self, state: State, message: str | None = None) -> None:
        self.init, self.gop, self.gop_bytes = None, [], 0
        self.set_state(state, message)
