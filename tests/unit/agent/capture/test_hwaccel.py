"""Hardware decode (capture/hwaccel.py): opt-in, and software whenever it cannot be used,
at open or mid-stream, with one `capture.hwaccel_fallback` line and no lost packet.

This machine has no accelerator (no /dev/dri, no GPU), so "asked for one that is absent"
is real here. A decoder dying mid-stream cannot be produced without hardware, so that
case injects at the PyAV boundary: see `_UnpluggedDevice`.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.analysis.motion import luma
from doorwarden.agent.capture import hwaccel
from doorwarden.agent.capture.hwaccel import AUTO_ORDER, HwUnavailable, describe, open_hardware
from doorwarden.agent.capture.media import Sample
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import CameraConfig, DecodeConfig, FileSource, SyntheticSource
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool

FPS = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of 320x240 H.264 at 10 fps, keyframes every 2 s; an object enters at 1 s."""
    path = tmp_path_factory.mktemp("hw") / "object.mp4"
    cfg = SyntheticSource(
        kind="synthetic", width=320, height=240, fps=FPS, duration_s=8, scene="object",
        enter_at_s=1.0,
    )  # fmt: skip
    encode_h264(cfg, path)
    return path


def _read(path: Path, decode: DecodeConfig | None) -> list[Sample]:
    cfg = FileSource(kind="file", path=path, pace=False)
    with open_source(cfg, camera="door", decode=decode) as source:
        return list(source.samples())


def _frames(samples: list[Sample]) -> dict[int, np.ndarray]:
    return {int(f.pts or 0): luma(f).copy() for s in samples for f in s.frames}


def _packets(samples: list[Sample]) -> list[tuple[int | None, bytes]]:
    return [(s.packet.pts, bytes(s.packet)) for s in samples if s.packet is not None]


def _fallbacks(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "capture.hwaccel_fallback"]


def _absent(clip: Path, accel: str) -> None:
    """Skip on a machine where `accel` really opens (then there is nothing to fall back from)."""
    with av.open(str(clip)) as container:
        try:
            open_hardware(container.streams.video[0], accel, None)
        except HwUnavailable:
            return
    pytest.skip(f"{accel} works on this machine")


def test_decode_is_off_by_default() -> None:
    cam = CameraConfig.model_validate({"name": "door", "source": {"kind": "file", "path": "x"}})
    assert cam.decode == DecodeConfig(hwaccel="off", device=None)
    assert list(CameraConfig.model_fields).index("decode") == 2  # right after `source`


@pytest.mark.parametrize("accel", AUTO_ORDER)
def test_an_absent_accelerator_falls_back_to_software_with_one_log_line(
    clip: Path, accel: str
) -> None:
    _absent(clip, accel)
    software = _read(clip, None)
    with capture_logs() as logs:
        samples = _read(clip, DecodeConfig.model_validate({"hwaccel": accel}))
    [line] = _fallbacks(logs)
    assert line["log_level"] == "warning"
    assert (line["camera"], line["accel"]) == ("door", accel)
    assert line["reason"]  # why, in words
    # Software decode, exactly as without the setting.
    assert _packets(samples) == _packets(software)
    got, want = _frames(samples), _frames(software)
    assert list(got) == list(want)
    assert all(np.array_equal(got[p], want[p]) for p in want)


def test_a_missing_device_is_a_fallback_too(clip: Path) -> None:
    with capture_logs() as logs:
        samples = _read(clip, DecodeConfig(hwaccel="vaapi", device="/dev/dri/doorwarden-none"))
    [line] = _fallbacks(logs)
    assert (line["camera"], line["accel"]) == ("door", "vaapi")
    assert sum(len(s.frames) for s in samples) == 8 * FPS


def test_auto_without_any_accelerator_is_quiet_software(clip: Path) -> None:
    for accel in AUTO_ORDER:
        _absent(clip, accel)
    with capture_logs() as logs:
        samples = _read(clip, DecodeConfig(hwaccel="auto"))
    assert not _fallbacks(logs)
    [none] = [e for e in logs if e["event"] == "capture.hwaccel_none"]
    assert none["log_level"] == "info"
    assert set(none["tried"]) == set(AUTO_ORDER)
    assert sum(len(s.frames) for s in samples) == 8 * FPS


