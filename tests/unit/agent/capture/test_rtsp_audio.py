"""RTSP cameras with sound, end to end through the agent's pipeline: a GStreamer RTSP
server (rtsp_server.py) sends H.264 and AAC, or H.264 and G.711; the camera runner, the
camera job and the recorder make a clip of a doorbell press; the clip has both streams.
A camera without sound asked for sound records video and says why, once."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.cameras import CameraRunner
from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool
from tests.polling import wait_for
from tests.unit.agent.capture.test_rtsp import (
    PASSWORD,
    SERVER,
    SYSTEM_PYTHON,
    USER,
    _need_gst_rtsp,  # noqa: F401 - the module's skip/fail rule for a missing server
    free_port,
)


@pytest.fixture
def camera_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An RTSP camera with `request.param` audio ("aac", "pcmu" or None)."""
    port = free_port()
    audio = ["--audio", request.param] if request.param else []
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, str(SERVER), str(port), USER, PASSWORD, *audio],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{port}/cam"
    finally:
        proc.kill()
        proc.communicate()


def record_a_ring(url: str, spool: Spool) -> CameraJob:
    camera = CameraConfig.model_validate(
        {
            "name": "door", "audio": True, "detect": {"kind": "none"},
            "motion": {"min_area": 0.9},  # the test pattern moves: only the ring records
            "source": {"kind": "rtsp", "url": url, "timeout_s": 3},
            "record": {"pre_roll_s": 0, "post_roll_s": 1, "min_clip_s": 2, "cooldown_s": 0},
        }
    )  # fmt: skip
    job = CameraJob(camera, spool)
    runner = CameraRunner(
        [("door", camera.source, lambda _, sample: job.handle(sample))],
        on_open=lambda _, source: job.opened(source),
        on_close=lambda _: job.closed(),
        audio=frozenset({"door"}),
    )
    with runner:
        wait_for(lambda: job.media_time > 1.0, 15, "the camera streaming")
        job.trigger("ring")
        wait_for(lambda: bool(job.clips), 15, "the clip of the ring")
    return job


@pytest.mark.parametrize(
    ("camera_url", "source_codec", "rate"),
    [("aac", "aac", 48_000), ("pcmu", "pcm_mulaw", 48_000)],
    indirect=["camera_url"],
)
def test_a_rtsp_camera_with_sound_records_clips_with_both_streams(
    camera_url: str, source_codec: str, rate: int, tmp_path: Path
) -> None:
    job = record_a_ring(camera_url, Spool(tmp_path))
    clip = job.clips[0]
    assert clip.metadata["audio"] is True
    assert json.loads(clip.entry.sidecar.read_text())["audio"] is True
    with av.open(str(clip.entry.clip)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert audio.codec_context.sample_rate == rate
        frames = list(container.decode(video=0))
        container.seek(0)
        pcm = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert len(frames) >= 15  # 10 fps, at least 2 s
    seconds = len(pcm) / rate
    assert abs(seconds - len(frames) / 10) < 0.5, (seconds, len(frames))
    # The camera's 1 kHz tone, heard through the whole clip (G.711 transcoded to AAC).
    middle = pcm[len(pcm) // 4 : len(pcm) // 4 + rate // 5]
    assert np.abs(middle).max() > 0.1
    spectrum = np.abs(np.fft.rfft(middle))
    assert abs(np.argmax(spectrum) * rate / len(middle) - 1000) < 30
    assert job._info is not None and job._info.audio is not None
    assert job._info.audio.source_codec == source_codec


@pytest.mark.parametrize("camera_url", [None], indirect=True)
def test_a_rtsp_camera_without_sound_asked_for_sound_records_video(
    camera_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    with capture_logs() as logs:
        job = record_a_ring(camera_url, Spool(tmp_path))
    clip = job.clips[0]
    assert clip.metadata["audio"] is False
    with av.open(str(clip.entry.clip)) as container:
        assert [s.type for s in container.streams] == ["video"]
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["capture.no_audio"]
    assert "has no audio stream: recording video only" in warnings[0]["message"]
    assert USER not in str(warnings) and PASSWORD not in str(warnings)
    assert time.monotonic() - started < 30
