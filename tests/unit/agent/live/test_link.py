"""The live link against a real WebSocket server on loopback, standing in for the
doorwarden server's end of the wire (docs/live-view.md); the agent's side is all real:
the link, its taps, H.264 from a file.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from structlog.testing import capture_logs
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.capture.source import VideoSource
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.config.models import FileSource
from doorwarden.agent.delivery.identity import DeviceIdentity, Plan
from doorwarden.agent.live.link import (
    DELTA,
    INIT,
    KEYFRAME,
    LIVE_PATH,
    REVOKED_MESSAGE,
    LiveLink,
    LiveLinkError,
    live_url,
)
from doorwarden.agent.live.send_queue import SendQueue
from tests.unit.agent.samples import make_video

TOKEN = "dwd_live-test-token"
CAMERAS = ["front", "back"]
Message = str | bytes


class FakeServer:
    """The server's end: records what arrives, sends start/stop, refuses when told."""

    def __init__(
        self,
        *,
        refuse: tuple[int, bytes] | None = None,
        close_after_hello: bool = False,
        reading: bool = True,
    ) -> None:
        self.refuse = refuse
        self.close_after_hello = close_after_hello
        self.reading = threading.Event()
        if reading:
            self.reading.set()
        self.requests: list[Request] = []
        self.connections: list[ServerConnection] = []
        self.connected_at: list[float] = []
        self.received: queue.Queue[Message] = queue.Queue()
        listener = socket.create_server(("127.0.0.1", 0))
        # A small receive window: a server that stops reading backs the agent up soon.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.server: Server = serve(
            self._handle,
            sock=listener,
            process_request=self._check,
            compression=None,
            max_size=None,
            max_queue=1,
        )
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        if request.path != LIVE_PATH:
            return connection.respond(404, "not found")
        if self.refuse is not None:
            status, body = self.refuse
            headers = Headers([("Content-Type", "application/json")])
            return Response(status, "Refused", headers, body)
        return None

    def _handle(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        self.connected_at.append(time.monotonic())
        try:
            self.received.put(connection.recv())  # hello
            if self.close_after_hello:
                return
            self.reading.wait()
            for message in connection:
                self.received.put(message)
        except ConnectionClosed:
            pass

    def send(self, message: dict[str, str]) -> None:
        self.connections[-1].send(json.dumps(message))

    def next(self, timeout: float = 5.0) -> Message:
        return self.received.get(timeout=timeout)

    def drain(self, quiet_s: float = 0.3) -> list[Message]:
        out = []
        while True:
            try:
                out.append(self.received.get(timeout=quiet_s))
            except queue.Empty:
                return out

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(5)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("link") / "src.mp4", seconds=4, gop=10)


def identity(server: str) -> DeviceIdentity:
    return DeviceIdentity(
        server=server,
        device_id="device",
        household_id="household",
        token=TOKEN,
        mode="standard",
        recipients=[],
        plan=Plan("recording", None),
    )


def make_link(server: FakeServer, **kw: object) -> LiveLink:
    options: dict[str, object] = {"backoff": Backoff(0.05, 0.4), "stable_s": 60.0, **kw}
    return LiveLink(identity(server.url), CAMERAS, **options)  # type: ignore[arg-type]


def feed_file(
    link: LiveLink, camera: str, path: Path, *, each: Callable[[int], None] | None = None
) -> None:
    """Play a file into the link as CameraRunner would (open, samples, close)."""
    source: VideoSource = open_source(FileSource(kind="file", path=path, pace=False))
    link.opened(camera, source)
    try:
        for index, sample in enumerate(source.samples()):
            if each is not None:
                each(index)
            link.feed(camera, sample)
    finally:
        source.close()
        link.closed(camera)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_live_url_follows_the_server_and_refuses_clear_text_to_other_hosts() -> None:
    assert live_url("https://dw.example.org/base/") == "wss://dw.example.org/base" + LIVE_PATH
    assert live_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000" + LIVE_PATH
    assert live_url("http://localhost:8000") == "ws://localhost:8000" + LIVE_PATH
    with pytest.raises(LiveLinkError, match=r"plain ws://"):
        live_url("http://dw.example.org")
    assert live_url("http://dw.example.org", insecure_http=True).startswith("ws://dw.")


def test_hello_names_the_cameras_and_the_token_goes_in_the_authorization_header(
    server: FakeServer,
) -> None:
    link = make_link(server)
    link.start()
    try:
        hello = json.loads(server.next())
        assert hello == {"type": "hello", "cameras": CAMERAS, "version": 1}
        [request] = server.requests
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["User-Agent"].startswith("doorwarden-agent/")
        assert link.connected
    finally:
        assert link.stop()
    assert not link.connected


