"""Settings and snapshots over the control connection: the agent's real LiveLink and
settings handler against a real WebSocket server on loopback speaking the protocol
(docs/live-view.md), as tests/unit/agent/live/test_link.py runs the link."""

from __future__ import annotations

import contextlib
import io
import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.live.link import DELTA, INIT, KEYFRAME, LiveLink
from doorwarden.agent.settings.handler import SNAPSHOT
from tests.unit.agent.live.test_link import FakeServer, Message, identity
from tests.unit.agent.samples import make_video
from tests.unit.agent.settings.rig import Rig, camera
from tests.unit.agent.settings.signing import ServerKey

BOTTOM = [[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("link-settings") / "v.mp4", seconds=4, gop=10)


class Agent:
    """The link and the settings handler wired as agent/app.py wires them."""

    def __init__(self, server: FakeServer, tmp: Path, key: ServerKey, video: Path) -> None:
        self.rig = Rig(tmp, key.public, [camera("front", video), camera("back", video)])
        masks = {name: PrivacyMask([], 0, 0) for name in ("front", "back")}
        self.link = LiveLink(
            identity(server.url), ["front", "back"], masks=masks,
            backoff=Backoff(0.05, 0.4), stable_s=60.0,
        )  # fmt: skip
        self.rig.handler.attach(self.link)
        self.seen: list[Message] = []
        self.server = server
        self.link.start()
        assert json.loads(server.next())["type"] == "hello"

    def wait(self, test: object, timeout: float = 10.0) -> Message:
        """The first message from the agent (kept in `seen`) that `test` accepts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                message = self.server.next(timeout=0.2)
                self.seen.append(message)
                if test(message):  # type: ignore[operator]
                    return message
        raise AssertionError("no such message from the agent")

    def settings_reply(self) -> dict[str, object]:
        text = self.wait(lambda m: isinstance(m, str) and '"settings_applied"' in m)
        return json.loads(text)

    def stop(self) -> None:
        self.link.stop(timeout_s=5)
        self.rig.handler.close()


@pytest.fixture
def agent(server: FakeServer, tmp_path: Path, video: Path) -> Iterator[tuple[Agent, ServerKey]]:
    key = ServerKey()
    running = Agent(server, tmp_path, key, video)
    yield running, key
    running.stop()


def test_settings_sent_on_the_link_are_applied_and_answered_and_a_replay_is_refused(
    agent: tuple[Agent, ServerKey], server: FakeServer
) -> None:
    running, key = agent
    started = time.monotonic()
    server.connections[-1].send(key.wire(1, {"privacy_zones": [BOTTOM]}))
    reply = running.settings_reply()
    assert time.monotonic() - started < 1.0  # applied within a second on loopback
    assert reply["ok"] is True and reply["version"] == 1 and reply["camera"] == "front"
    assert reply["effective"]["privacy_zones"] == [BOTTOM]  # type: ignore[index]
    assert running.link.taps["front"].mask.polygons  # live view masks from now on
    server.connections[-1].send(key.wire(2, {}))
    assert running.settings_reply()["ok"] is True
    server.connections[-1].send(key.wire(1, {"privacy_zones": [BOTTOM]}))
    refused = running.settings_reply()
    assert refused["ok"] is False
    assert refused["error"] == "version 1 is not newer than applied 2"
    server.connections[-1].send(key.wire(3, {}, camera="garage"))
    assert running.settings_reply()["ok"] is False
    server.connections[-1].send("{]")  # not JSON at all: ignored, the link lives
    server.connections[-1].send(key.wire(3, {"motion.sensitivity": 0.7}))
    assert running.settings_reply()["ok"] is True


def test_a_snapshot_comes_back_as_binary_with_its_id_and_zones_black(
    agent: tuple[Agent, ServerKey], server: FakeServer, video: Path
) -> None:
    running, key = agent
    job = running.rig.jobs["back"]
    with open_source(camera("back", video).source) as source:
        job.opened(source)
        for sample in source.samples():
            job.handle(sample)
    server.connections[-1].send(key.wire(1, {"privacy_zones": [BOTTOM]}, camera="back"))
    assert running.settings_reply()["ok"] is True
    ident = "a1" * 16
    server.send({"type": "snapshot", "camera": "back", "id": ident})
    data = running.wait(lambda m: isinstance(m, bytes) and m[0] == SNAPSHOT)
    assert isinstance(data, bytes)
    assert data[1] == 1 and data[2:18] == bytes.fromhex(ident)  # "back" is camera 1
    import cv2

    image = cv2.imdecode(np.frombuffer(data[18:], np.uint8), cv2.IMREAD_COLOR)
    assert image[150:].max() < 20 and image[:140].mean() > 50
    server.send({"type": "snapshot", "camera": "front", "id": ident})  # no picture yet
    error = json.loads(running.wait(lambda m: isinstance(m, str) and "snapshot_error" in m))
    assert error["id"] == ident and error["camera"] == "front"


def test_a_zone_set_while_someone_watches_is_black_in_the_next_live_frames(
    agent: tuple[Agent, ServerKey], server: FakeServer, video: Path
) -> None:
    running, key = agent
    link = running.link
    server.send({"type": "start", "camera": "front"})
    deadline = time.monotonic() + 5
    while not link.taps["front"].running:  # the viewer's start has reached the tap
        assert time.monotonic() < deadline
        time.sleep(0.01)
    source = open_source(camera("front", video).source)
    link.opened("front", source)
    try:
        for index, sample in enumerate(source.samples()):
            if index == 15:
                server.connections[-1].send(key.wire(1, {"privacy_zones": [BOTTOM]}))
                running.settings_reply()  # applied before the next frame is fed
            link.feed("front", sample)
            time.sleep(0.01)
    finally:
        source.close()
    running.seen += server.drain()
    media = [m for m in running.seen if isinstance(m, bytes) and m[0] in (INIT, KEYFRAME, DELTA)]
    inits = [i for i, m in enumerate(media) if m[0] == INIT]
    assert len(inits) >= 2  # the stream restarted: re-encoded with the zone
    before, after = media[inits[-2] : inits[-1]], media[inits[-1] :]
    frames_before, frames_after = decode(before), decode(after)
    assert frames_after and frames_before
    assert all(f[150:].max() < 30 for f in frames_after)
    assert not any(f[150:].max() < 30 for f in frames_before)


def decode(messages: list[bytes]) -> list[np.ndarray]:
    """The frames of an init segment and its fragments, as a browser would play them."""
    data = b"".join(m[2:] for m in messages)
    with av.open(io.BytesIO(data), format="mp4") as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
