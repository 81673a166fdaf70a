"""Two-way talk: a household member's voice from the live page to the camera (docs/talk.md).
Pure asyncio like the relay it sits in: the router feeds it what a viewer and an agent
send; it never stores audio, only counts it.

* One talker per camera: a second viewer asking to talk is told "busy".
* The browser's audio (one Opus packet, or one WebM chunk, per message) is forwarded to
  the agent's control connection as it came, behind a `0x10` `camera index` header.
* Whatever ends a talk (the talker, the agent, the agent going away, the camera removed,
  the talker's rights revoked, a camera that never answered) ends it here, once: the
  browser is told "ended" (or "failed"), the agent `talk_stop` where it is still there to
  hear it, and `talk:end` is audited with who ended it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from doorwarden.audit.tags import Tag
from doorwarden.live.background import Background


class AgentLink(Protocol):
    """What talk needs of a connected agent (relay.AgentLink, which imports this module:
    a protocol rather than an import back)."""

    device_id: uuid.UUID
    cameras: list[str]
    send: Callable[[str], Awaitable[None]]
    send_bytes: Callable[[bytes], Awaitable[None]] | None

    def resolve(self, camera: str) -> str | None: ...


log = structlog.get_logger("doorwarden.live.talk")

TALK = 0x10  # first byte of talk audio on the agent's connection
CODECS = {"opus": 4_000, "webm": 32 * 1024}  # codec -> largest message (bytes)
MAX_TALK_TEXT = 1024
RATE_BYTES_S = 64 * 1024  # sustained audio a talker may send
BURST_BYTES = 2 * RATE_BYTES_S  # what a network hiccup may deliver at once
MESSAGE_COST = 64  # a message costs at least this much: a flood of tiny ones is a flood
OPEN_TIMEOUT_S = 10.0  # a camera that never says open (or failed) ends the talk
LATE_AUDIO_S = 2.0  # audio in flight when a talk ended is dropped, not a violation
AGENT_STATES = ("open", "failed", "closed")
# Talk audio is not routed between server instances (live/cluster.py): what a talker on an
# instance without the camera's agent hears, every time.
REMOTE_TALK = (
    "Talk is not available here: this camera is connected to another server of this "
    "service. Live view works; talk needs the camera on the server you reached."
)

BrowserState = Literal["connecting", "open", "busy", "failed", "ended"]
Say = Callable[[BrowserState, str | None], None]  # to the talker's browser
Record = Callable[[Tag, dict[str, Any]], Awaitable[None]]


class TalkViolation(Exception):
    """A viewer broke the talk protocol: its connection is closed with `code` and
    `reason`; `ended_by` goes to the audit trail."""

    def __init__(self, code: int, reason: str, ended_by: str) -> None:
        super().__init__(reason)
        self.code, self.reason, self.ended_by = code, reason, ended_by


def browser_message(state: BrowserState, message: str | None = None) -> str:
    return json.dumps({"type": "talk", "state": state, "message": message})


@dataclass
class RateMeter:
    """A token bucket: `BURST_BYTES` deep, refilled at `RATE_BYTES_S`."""

    tokens: float = BURST_BYTES
    at: float = field(default_factory=time.monotonic)

    def take(self, size: int) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST_BYTES, self.tokens + (now - self.at) * RATE_BYTES_S)
        self.at = now
        self.tokens -= max(size, MESSAGE_COST)
        return self.tokens >= 0


@dataclass(eq=False)
class TalkSession:
    device_id: uuid.UUID
    camera: str
    index: int  # the camera's index on its agent's connection
    codec: str
    talker: object  # the viewer holding the talk (relay.Viewer)
    say: Say  # queues a text message for the talker's browser
    record: Record  # writes an audit event for this talk
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.monotonic)
    bytes: int = 0
    packets: int = 0
    opened: bool = False
    meter: RateMeter = field(default_factory=RateMeter)
    timer: asyncio.TimerHandle | None = None


class Talks:
    """Every talk of this server process (as live view: one process, docs/live-view.md)."""

    def __init__(
        self,
        agents: Mapping[uuid.UUID, AgentLink],
        *,
        elsewhere: Callable[[uuid.UUID], bool] = lambda _device: False,
    ) -> None:
        self.agents = agents  # the agents connected to this process, by device
        self.elsewhere = elsewhere  # whether another instance holds the device's agent
        self.by_camera: dict[tuple[uuid.UUID, str], TalkSession] = {}
        self.by_talker: dict[object, TalkSession] = {}
        # Audit writes and stops outlive the call that caused them.
        self._background = Background("live.talk_task_failed")

    def held_by(self, talker: object) -> TalkSession | None:
        return self.by_talker.get(talker)

    async def start(
        self,
        device_id: uuid.UUID,
        camera: str,
        *,
        codec: str,
        talker: object,
        say: Say,
        record: Record,
    ) -> TalkSession | None:
        """A talk on `camera` for `talker`, or None when it cannot start (already said why)."""
        if (held := self.by_talker.get(talker)) is not None:
            say("open" if held.opened else "connecting", None)
            return held
        link = self.agents.get(device_id)
        if link is None:
            say("failed", REMOTE_TALK if self.elsewhere(device_id) else "The camera is offline.")
            return None
        resolved = link.resolve(camera)
        if resolved is None:
            say("failed", f"This camera has no stream named {camera!r}.")
            return None
        if (link.device_id, resolved) in self.by_camera:
            say("busy", "Someone else is talking through this camera.")
            return None
        session = TalkSession(
            link.device_id, resolved, link.cameras.index(resolved), codec, talker, say, record
        )
        self.by_camera[(link.device_id, resolved)] = session
        self.by_talker[talker] = session
        say("connecting", None)
        loop = asyncio.get_running_loop()
        session.timer = loop.call_later(OPEN_TIMEOUT_S, self._open_timed_out, session)
        audit = {"camera": resolved, "codec": codec, "session": session.id}
        self._spawn(record(Tag.talk_start, audit))
        start = {"type": "talk_start", "camera": resolved, "session": session.id, "codec": codec}
        await _tell(link, start)
        return session

    async def audio(self, session: TalkSession, data: bytes) -> None:
        """One message of audio from the talker: checked, counted and forwarded."""
        limit = CODECS[session.codec]
        if len(data) > limit:
            reason = f"talk audio message too large ({len(data)} bytes; at most {limit})"
            raise TalkViolation(1009, reason, "talk-too-large")
        if not session.meter.take(len(data)):
            reason = f"talk audio faster than {RATE_BYTES_S // 1024} KiB/s"
            raise TalkViolation(1008, reason, "talk-too-fast")
        link = self.agents.get(session.device_id)
        ended = self.by_talker.get(session.talker) is not session
        if link is None or link.send_bytes is None or ended:
            return  # ended meanwhile (the browser has been told)
        session.bytes += len(data)
        session.packets += 1
        try:
            await link.send_bytes(bytes((TALK, session.index)) + data)
        except Exception as exc:  # noqa: BLE001 - a dead agent socket: its handler ends the talk
            log.info("live.talk_send_failed", device=str(session.device_id), error=str(exc))

    async def stop(
        self,
        session: TalkSession,
        *,
        ended_by: str,
        outcome: str = "stopped",
        state: BrowserState = "ended",
        message: str | None = None,
        say: bool = True,
    ) -> None:
        """End a talk the server or the talker ended: the agent hears `talk_stop`."""
        if not self._finish(session, ended_by, outcome, state, message, say=say):
            return
        link = self.agents.get(session.device_id)
        if link is not None:
            stop = {"type": "talk_stop", "camera": session.camera, "session": session.id}
            await _tell(link, stop)

    def agent_state(self, link: AgentLink, message: dict[str, Any]) -> None:
        """`talk_state` from an agent: relayed to the talker; failed and closed end it."""
        session_id, state = message.get("session"), message.get("state")
        if not isinstance(session_id, str) or state not in AGENT_STATES:
            raise ValueError("talk_state needs a session id and open, failed or closed")
        text = message.get("message")
        words = str(text)[:300] if text is not None else None
        session = self.by_camera.get((link.device_id, str(message.get("camera"))))
        current = self.agents.get(link.device_id) is link
        if session is None or session.id != session_id or not current:
            log.info("live.talk_state_stale", device=str(link.device_id), session=session_id)
            return  # a talk that ended here already: the agent heard talk_stop
        if state == "open":
            session.opened = True
            if session.timer is not None:
                session.timer.cancel()
                session.timer = None
            session.say("open", words)
        elif state == "failed":
            self._finish(session, "agent", "failed", "failed", words or "The camera cannot talk.")
        else:
            self._finish(session, "agent", "closed", "ended", words or "The camera ended the talk.")

    def agent_gone(self, device_id: uuid.UUID, *, ended_by: str, message: str) -> None:
        """The agent's connection closed (or was replaced): no talk_stop to send."""
        for (device, _), session in list(self.by_camera.items()):
            if device == device_id:
                self._finish(session, ended_by, "ended", "ended", message)

    def _open_timed_out(self, session: TalkSession) -> None:
        session.timer = None
        self._spawn(
            self.stop(
                session,
                ended_by="timeout",
                outcome="failed",
                state="failed",
                message="The camera did not answer: it may not support talk.",
            )
        )

    def _finish(
        self,
        session: TalkSession,
        ended_by: str,
        outcome: str,
        state: BrowserState,
        message: str | None,
        *,
        say: bool = True,
    ) -> bool:
        """Forget the talk, tell its browser, audit it. False when it had ended already."""
        if self.by_talker.get(session.talker) is not session:
            return False
        del self.by_talker[session.talker]
        self.by_camera.pop((session.device_id, session.camera), None)
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        if say:
            session.say(state, message)
        extra = {
            "camera": session.camera,
            "codec": session.codec,
            "session": session.id,
            "duration_s": round(time.monotonic() - session.started, 1),
            "bytes": session.bytes,
            "packets": session.packets,
            "ended_by": ended_by,
            "outcome": outcome,
        }
        log.info("live.talk_end", device=str(session.device_id), **extra)
        self._spawn(session.record(Tag.talk_end, extra))
        return True

    def _spawn(self, work: Awaitable[None]) -> None:
        self._background.spawn(work)


async def _tell(link: AgentLink, message: Mapping[str, object]) -> None:
    try:
        await link.send(json.dumps(message))
    except Exception as exc:  # noqa: BLE001 - a dead socket is the agent handler's to report
        log.info("live.talk_tell_failed", device=str(link.device_id), error=str(exc))