def test_start_streams_init_then_a_keyframe_and_stop_ends_the_media(
    server: FakeServer, video: Path
) -> None:
    link = make_link(server)
    link.start()
    try:
        server.next()  # hello
        started = threading.Event()

        def on_sample(index: int) -> None:
            if index == 15:  # mid-GOP: the keyframe at 10 is cached
                server.send({"type": "start", "camera": "back"})
                wait_for(lambda: link.taps["back"].muxing)
                started.set()
            if index == 30:
                wait_for(lambda: len(link.queue) == 0)  # what is queued at a stop is dropped
                server.send({"type": "stop", "camera": "back"})
                wait_for(lambda: not link.taps["back"].running)

        feed_file(link, "back", video, each=on_sample)
        assert started.is_set()
        init = json.loads(server.next())
        assert init["type"] == "init" and init["camera"] == "back"
        assert init["mime"].startswith('video/mp4; codecs="avc1.')
        assert (init["width"], init["height"]) == (320, 240)
        segment = server.next()
        assert isinstance(segment, bytes) and segment[:2] == bytes([INIT, 1])
        assert segment[6:10] == b"ftyp"
        first = server.next()
        assert isinstance(first, bytes) and first[:2] == bytes([KEYFRAME, 1])
        assert first[6:10] == b"moof"
        media = [first, *server.drain()]
        assert all(isinstance(m, bytes) and m[1] == 1 for m in media)
        kinds = [m[0] for m in media if isinstance(m, bytes)]
        # Frames 10..28 went out (29's fragment was still in the muxer at the stop): a
        # keyframe at 10 and 20, the rest deltas.
        assert kinds == [KEYFRAME] + [DELTA] * 9 + [KEYFRAME] + [DELTA] * 8
        # Stopped: more frames of that camera send nothing.
        feed_file(link, "back", video)
        assert server.drain() == []
    finally:
        link.stop()


def test_a_start_for_an_unknown_camera_is_ignored(server: FakeServer, video: Path) -> None:
    link = make_link(server)
    link.start()
    try:
        server.next()
        with capture_logs() as logs:
            server.send({"type": "start", "camera": "garage"})
            server.send({"type": "start", "camera": "front"})
            wait_for(lambda: link.taps["front"].running)
            feed_file(link, "front", video)
        assert json.loads(server.next())["camera"] == "front"
        assert [e["camera"] for e in logs if e["event"] == "live.unknown_camera"] == ["garage"]
        assert len(server.connections) == 1
    finally:
        link.stop()


def test_init_messages_of_two_cameras_never_interleave(server: FakeServer, video: Path) -> None:
    """The server takes an init segment only right after that camera's init message."""
    link = make_link(server)
    link.start()
    try:
        server.next()
        server.send({"type": "start", "camera": "front"})
        server.send({"type": "start", "camera": "back"})
        wait_for(lambda: link.taps["front"].running and link.taps["back"].running)
        feeders = [threading.Thread(target=feed_file, args=(link, name, video)) for name in CAMERAS]
        for feeder in feeders:
            feeder.start()
        for feeder in feeders:
            feeder.join()
        messages = server.drain()
        inits = [i for i, m in enumerate(messages) if isinstance(m, str)]
        assert len(inits) == 2
        for i in inits:
            name = json.loads(messages[i])["camera"]
            segment = messages[i + 1]
            assert isinstance(segment, bytes)
            assert segment[:2] == bytes([INIT, CAMERAS.index(name)])
    finally:
        link.stop()


def test_a_dropped_connection_is_retried_with_growing_delays_and_stops_the_streams(
    video: Path,
) -> None:
    fake = FakeServer(close_after_hello=True)
    link = make_link(fake)
    try:
        with capture_logs() as logs:
            link.start()
            wait_for(lambda: len(fake.connected_at) >= 4)
            link.stop()
        gaps = np.diff(fake.connected_at[:4])
        # Backoff(0.05, 0.4): 0.05, 0.1, 0.2 s between attempts, plus connection time.
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2
        retries = [e["retry_in"] for e in logs if e["event"] == "live.disconnected"]
        assert retries[:3] == [0.05, 0.1, 0.2]
        assert all(e["log_level"] == "warning" for e in logs if e["event"] == "live.disconnected")
    finally:
        fake.close()


def test_a_lost_connection_stops_a_running_stream(server: FakeServer, video: Path) -> None:
    link = make_link(server)
    link.start()
    try:
        server.next()
        server.send({"type": "start", "camera": "front"})
        wait_for(lambda: link.taps["front"].running)
        server.connections[-1].close()
        wait_for(lambda: not link.taps["front"].running)
        wait_for(lambda: len(server.connections) == 2)  # and it came back
    finally:
        link.stop()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": {"code": "device_revoked", "message": "Removed by the owner."}}',
            "Removed by the owner.",
        ),
        (b"", REVOKED_MESSAGE),
    ],
)
def test_401_at_the_handshake_stops_the_link_as_revoked(body: bytes, message: str) -> None:
    fake = FakeServer(refuse=(401, body))
    link = make_link(fake)
    try:
        with capture_logs() as logs:
            link.start()
            wait_for(lambda: link.done)
            time.sleep(0.2)
        assert len(fake.requests) == 1, "a revoked camera must not keep knocking"
        assert link.blocked is not None and link.blocked.status == 401
        assert link.blocked.message == message
        [revoked] = [e for e in logs if e["event"] == "live.revoked"]
        assert revoked["log_level"] == "error" and revoked["message"] == message
    finally:
        link.stop()
        fake.close()