class _UnpluggedDevice:
    """A "hardware" decoder whose device goes away after `works_for` packets.

    Injected at the PyAV boundary (`hwaccel.create_context`, which is a bare call of
    `av.CodecContext.create`): it wraps a real FFmpeg h264 decoder context, so frames
    before the failure are real decoded frames, and then raises FFmpeg's own EIO error
    from `decode`, as a decoder does when its device disappears (a GPU reset, a USB
    accelerator unplugged). Nothing of our own code is replaced.
    """

    def __init__(self, works_for: int, damaged: frozenset[int] = frozenset()) -> None:
        object.__setattr__(self, "_ctx", av.CodecContext.create("h264", "r"))
        object.__setattr__(self, "_left", works_for)
        object.__setattr__(self, "fails_at_s", works_for / FPS)
        object.__setattr__(self, "_damaged", damaged)  # packet numbers read as damaged
        object.__setattr__(self, "_n", 0)

    def decode(self, packet: Any = None) -> list[Any]:
        object.__setattr__(self, "_n", self._n + 1)
        if self._n in self._damaged:
            # What FFmpeg raises for a packet it cannot parse (AVERROR_INVALIDDATA).
            raise av.InvalidDataError(errno.EINVAL, "Invalid data found when processing input")
        if self._left <= 0:
            raise av.FFmpegError(errno.EIO, "Input/output error")
        object.__setattr__(self, "_left", self._left - 1)
        return list(self._ctx.decode(packet))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._ctx, name, value)


def _plug(
    monkeypatch: pytest.MonkeyPatch, works_for: int, damaged: frozenset[int] = frozenset()
) -> list[_UnpluggedDevice]:
    """Asking for v4l2m2m now gets an `_UnpluggedDevice` failing after `works_for` packets."""
    made: list[_UnpluggedDevice] = []

    def create(codec: str, hw: object) -> _UnpluggedDevice:
        assert codec == "h264_v4l2m2m"  # the V4L2 M2M decoder was asked for
        made.append(_UnpluggedDevice(works_for=works_for, damaged=damaged))
        return made[-1]

    if "h264_v4l2m2m" not in av.codecs_available:
        pytest.skip("this FFmpeg has no h264_v4l2m2m decoder to stand in for")
    monkeypatch.setattr(hwaccel, "create_context", create)
    return made


