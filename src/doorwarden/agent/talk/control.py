"""Talk on the agent's control link (docs/live-view.md, "Talk"): the server's talk_start
and talk_stop, its 0x10 audio messages, and our talk_state answers.

Every handler runs on the link thread and returns at once: a session's thread does the
slow work. One session per camera: the server lets one resident talk at a time, and a
second talk_start while one runs is answered `failed` ("busy") all the same.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence

import structlog

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.talk.backchannel import Backchannel
from doorwarden.agent.talk.output import TalkError, TalkOutput
from doorwarden.agent.talk.session import IDLE_S, TalkSession
from doorwarden.agent.talk.speaker import Speaker

log = structlog.get_logger("doorwarden.agent.talk.control")

TALK_AUDIO = 0x10  # first byte of the server's binary talk audio: 0x10, camera index, payload
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_PAYLOAD = {"opus": 4000, "webm": 32 * 1024}  # as the server admits from a browser
BUSY = "busy: someone else is talking through this camera"
NOT_CONFIGURED = (
    "this camera has no talk output: set `talk:` (its backchannel or a speaker) in the "
    "agent's configuration"
)


def output_for(camera: CameraConfig) -> TalkOutput:
    """The talk output `camera`'s configuration names; TalkError when there is none."""
    talk = camera.talk
    if talk is None:
        raise TalkError(NOT_CONFIGURED)
    if talk.kind == "speaker":
        return Speaker(talk.device)
    url = talk.url
    if url is None:
        source = camera.source
        if source.kind != "rtsp" or not source.url.startswith("rtsp://"):
            raise TalkError(
                "talk through the camera's backchannel needs an rtsp:// URL: set talk.url "
                "(the camera's source is not a plain RTSP stream)"
            )
        url = source.url
    return Backchannel(url, codecs=list(talk.codecs), timeout_s=talk.timeout_s)


class TalkControl:
    """The talk sessions of this agent's `cameras` (in the link's order: the camera index
    of a 0x10 message). `send` puts a text message on the link (LiveLink.send_text)."""

    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        send: Callable[[str], bool],
        *,
        make_output: Callable[[CameraConfig], TalkOutput] = output_for,
        idle_s: float = IDLE_S,
    ) -> None:
        self.cameras = {camera.name: camera for camera in cameras}
        self.order = [camera.name for camera in cameras]
        self._send = send
        self._make_output = make_output
        self.idle_s = idle_s
        self._sessions: dict[str, TalkSession] = {}
        self._lock = threading.Lock()
        self.ignored = 0  # audio for a camera nobody talks through, or oversized

    # -- link handlers (the link thread) ------------------------------------------------

    def on_start(self, body: dict[str, object]) -> None:
        camera, session, codec = body.get("camera"), body.get("session"), body.get("codec")
        if not isinstance(camera, str) or not isinstance(session, str):
            log.warning("talk.bad_start", camera=str(camera)[:64])
            return
        if not SESSION_ID.match(session):
            log.warning("talk.bad_session", camera=camera[:64])
            return
        config = self.cameras.get(camera)
        if config is None:
            self._state(camera, session, "failed", f"this agent has no camera named {camera!r}")
            return
        if codec not in MAX_PAYLOAD:
            self._state(camera, session, "failed", f"unknown talk audio format {codec!r}")
            return
        if config.talk is None:
            self._state(camera, session, "failed", NOT_CONFIGURED)
            return
        with self._lock:
            running = self._sessions.get(camera)
            if running is not None:
                if running.session != session:  # a repeated start of the same one: no-op
                    self._state(camera, session, "failed", BUSY)
                return
            talk = TalkSession(
                camera, session, str(codec),
                make_output=lambda: self._make_output(config),
                report=lambda state, message: self._state(camera, session, state, message),
                on_end=self._ended, idle_s=self.idle_s,
            )  # fmt: skip
            self._sessions[camera] = talk
        log.info("talk.start", camera=camera, codec=codec)
        talk.start()

    def on_stop(self, body: dict[str, object]) -> None:
        camera, session = body.get("camera"), body.get("session")
        with self._lock:
            talk = self._sessions.get(camera) if isinstance(camera, str) else None
        if talk is not None and talk.session == session:
            talk.stop()

    def on_audio(self, message: bytes) -> None:
        """A 0x10 message: camera index, then one Opus packet or WebM chunk."""
        if len(message) < 3 or message[1] >= len(self.order):
            self.ignored += 1
            return
        with self._lock:
            talk = self._sessions.get(self.order[message[1]])
        payload = message[2:]
        if talk is None or len(payload) > MAX_PAYLOAD[talk.codec]:
            self.ignored += 1  # late audio of an ended session, or more than a browser sends
            return
        talk.feed(payload)

    # -- the agent's side ---------------------------------------------------------------

    def stop(self, timeout_s: float = 3.0) -> None:
        """End every session (the agent stops)."""
        with self._lock:
            sessions = list(self._sessions.values())
        for talk in sessions:
            talk.stop()
        for talk in sessions:
            talk.join(timeout_s)

    def active(self, camera: str) -> TalkSession | None:
        with self._lock:
            return self._sessions.get(camera)

    def _ended(self, talk: TalkSession) -> None:
        with self._lock:
            if self._sessions.get(talk.camera) is talk:
                del self._sessions[talk.camera]

    def _state(self, camera: str, session: str, state: str, message: str) -> None:
        body = {"type": "talk_state", "camera": camera, "session": session, "state": state,
                "message": message}  # fmt: skip
        if not self._send(json.dumps(body)):
            log.info("talk.state_unsent", camera=camera, state=state)  # the link is down
