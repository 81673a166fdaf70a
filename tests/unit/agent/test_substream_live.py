"""A live camera's two RTSP streams (two GStreamer servers on loopback, see
rtsp_server.py): the main stream is not decoded while the sub-stream delivers; the
sub-stream's server dies while the main runs: detection falls back to the main stream
(decoded again, one log line); it comes back: the main stream's decoder is off again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from doorwarden.agent.cameras import CameraRunner
from doorwarden.agent.capture.media import Sample
from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool
from tests.polling import wait_for
from tests.unit.agent.capture.test_rtsp import (
    PASSWORD,
    USER,
    Server,
    _need_gst_rtsp,
    free_port,
    rtsp,
)

__all__ = ["_need_gst_rtsp"]  # the fixture that skips (or fails in CI) without GStreamer


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    main, sub = Server(free_port()), Server(free_port())
    main.start()
    sub.start()
    yield main, sub
    main.kill()
    sub.kill()


class Seen:
    """The main stream's samples as the camera's thread handed them to the job."""

    def __init__(self, job: CameraJob) -> None:
        self.job = job
        self.lock = threading.Lock()
        self.frames: list[int] = []  # frames the main stream's decoder gave, per sample

    def handle(self, _name: str, sample: Sample) -> None:
        self.job.handle(sample)
        with self.lock:
            self.frames.append(len(sample.frames))

    def mark(self) -> int:
        with self.lock:
            return len(self.frames)

    def decoded_since(self, mark: int) -> tuple[int, int]:
        """(samples, decoded frames) since `mark`."""
        with self.lock:
            tail = self.frames[mark:]
        return len(tail), sum(tail)


def test_the_main_stream_is_decoded_only_while_the_sub_stream_is_down(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    main, sub = servers
    cam = CameraConfig.model_validate(
        {
            "name": "door", "detect": {"kind": "none"},
            "source": rtsp(main.url()), "substream": rtsp(sub.url(), reconnect_initial_s=0.2),
        }
    )  # fmt: skip
    job = CameraJob(cam, Spool(tmp_path))
    seen = Seen(job)
    runner = CameraRunner(
        [("door", cam.source, seen.handle)],
        on_open=lambda _n, source: job.opened(source), on_close=lambda _n: job.closed(),
    )  # fmt: skip
    with capture_logs() as logs, runner:
        wait_for(lambda: job.feed is not None and job.feed.sub.frames_read >= 10, 15, "sub")
        feed = job.feed
        assert feed is not None
        wait_for(lambda: not feed.main_decoding, 5, "the main stream's decoder to go off")
        mark = seen.mark()
        wait_for(lambda: seen.decoded_since(mark)[0] >= 15, 10, "main samples")
        samples, decoded = seen.decoded_since(mark)
        # A frame or two already inside the decoder's threads may still come out.
        assert decoded <= 3, f"{decoded} of {samples} main frames decoded with the sub up"

        sub.kill()  # the sub-stream drops; the main stream runs on
        wait_for(lambda: feed.falling_back, 10, "the fallback")
        mark = seen.mark()
        wait_for(lambda: seen.decoded_since(mark)[1] >= 10, 10, "main frames decoded")

        sub.start()  # and comes back: its source reconnects by itself
        wait_for(lambda: not feed.falling_back, 20, "the sub-stream back")
        wait_for(lambda: not feed.main_decoding, 5, "the main stream's decoder off again")
        mark = seen.mark()
        wait_for(lambda: seen.decoded_since(mark)[0] >= 15, 10, "main samples")
        assert seen.decoded_since(mark)[1] <= 3
    events = [e for e in logs if str(e["event"]).startswith("substream.")]
    assert [e["event"] for e in events] == ["substream.fallback", "substream.restored"], events


def test_a_live_sub_stream_that_never_opens_leaves_detection_on_the_main_stream(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    """Nothing listens where the sub-stream should be: the main stream stays decoded
    (its frames are analysed from the start), one fallback line says why, without the
    password, and the sub-stream is retried meanwhile."""
    main, _ = servers
    nowhere = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/sub"
    cam = CameraConfig.model_validate(
        {
            "name": "door", "detect": {"kind": "none"},
            "source": rtsp(main.url()), "substream": rtsp(nowhere),
        }
    )  # fmt: skip
    job = CameraJob(cam, Spool(tmp_path))
    seen = Seen(job)
    runner = CameraRunner(
        [("door", cam.source, seen.handle)],
        on_open=lambda _n, source: job.opened(source), on_close=lambda _n: job.closed(),
    )  # fmt: skip
    with capture_logs() as logs, runner:
        wait_for(lambda: job.feed is not None and job.feed.falling_back, 15, "the fallback")
        feed = job.feed
        assert feed is not None and feed.main_decoding
        mark = seen.mark()
        wait_for(lambda: seen.decoded_since(mark)[1] >= 10, 10, "main frames decoded")
    [line] = [e for e in logs if e["event"] == "substream.fallback"]
    assert "cannot open" in str(line["reason"]) and PASSWORD not in str(line["reason"])