@pytest.fixture(params=[35, 40], ids=["between-keyframes", "at-a-keyframe"])
def unplugged(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> list[_UnpluggedDevice]:
    """The device fails at packet 35 (3.5 s) or at packet 40, the keyframe at 4 s (which
    software must then decode at once)."""
    return _plug(monkeypatch, request.param)


def test_a_decoder_failing_mid_stream_goes_on_in_software_from_the_next_keyframe(
    clip: Path, unplugged: list[_UnpluggedDevice]
) -> None:
    software = _read(clip, None)
    with capture_logs() as logs:
        samples = _read(clip, DecodeConfig(hwaccel="v4l2m2m"))
    assert len(unplugged) == 1
    [line] = _fallbacks(logs)
    assert (line["camera"], line["accel"]) == ("door", "v4l2m2m")
    assert "Input/output error" in line["reason"]
    # Every packet is still delivered, in order, with its keyframe flag: clips lose nothing.
    assert _packets(samples) == _packets(software)
    assert [s.keyframe for s in samples] == [s.keyframe for s in software]
    # Frames: all the hardware gave before it failed, then software's from the keyframe
    # at 4 s on; only the frames in between are missing (to motion analysis alone).
    got, want = _frames(samples), _frames(software)
    assert list(got) == sorted(got)  # presentation order, no repeats
    tb = samples[0].packet.time_base if samples[0].packet is not None else None
    assert tb is not None
    seconds = {pts: float(pts * tb) for pts in want}
    assert all(p in got for p in want if seconds[p] >= 4.0)
    assert all(np.array_equal(got[p], want[p]) for p in got)
    fails_at = unplugged[0].fails_at_s
    decoded_early = [p for p in got if seconds[p] < fails_at]
    assert len(decoded_early) >= fails_at * FPS - 5  # the hardware's frames were delivered
    assert not [p for p in got if fails_at <= seconds[p] < 4.0]


def test_the_event_in_progress_survives_a_mid_stream_failure(
    clip: Path, tmp_path: Path, unplugged: list[_UnpluggedDevice]
) -> None:
    """The object enters at 1 s and moves on; the device dies at 3.5 s, inside the event.
    The clip is the same packets as with software decode throughout."""

    def record(decode: DecodeConfig | None, spool_dir: Path) -> list[bytes]:
        cam = CameraConfig.model_validate(
            {"name": "door", "source": {"kind": "file", "path": str(clip), "pace": False},
             "detect": {"kind": "none"}, "record": {"post_roll_s": 1, "min_clip_s": 1}}
        )  # fmt: skip
        job = CameraJob(cam, Spool(spool_dir))
        with open_source(cam.source, camera="door", decode=decode) as source:
            job.opened(source)
            for sample in source.samples():
                job.handle(sample)
        job.closed()
        out = []
        for finished in job.clips:
            with av.open(str(finished.entry.clip)) as container:
                out.append(b"".join(bytes(p) for p in container.demux(video=0) if p.size))
        return out

    software = record(None, tmp_path / "sw")
    with capture_logs() as logs:
        hardware = record(DecodeConfig(hwaccel="v4l2m2m"), tmp_path / "hw")
    assert len(_fallbacks(logs)) == 1
    assert software  # the scene does make an event
    assert hardware[0] == software[0]


def test_describe_says_what_each_setting_asks_for() -> None:
    assert describe(None) == "software"
    assert describe(DecodeConfig()) == "software"
    assert "auto" in describe(DecodeConfig(hwaccel="auto")) or "software" in describe(
        DecodeConfig(hwaccel="auto")
    )
    assert "v4l2m2m" in describe(DecodeConfig(hwaccel="v4l2m2m"))


def test_skip_frame_set_on_the_stream_reaches_the_hardware_decoder(
    clip: Path, unplugged: list[_UnpluggedDevice]
) -> None:
    """The sub-stream feed turns the main stream's pictures off through the stream's
    codec context (`skip_frame`); a hardware decoder must obey it too."""
    cfg = FileSource(kind="file", path=clip, pace=False)
    with open_source(cfg, camera="door", decode=DecodeConfig(hwaccel="v4l2m2m")) as source:
        source.info.stream.codec_context.skip_frame = "ALL"  # type: ignore[union-attr]
        samples = list(source.samples())
    assert len(samples) >= 8 * FPS  # every packet still comes
    assert not [f for s in samples[:30] for f in s.frames]  # but no pictures


def test_a_looped_file_goes_on_decoding_on_the_same_hardware_decoder(
    clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the end of a pass the decoder is drained; after the rewind it must be flushed
    (the container's seek only flushes its own context), or the next pass would read as
    a hardware failure."""
    made = _plug(monkeypatch, works_for=10**6)
    cfg = FileSource(kind="file", path=clip, pace=False, loop=True)
    decode = DecodeConfig(hwaccel="v4l2m2m")
    samples = []
    with capture_logs() as logs, open_source(cfg, camera="door", decode=decode) as source:
        for sample in source.samples():
            samples.append(sample)
            if len(samples) == 2 * 8 * FPS + 1:
                break
    assert not _fallbacks(logs)
    assert len(made) == 1
    frames = sum(len(s.frames) for s in samples)
    assert frames >= 2 * 8 * FPS - 5  # both passes decoded (less the decoder's delay)


def test_the_camera_runner_hands_each_camera_its_decode_setting(clip: Path) -> None:
    """cameras.py passes `decode` per camera to its source: the camera that asked for an
    absent accelerator falls back (and says so under its own name), the other is not
    touched."""
    from doorwarden.agent.cameras import CameraRunner, CameraState

    cfg = FileSource(kind="file", path=clip, pace=False)
    frames = {"hw": 0, "sw": 0}

    def count(name: str, sample: Sample) -> None:
        frames[name] += len(sample.frames)

    decode = {"hw": DecodeConfig(hwaccel="vaapi", device="/dev/dri/doorwarden-none")}
    runner = CameraRunner([("hw", cfg, count), ("sw", cfg, count)], restart=False, decode=decode)
    with capture_logs() as logs:
        runner.start()
        for _ in range(500):
            if runner.done():
                break
            threading.Event().wait(0.02)
        runner.stop()
    assert {s.state for s in runner.status().values()} == {CameraState.finished}
    assert [line["camera"] for line in _fallbacks(logs)] == ["hw"]
    assert frames == {"hw": 8 * FPS, "sw": 8 * FPS}


def test_a_damaged_packet_is_skipped_not_taken_for_a_dead_device(
    clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One packet the decoder calls invalid is the stream's damage: skipped with the
    source's usual warning while the hardware goes on; three in a row are a failing
    decoder, and software takes over."""
    _plug(monkeypatch, works_for=10**6, damaged=frozenset({12}))
    with capture_logs() as logs:
        samples = _read(clip, DecodeConfig(hwaccel="v4l2m2m"))
    assert not _fallbacks(logs)
    assert [e["in_a_row"] for e in logs if e["event"] == "capture.decode_error"] == [1]
    assert len(_packets(samples)) == 8 * FPS

    _plug(monkeypatch, works_for=10**6, damaged=frozenset({12, 13, 14}))
    with capture_logs() as logs:
        samples = _read(clip, DecodeConfig(hwaccel="v4l2m2m"))
    [line] = _fallbacks(logs)
    assert "3 damaged packets in a row" in line["reason"]
    assert len([e for e in logs if e["event"] == "capture.decode_error"]) == 2
    assert len(_packets(samples)) == 8 * FPS