def test_403_at_the_handshake_says_tls_is_required_and_stops() -> None:
    body = b'{"error": {"code": "tls_required", "message": "Use wss://."}}'
    fake = FakeServer(refuse=(403, body))
    link = make_link(fake)
    try:
        with capture_logs() as logs:
            link.start()
            wait_for(lambda: link.done)
        assert link.blocked is not None and link.blocked.code == "tls_required"
        [forbidden] = [e for e in logs if e["event"] == "live.forbidden"]
        assert "TLS" in forbidden["hint"]
    finally:
        fake.close()


def test_a_server_error_at_the_handshake_is_retried() -> None:
    fake = FakeServer(refuse=(503, b""))
    link = make_link(fake)
    try:
        link.start()
        wait_for(lambda: len(fake.requests) >= 3)
        assert link.blocked is None and not link.done
    finally:
        link.stop()
        fake.close()


# -- a slow uplink ---------------------------------------------------------------------


def test_the_queue_drops_fragments_until_a_keyframe_fits() -> None:
    q = SendQueue(["front", "back"], max_bytes=1000)
    with capture_logs() as logs:
        assert q.put_fragment(0, b"\x01" + b"k" * 399, keyframe=True)
        assert q.put_fragment(0, b"\x02" + b"d" * 399, keyframe=False)
        q.put_control(0, "init text: always taken")
        assert not q.put_fragment(0, b"\x02" + b"d" * 399, keyframe=False)  # full
        assert q.put_fragment(1, b"\x02" + b"x" * 99, keyframe=False)  # another camera fits
        while q.get(timeout=0) is not None:
            pass  # the socket caught up...
        assert not q.put_fragment(0, b"\x02" + b"d" * 10, keyframe=False)  # ...but no keyframe
        assert q.put_fragment(0, b"\x01" + b"k" * 10, keyframe=True)
        assert q.put_fragment(0, b"\x02" + b"d" * 10, keyframe=False)
    assert q.dropped == [2, 0]
    assert [e["event"] for e in logs] == ["live.dropping", "live.resumed"]
    assert logs[1]["dropped"] == 2


def _noise_video(path: Path, frames: int = 60) -> Path:
    """Incompressible frames: fragments of ~100 KB fill any socket buffer quickly."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast", "g": "5"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            rgb = rng.integers(0, 255, (240, 320, 3), np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _sequence(fragment: bytes) -> int:
    """mfhd's sequence number: the muxer counts fragments, so a gap shows a drop."""
    at = fragment.index(b"mfhd")
    return int.from_bytes(fragment[at + 8 : at + 12], "big")


def test_a_server_that_stops_reading_never_blocks_the_camera_and_resumes_at_a_keyframe(
    tmp_path: Path,
) -> None:
    noisy = _noise_video(tmp_path / "noise.mp4", frames=200)
    fake = FakeServer(reading=False)
    link = make_link(fake, queue_bytes=256 * 1024)
    link.start()
    resumed_at: list[int] = []

    def stall_then_read(index: int) -> None:
        # Unpaced, the camera outruns the socket: the kernel's buffers fill, then the
        # queue, then frames are dropped. Mid-file the server reads again.
        if index == 150:
            assert link.queue.dropped[0] > 0, "nothing dropped: the server never stalled"
            fake.reading.set()
            wait_for(lambda: link.queue.size == 0)
            resumed_at.append(index)
        elif index > 150:
            time.sleep(0.02)  # now at a pace the link keeps up with

    try:
        fake.next()  # hello
        fake.send({"type": "start", "camera": "front"})
        wait_for(lambda: link.taps["front"].running)
        started = time.monotonic()
        with capture_logs() as logs:
            feed_file(link, "front", noisy, each=stall_then_read)
        assert resumed_at == [150]
        assert time.monotonic() - started < 20  # the camera thread never waited for long
        events = [e["event"] for e in logs]
        assert events.count("live.dropping") == 1 and events.count("live.resumed") == 1, events
        media = [m for m in fake.drain(0.5) if isinstance(m, bytes) and m[0] != INIT]
        assert media[0][0] == KEYFRAME
        numbers = [_sequence(m[2:]) for m in media]
        gaps = [i for i in range(1, len(numbers)) if numbers[i] != numbers[i - 1] + 1]
        assert gaps, "no fragment was dropped"
        # After each gap the stream resumes on a keyframe: nothing undecodable was sent.
        assert all(media[i][0] == KEYFRAME for i in gaps)
        assert numbers[-1] >= 195  # and it went on to the end once the server read again
    finally:
        link.stop()
        fake.close()
