"""The RTSP source against a real RTSP server on loopback (GStreamer, see rtsp_server.py):
TCP transport, frames, stream loss and reconnect, credentials kept out of logs."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from doorwarden.agent.capture.media import Sample, SourceError
from doorwarden.agent.capture.rtsp import redact_text, redact_url
from doorwarden.agent.capture.sources import RtspVideoSource, open_source
from doorwarden.agent.config.models import RtspSource
from tests.polling import wait_for

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).parents[1] / "rtsp_server.py"
USER, PASSWORD = "doorcam", "Pa55-s3cret-xyz"


def _gst_rtsp_missing() -> str | None:
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); "
            "from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode:
        return "GStreamer RTSP server not importable: " + probe.stderr.strip().splitlines()[-1]
    return None


@pytest.fixture(scope="module", autouse=True)
def _need_gst_rtsp() -> None:
    missing = _gst_rtsp_missing()
    if missing is None:
        return
    # In CI the server is part of the environment: a missing one must fail, not skip.
    reason = (
        f"{missing} (Debian: gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi "
        "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    print(f"skipping RTSP tests: {reason}")  # noqa: T201 - the brief asks for a printed reason
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """The GStreamer RTSP server as a subprocess that can be killed and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port), USER, PASSWORD],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "ready", or EOF if it died
        if line.strip() != "ready":
            self.kill()
            pytest.fail(f"RTSP server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
            self.proc = None

    def url(self, user: str = USER, password: str = PASSWORD) -> str:
        return f"rtsp://{user}:{password}@127.0.0.1:{self.port}/cam"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(free_port())
    srv.start()
    yield srv
    srv.kill()


def rtsp(url: str, **overrides: Any) -> RtspSource:
    settings = {"kind": "rtsp", "url": url, "timeout_s": 2.0} | overrides
    return RtspSource.model_validate(settings)


class Consumer:
    """Iterates a source's samples on a thread, as the camera runner does."""

    def __init__(self, source: RtspVideoSource) -> None:
        self.source = source
        self.samples: list[Sample] = []
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        self.samples.extend(self.source.samples())

    def frames(self) -> int:
        return sum(len(s.frames) for s in list(self.samples))

    def stop(self) -> float:
        start = time.monotonic()
        self.source.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return time.monotonic() - start


def test_connects_over_tcp_and_yields_decoded_frames(server: Server) -> None:
    # The server offers TCP only, so frames arriving proves the TCP transport.
    with open_source(rtsp(server.url())) as source:
        assert isinstance(source, RtspVideoSource)
        assert (source.info.width, source.info.height, source.info.codec) == (320, 240, "h264")
        got: list[Sample] = []
        for sample in source.samples():
            got.append(sample)
            if sum(len(s.frames) for s in got) >= 5:
                break
    times = [s.time for s in got]
    assert times == sorted(times)
    assert times[0] == 0.0


def test_stream_loss_is_logged_and_the_source_reconnects(server: Server) -> None:
    cfg = rtsp(server.url(), reconnect_initial_s=0.2, reconnect_max_s=0.4)
    with capture_logs() as logs, open_source(cfg, camera="porch") as source:
        assert isinstance(source, RtspVideoSource)
        consumer = Consumer(source)
        wait_for(lambda: consumer.frames() >= 5, 10, "first frames")
        server.kill()
        wait_for(lambda: any(e["event"] == "capture.stream_dropped" for e in logs), 5, "drop")
        wait_for(lambda: any(e["event"] == "capture.reconnect_failed" for e in logs), 5, "retry")
        before = len(consumer.samples)
        server.start()
        wait_for(
            lambda: consumer.frames() >= 15 and len(consumer.samples) > before + 5, 15, "resume"
        )
        assert consumer.stop() < 2.5

    times = [s.time for s in consumer.samples]
    assert all(b >= a for a, b in itertools.pairwise(times))
    assert times[-1] > times[before - 1]
    events = [e["event"] for e in logs]
    assert "capture.reconnected" in events
    drop = next(e for e in logs if e["event"] == "capture.stream_dropped")
    assert drop["camera"] == "porch"
    assert drop["url"] == f"rtsp://***@127.0.0.1:{server.port}/cam"
    retries = [e for e in logs if e["event"] == "capture.reconnecting"]
    assert [e["attempt"] for e in retries[:3]] == [1, 2, 3][: len(retries[:3])]
    assert retries[0]["delay"] == 0.2
    assert all(e["delay"] <= 0.4 for e in retries)
    # The credentials never reach a log line, whatever FFmpeg said.
    assert all(PASSWORD not in repr(e) and USER not in repr(e) for e in logs), logs


def test_stop_interrupts_a_reconnect_wait(server: Server) -> None:
    cfg = rtsp(server.url(), reconnect_initial_s=30.0)
    with capture_logs() as logs, open_source(cfg) as source:
        assert isinstance(source, RtspVideoSource)
        consumer = Consumer(source)
        wait_for(lambda: consumer.frames() >= 2, 10, "first frames")
        server.kill()
        wait_for(lambda: any(e["event"] == "capture.reconnecting" for e in logs), 5, "backoff")
        assert consumer.stop() < 1.0


def test_unreachable_camera_is_a_clear_error_without_credentials() -> None:
    port = free_port()  # nothing listens there
    url = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{port}/cam"
    with pytest.raises(SourceError) as raised:
        open_source(rtsp(url, timeout_s=1.0))
    message = str(raised.value)
    assert message.startswith(f"cannot connect to rtsp://***@127.0.0.1:{port}/cam")
    assert PASSWORD not in message and USER not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_wrong_password_is_a_clear_error_without_credentials(server: Server) -> None:
    with pytest.raises(SourceError, match="401") as raised:
        open_source(rtsp(server.url(password="wrong-Pa55")))
    assert "wrong-Pa55" not in str(raised.value) and USER not in str(raised.value)


def test_redaction() -> None:
    url = "rtsps://admin:hunter2@cam.local:322/live?token=abc123"
    assert redact_url(url) == "rtsps://***@cam.local:322/live?***"
    assert redact_url("rtsp://cam.local/live") == "rtsp://cam.local/live"
    text = redact_text(f"error at '{url}' (user admin, hunter2, abc123)", url)
    assert "hunter2" not in text and "abc123" not in text and "admin" not in text
