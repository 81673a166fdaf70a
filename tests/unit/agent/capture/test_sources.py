"""Capture sources on real media: H.264 clips written by PyAV, damaged copies of them,
random bytes, and the synthetic scene encoder."""

from __future__ import annotations

import itertools
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.capture.media import Sample, SourceError
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import SyntheticVideoSource
from doorwarden.agent.config.models import FileSource, SyntheticSource, V4l2Source

FPS, SECONDS = 10, 2


def make_clip(path: Path, *, faststart: bool = False, seconds: int = SECONDS) -> Path:
    """An H.264 MP4, 320x240 at 10 fps, a keyframe every second, noisy so it is not tiny."""
    options = {"movflags": "faststart"} if faststart else {}
    rng = np.random.default_rng(7)
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = FPS
        # No scene cuts on noise: keyframes exactly every second. B-frames stay on, so
        # decode order differs from display order, as in many recorded files.
        stream.codec_context.options = {"x264-params": "scenecut=0"}
        for _ in range(seconds * FPS):
            rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def file_cfg(path: Path, *, pace: bool = False, loop: bool = False) -> FileSource:
    return FileSource(kind="file", path=path, pace=pace, loop=loop)


def read_all(cfg: FileSource) -> list[Sample]:
    with open_source(cfg) as source:
        return list(source.samples())


def test_info_describes_the_stream(clip: Path) -> None:
    with open_source(file_cfg(clip)) as source:
        info = source.info
    assert (info.width, info.height, info.codec) == (320, 240, "h264")
    assert info.fps == pytest.approx(FPS)
    assert isinstance(info.time_base, Fraction)
    assert info.stream is not None


def test_every_frame_is_decoded_on_an_increasing_clock(clip: Path) -> None:
    samples = read_all(file_cfg(clip))
    assert sum(len(s.frames) for s in samples) == SECONDS * FPS
    times = [s.time for s in samples]
    assert times[0] == 0.0
    assert times == sorted(times)
    assert times[-1] == pytest.approx(SECONDS - 1 / FPS)
    assert samples[0].keyframe
    keys = [s.time for s in samples if s.keyframe]
    assert len(keys) == SECONDS
    assert keys[1] - keys[0] == pytest.approx(1.0)


def test_pacing_follows_the_frame_rate(clip: Path) -> None:
    start = time.monotonic()
    read_all(file_cfg(clip, pace=True))
    paced = time.monotonic() - start
    start = time.monotonic()
    read_all(file_cfg(clip, pace=False))
    unpaced = time.monotonic() - start
    # The last packet is due at 1.9 s of media time.
    assert 1.8 <= paced <= 2.4
    assert unpaced < 0.5 * paced


def test_loop_keeps_time_increasing_and_starts_each_pass_on_a_keyframe(clip: Path) -> None:
    per_pass = SECONDS * FPS
    samples: list[Sample] = []
    with open_source(file_cfg(clip, loop=True)) as source:
        for sample in source.samples():
            if sample.packet is not None:
                samples.append(sample)
            if len(samples) == 3 * per_pass:
                break
    times = [s.time for s in samples]
    assert all(b > a for a, b in itertools.pairwise(times))
    for boundary in (per_pass, 2 * per_pass):
        assert samples[boundary].keyframe
        assert samples[boundary].time == pytest.approx(samples[boundary - 1].time + 1 / FPS)
    assert times[-1] == pytest.approx(3 * SECONDS - 1 / FPS)


def test_stop_from_another_thread_ends_a_paced_looping_source(clip: Path) -> None:
    got: list[Sample] = []
    with open_source(file_cfg(clip, pace=True, loop=True)) as source:
        threading.Timer(0.5, source.stop).start()
        start = time.monotonic()
        got.extend(source.samples())
        elapsed = time.monotonic() - start
    assert 0.4 < elapsed < 0.8
    assert 3 <= len(got) <= 8


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=r"video file .*nope\.mp4 does not exist"):
        open_source(file_cfg(missing))


def test_random_bytes_are_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(3).bytes(64 * 1024))
    with pytest.raises(SourceError, match=r"cannot read video file .*garbage\.mp4: Invalid data"):
        open_source(file_cfg(garbage))


def test_truncated_file_without_its_index_is_a_clear_error(clip: Path, tmp_path: Path) -> None:
    # Without faststart the MP4 index (moov) is written last, so a cut file loses it.
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"cut\.mp4"):
        open_source(file_cfg(cut))


def test_truncated_media_data_delivers_the_readable_part_and_warns(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", faststart=True)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with capture_logs() as logs:
        samples = read_all(file_cfg(cut))
    frames = sum(len(s.frames) for s in samples)
    assert 0 < frames < SECONDS * FPS
    warnings = [e for e in logs if e["event"] == "capture.file_truncated"]
    assert len(warnings) == 1
    assert warnings[0]["path"] == str(cut)
    assert warnings[0]["expected"] == SECONDS * FPS


def test_missing_v4l2_device_is_a_clear_error() -> None:
    cfg = V4l2Source(kind="v4l2", device="/dev/video-doorwarden-missing", width=640, height=480)
    with pytest.raises(SourceError, match=r"cannot open V4L2 device /dev/video-doorwarden-missing"):
        open_source(cfg)


# Synthetic source -------------------------------------------------------------------------


def synthetic(**overrides: object) -> SyntheticSource:
    settings: dict[str, object] = {
        "kind": "synthetic",
        "width": 160,
        "height": 96,
        "fps": 10.0,
        "duration_s": 5.0,
        "scene": "object",
        "enter_at_s": 1.0,
    }
    return SyntheticSource.model_validate(settings | overrides)


def test_synthetic_packets_are_real_h264_a_fresh_decoder_reads() -> None:
    cfg = synthetic()
    with open_source(cfg) as source:
        assert isinstance(source, SyntheticVideoSource)
        assert (source.info.codec, source.info.width, source.info.height) == ("h264", 160, 96)
        samples = list(source.samples())
    packets = [s.packet for s in samples if s.packet is not None]
    assert len(packets) == 50
    assert sum(len(s.frames) for s in samples) == 50

    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for p in packets for f in decoder.decode(p)] + decoder.decode(None)
    assert len(decoded) == 50
    assert (decoded[0].width, decoded[0].height) == (160, 96)

    # Joining at a later keyframe works too (SPS/PPS travel in-band, as from a camera).
    later = av.CodecContext.create("h264", "r")
    first_key = next(i for i, p in enumerate(packets) if p.is_keyframe and i > 0)
    rest = [f for p in packets[first_key:] for f in later.decode(p)] + later.decode(None)
    assert len(rest) == 50 - first_key


def test_synthetic_keyframe_every_two_seconds_and_time_follows_fps() -> None:
    with open_source(synthetic(duration_s=7.0)) as source:
        samples = [s for s in source.samples() if s.packet is not None]
    assert [s.time for s in samples if s.keyframe] == pytest.approx([0.0, 2.0, 4.0, 6.0])
    assert [s.time for s in samples] == pytest.approx([i / 10 for i in range(70)])


def test_synthetic_frames_show_the_scene() -> None:
    # The object scene: frames differ before and after the object enters.
    with open_source(synthetic(duration_s=3.0, enter_at_s=1.0)) as source:
        frames = [f.to_ndarray(format="gray") for s in source.samples() for f in s.frames]
    early, late = frames[2].astype(int), frames[-1].astype(int)
    assert np.abs(late - early).max() > 50
