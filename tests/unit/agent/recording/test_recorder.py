"""The event recorder, on a synthetic H.264 file whose frames carry their own index.

The file is 10 fps with a keyframe every 10 frames, so frame n is at n/10 s, keyframes are
whole seconds, and "within one GOP" means within 1 s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.config.models import RecordConfig
from doorwarden.agent.recording.recorder import EventRecorder, FinishedClip, LabelledBox
from doorwarden.agent.recording.spool import Spool
from tests.unit.agent.samples import (
    decode_clip,
    make_video,
    read_index,
    read_samples,
    top_level_boxes,
)

FPS = 10
GOP_S = 1.0
ZONE = [(0.6, 0.6), (0.9, 0.6), (0.9, 0.9), (0.6, 0.9)]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("rec") / "src.mp4", seconds=12)


@pytest.fixture(scope="module")
def video_bframes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("recb") / "src.mp4", seconds=6, bframes=2)


def _config(**kw: float) -> RecordConfig:
    base = {"pre_roll_s": 0, "post_roll_s": 0, "min_clip_s": 0, "max_clip_s": 60, "cooldown_s": 0}
    return RecordConfig(**{**base, **kw})


def run(
    video: Path,
    spool: Spool,
    record: RecordConfig,
    motion: Callable[[float], bool],
    *,
    privacy: bool = False,
) -> list[FinishedClip]:
    clips = []
    with read_samples(video) as src:
        mask = PrivacyMask([ZONE] if privacy else [], src.info.width, src.info.height)
        recorder = EventRecorder("door", src.info, record, mask, spool)
        for s in src.samples:
            if clip := recorder.push(s, motion=motion(s.time), labels={"motion"}):
                clips.append(clip)
        if clip := recorder.flush():
            clips.append(clip)
    return clips


def between(a: float, b: float) -> Callable[[float], bool]:
    # Frame times are n/10; a small epsilon keeps float rounding out of the boundaries.
    return lambda t: a - 1e-6 <= t < b - 1e-6


@pytest.mark.parametrize("privacy", [False, True])
def test_pre_roll_holds_frames_from_before_the_trigger(
    video: Path, tmp_path: Path, privacy: bool
) -> None:
    [clip] = run(video, Spool(tmp_path), _config(pre_roll_s=2), between(5.3, 6.0), privacy=privacy)
    decoded = decode_clip(clip.entry.clip)
    trigger_frame, pre_roll_frames = 53, 2 * FPS
    first = decoded.indices[0]
    assert decoded.keyframes[0]
    if privacy:
        # Re-encoded from decoded frames: any frame can open the clip, so exactly.
        assert first == trigger_frame - pre_roll_frames
    else:
        assert first <= trigger_frame - pre_roll_frames  # at or before trigger - pre_roll
        assert first % 10 == 0  # a source keyframe
        assert trigger_frame - pre_roll_frames - first < GOP_S * FPS  # at most a GOP early
    assert decoded.indices == list(range(first, first + len(decoded.indices)))
    assert clip.metadata["trigger"] == pytest.approx(5.3)
    assert clip.metadata["start"] == pytest.approx(first / FPS)


@pytest.mark.parametrize("privacy", [False, True])
def test_post_roll_and_duration_match_the_configuration(
    video: Path, tmp_path: Path, privacy: bool
) -> None:
    record = _config(pre_roll_s=1, post_roll_s=2)
    [clip] = run(video, Spool(tmp_path), record, between(4.0, 5.0), privacy=privacy)
    decoded = decode_clip(clip.entry.clip)
    # Motion 4.0-5.0 (last motion frame 4.9), 1 s pre-roll, 2 s post-roll: 3.0 to 6.9.
    expected_start, expected_end = 4.0 - 1, 4.9 + 2
    assert decoded.indices[0] / FPS == pytest.approx(expected_start, abs=GOP_S)
    assert (decoded.indices[-1] + 1) / FPS == pytest.approx(expected_end, abs=GOP_S)
    assert clip.duration == pytest.approx(expected_end - expected_start, abs=GOP_S)
    assert len(decoded.frames) == clip.metadata["frames"]
    assert decoded.duration == pytest.approx(clip.duration, abs=1.5 / FPS)
    assert clip.metadata["duration_s"] == pytest.approx(clip.duration, abs=1e-3)


def test_min_clip_extends_a_short_event(video: Path, tmp_path: Path) -> None:
    [clip] = run(video, Spool(tmp_path), _config(min_clip_s=4), between(3.0, 3.2))
    decoded = decode_clip(clip.entry.clip)
    assert len(decoded.frames) / FPS == pytest.approx(4, abs=GOP_S)
    assert clip.duration >= 4


def test_max_clip_splits_a_long_event_without_a_gap(video: Path, tmp_path: Path) -> None:
    clips = run(video, Spool(tmp_path), _config(pre_roll_s=1, max_clip_s=3), between(2.0, 10.0))
    assert len(clips) >= 3
    indices: list[int] = []
    for clip in clips:
        decoded = decode_clip(clip.entry.clip)
        assert decoded.keyframes[0]
        assert len(decoded.frames) / FPS <= 3 + GOP_S
        indices += decoded.indices
    # Consecutive parts: every frame from the first to the last exactly once.
    assert indices == list(range(indices[0], indices[-1] + 1))
    assert [c.metadata["part"] for c in clips] == list(range(len(clips)))
    assert len({c.metadata["event"] for c in clips}) == 1


def test_cooldown_suppresses_a_new_event(video: Path, tmp_path: Path) -> None:
    def two_bursts(t: float) -> bool:
        return between(2.0, 2.5)(t) or between(5.0, 5.5)(t)

    record = _config(post_roll_s=1, cooldown_s=4)
    assert len(run(video, Spool(tmp_path / "a"), record, two_bursts)) == 1
    # The control: without the cool-down the second burst is its own event.
    record = _config(post_roll_s=1, cooldown_s=0)
    clips = run(video, Spool(tmp_path / "b"), record, two_bursts)
    assert len(clips) == 2
    assert clips[1].start >= clips[0].end


def test_without_privacy_a_clip_is_a_stream_copy(video_bframes: Path, tmp_path: Path) -> None:
    [clip] = run(video_bframes, Spool(tmp_path), _config(pre_roll_s=1), between(2.5, 3.5))
    assert clip.metadata["reencoded"] is False
    decoded = decode_clip(clip.entry.clip)
    with read_samples(video_bframes) as src:
        source = [bytes(s.packet) for s in src.samples if s.packet is not None]
    first = source.index(decoded.packets[0])
    assert decoded.packets == source[first : first + len(decoded.packets)]
    # B-frames reorder: the frames still come back whole and in order.
    assert decoded.indices == list(range(decoded.indices[0], decoded.indices[-1] + 1))
    assert decoded.indices[0] % 10 == 0


def test_with_privacy_a_clip_is_re_encoded(video: Path, tmp_path: Path) -> None:
    [clip] = run(video, Spool(tmp_path), _config(pre_roll_s=1), between(2.5, 3.5), privacy=True)
    assert clip.metadata["reencoded"] is True
    decoded = decode_clip(clip.entry.clip)
    with read_samples(video) as src:
        source = {bytes(s.packet) for s in src.samples if s.packet is not None}
    assert not source & set(decoded.packets[1:])


@pytest.mark.parametrize("privacy", [False, True])
def test_clips_are_browser_playable_mp4(video: Path, tmp_path: Path, privacy: bool) -> None:
    [clip] = run(video, Spool(tmp_path), _config(), between(2.0, 4.0), privacy=privacy)
    boxes = top_level_boxes(clip.entry.clip)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart
    decoded = decode_clip(clip.entry.clip)
    assert (decoded.codec, decoded.pix_fmt) == ("h264", "yuv420p")


def test_metadata_and_thumbnail(video: Path, tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with read_samples(video) as src:
        recorder = EventRecorder(
            "door", src.info, _config(post_roll_s=1), PrivacyMask.none(), spool
        )
        for s in src.samples:
            moving = 2.0 <= s.time < 3.0
            recorder.push(
                s,
                motion=moving,
                labels={"motion", "person"} if s.time > 2.4 and moving else {"motion"},
                boxes=[LabelledBox("person", 0.87654, (0.1, 0.2, 0.3, 0.4))] if moving else [],
                score=0.9 if abs(s.time - 2.5) < 0.01 else 0.2,
            )
        clip = recorder.flush()
        assert clip is None  # the event ended on its own, nothing was in progress
    [entry] = spool.entries()
    meta = entry.metadata
    assert meta["camera"] == "door"
    assert meta["labels"] == ["motion", "person"]
    assert meta["boxes"][0] == {
        "t": 0.0, "label": "person", "confidence": 0.877, "box": [0.1, 0.2, 0.3, 0.4]
    }  # fmt: skip
    assert meta["peak_score"] == 0.9
    assert (meta["codec"], meta["width"], meta["height"]) == ("h264", 320, 240)
    assert meta["sha256"] == hashlib.sha256(entry.clip.read_bytes()).hexdigest()
    assert meta["start_utc"] < meta["end_utc"]
    assert meta["duration_s"] == pytest.approx(meta["end"] - meta["start"], abs=1e-3)
    assert entry.thumbnail is not None
    image = cv2.imdecode(np.frombuffer(entry.thumbnail.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    assert read_index(image[..., ::-1]) == 25  # the peak-score frame


def test_flush_finishes_a_clip_in_progress(video: Path, tmp_path: Path) -> None:
    [clip] = run(video, Spool(tmp_path), _config(post_roll_s=5), between(10.0, 12.0))
    decoded = decode_clip(clip.entry.clip)
    assert decoded.indices[-1] == 119  # the file's last frame


@pytest.mark.parametrize("privacy", [False, True])
def test_a_stream_joined_mid_gop_starts_its_clip_decodable(
    video: Path, tmp_path: Path, privacy: bool
) -> None:
    # Like a camera connected in the middle of a GOP, moving from the first packet.
    with read_samples(video) as src:
        mask = PrivacyMask([ZONE] if privacy else [], src.info.width, src.info.height)
        recorder = EventRecorder("door", src.info, _config(pre_roll_s=3), mask, Spool(tmp_path))
        for s in src.samples[5:40]:
            recorder.push(s, motion=True)
        clip = recorder.flush()
    assert clip is not None
    decoded = decode_clip(clip.entry.clip)
    assert decoded.keyframes[0]
    assert decoded.indices[-1] == 39
    # Re-encoding can start on any decoded frame; a copy has to wait for the keyframe.
    assert decoded.indices[0] == (5 if privacy else 10)
