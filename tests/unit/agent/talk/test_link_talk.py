"""Talk end to end on the agent's side: a real WebSocket server standing in for the
doorwarden server (as tests/unit/agent/live/test_link.py), the live link and the talk
control wired as the agent app wires them, and the ONVIF camera (onvif_rtsp_server.py)
recording what it hears."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doorwarden.agent.app import _talk
from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.config.models import AgentConfig, CameraConfig
from doorwarden.agent.live.link import LiveLink
from doorwarden.agent.talk.control import NOT_CONFIGURED, TALK_AUDIO
from tests.unit.agent.live.test_link import FakeServer, identity
from tests.unit.agent.talk.rig import PASSWORD, Camera, need_gst_onvif, opus_packets, peak_hz

SESSION, OTHER = "c" * 32, "d" * 32


@pytest.fixture(scope="module", autouse=True)
def _need_gst() -> None:
    need_gst_onvif()


class Agent:
    """The link (connected to `server`) with talk wired as AgentApp does."""

    def __init__(self, server: FakeServer, url: str, tmp_path: Path) -> None:
        cameras = [
            CameraConfig.model_validate(
                {
                    "name": "front",
                    "source": {"kind": "rtsp", "url": url},
                    "talk": {"kind": "backchannel", "timeout_s": 2},
                }
            ),
            CameraConfig.model_validate({"name": "back", "source": {"kind": "rtsp", "url": url}}),
        ]
        config = AgentConfig(spool_dir=tmp_path / "spool", state_dir=tmp_path / "state",
                             cameras=cameras)  # fmt: skip
        self.server = server
        self.link = LiveLink(
            identity(server.url), ["front", "back"], backoff=Backoff(0.05, 0.4), stable_s=60.0
        )
        self.talk = _talk(config, self.link)
        self.link.start()
        assert json.loads(server.next())["type"] == "hello"

    def start(self, camera: str = "front", session: str = SESSION, codec: str = "opus") -> None:
        self.server.send(
            {"type": "talk_start", "camera": camera, "session": session, "codec": codec}
        )

    def audio(self, packet: bytes, index: int = 0) -> None:
        self.server.connections[-1].send(bytes([TALK_AUDIO, index]) + packet)

    def talk_for(self, seconds: float) -> float:
        """Opus packets at the pace a browser sends them; when the last went."""
        for packet in opus_packets(seconds):
            self.audio(packet)
            time.sleep(0.02)
        return time.monotonic()

    def state(self, timeout_s: float = 5.0) -> dict[str, str]:
        while True:
            message = self.server.next(timeout=timeout_s)
            assert isinstance(message, str)
            body: dict[str, str] = json.loads(message)
            if body["type"] == "talk_state":
                return body

    def stop(self) -> None:
        self.talk.stop()
        self.link.stop(timeout_s=5)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[Camera]:
    cam = Camera(tmp_path / "camera", "--auth", "digest", "--password", PASSWORD)
    yield cam
    cam.kill()


@pytest.fixture
def agent(server: FakeServer, camera: Camera, tmp_path: Path) -> Iterator[Agent]:
    a = Agent(server, camera.url(), tmp_path)
    yield a
    a.stop()


def test_the_residents_voice_reaches_the_camera_and_silence_tears_it_down(
    agent: Agent, camera: Camera
) -> None:
    agent.start()
    opened = agent.state()
    assert (opened["camera"], opened["session"], opened["state"]) == ("front", SESSION, "open")
    last = agent.talk_for(1.0)
    closed = agent.state()
    assert closed["state"] == "closed"
    assert closed["message"] == "no talk audio came for 1 s"
    assert time.monotonic() - last < 1.6
    teardown = [e["wall"] for e in camera.events() if e["method"] == "TEARDOWN"]
    assert teardown, camera.methods()
    # The camera's session ended within ~1.5 s of the stream stopping mid-word.
    assert teardown[0] - (time.time() - (time.monotonic() - last)) < 1.5
    audio, rate = camera.audio()
    assert len(audio) / rate == pytest.approx(1.0, abs=0.15)
    assert peak_hz(audio, rate) == pytest.approx(1000, abs=15)
    assert agent.link.connections == 1


def test_talk_stop_ends_it_at_once_and_a_second_talker_is_busy(
    agent: Agent, camera: Camera
) -> None:
    agent.start()
    assert agent.state()["state"] == "open"
    agent.start(session=OTHER)
    busy = agent.state()
    assert (busy["session"], busy["state"]) == (OTHER, "failed")
    assert "busy" in busy["message"]
    agent.talk_for(0.3)
    stopped = time.monotonic()
    agent.server.send({"type": "talk_stop", "camera": "front", "session": SESSION})
    closed = agent.state()
    assert (closed["session"], closed["state"], closed["message"]) == (
        SESSION, "closed", "talk ended",
    )  # fmt: skip
    assert time.monotonic() - stopped < 0.5
    assert "TEARDOWN" in camera.methods()


def test_a_camera_without_talk_and_a_flood_leave_the_link_up(agent: Agent) -> None:
    agent.start(camera="back")
    failed = agent.state()
    assert (failed["camera"], failed["state"], failed["message"]) == (
        "back", "failed", NOT_CONFIGURED,
    )  # fmt: skip
    agent.start()
    assert agent.state()["state"] == "open"
    packets = opus_packets(2.0)
    for packet in packets * 5:  # 10 s of audio in a burst
        agent.audio(packet)
    for _ in range(20):
        agent.audio(b"\x00" * 4000 + b"\x01")  # larger than any browser's packet
    agent.talk_for(0.3)
    assert agent.state()["state"] == "closed"
    session_dropped = agent.talk.ignored
    assert session_dropped == 20
    assert agent.link.connections == 1  # the link never dropped


def test_a_camera_that_dies_mid_talk_is_reported(agent: Agent, camera: Camera) -> None:
    agent.start()
    assert agent.state()["state"] == "open"
    agent.talk_for(0.3)
    camera.kill()
    for packet in opus_packets(1.0):
        agent.audio(packet)
        time.sleep(0.02)
    failed = agent.state()
    assert failed["state"] == "failed"
    assert "camera closed the connection" in failed["message"] or "broke" in failed["message"]
    assert PASSWORD not in failed["message"]


def test_a_camera_that_refuses_the_backchannel_is_reported(
    server: FakeServer, tmp_path: Path
) -> None:
    refusing = Camera(tmp_path / "refusing", "--mode", "refuse")
    agent = Agent(server, refusing.url(), tmp_path)
    try:
        agent.start()
        failed = agent.state()
        assert failed["state"] == "failed"
        assert "does not support the ONVIF audio backchannel" in failed["message"]
    finally:
        agent.stop()
        refusing.kill()
