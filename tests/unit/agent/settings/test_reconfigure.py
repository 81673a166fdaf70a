"""A running camera takes new settings at its next sample (pipeline.CameraJob.reconfigure)
without losing or repeating a frame of its clips. The source is an H.264 file whose frames
carry their index as a bar code (tests/unit/agent/samples.py), so the clips' frames are
read back with PyAV and checked one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import CameraConfig, SyntheticSource
from doorwarden.agent.observe import Observers
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool
from tests.unit.agent.samples import decode_clip, make_video
from tests.unit.agent.settings.rig import Heard, camera

BOTTOM = [[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]]
HIDDEN_ROWS = slice(150, 240)  # 0.6 x 240 = 144, and a margin for the encoder's edge


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("reconf") / "src.mp4", seconds=6, gop=10)


def run(
    job: CameraJob,
    cfg: CameraConfig,
    changes: dict[int, CameraConfig | tuple[CameraConfig, bool] | str],
) -> int:
    """Play the file into the job as CameraRunner does, reconfiguring (or pressing the
    doorbell: a str) before the sample of each index in `changes`; the samples played."""
    count = 0
    with open_source(cfg.source) as source:
        job.opened(source)
        for index, sample in enumerate(source.samples()):
            change = changes.get(index)
            if isinstance(change, str):
                job.trigger(change)
            elif isinstance(change, tuple):
                job.reconfigure(change[0], detection_enabled=change[1])
            elif change is not None:
                job.reconfigure(change)
            job.handle(sample)
            count += 1
    job.closed()
    return count


def hidden(frame: np.ndarray) -> bool:
    return bool(frame[HIDDEN_ROWS].max() < 30)


def test_a_zone_added_mid_clip_is_black_from_the_next_frame_and_no_frame_is_lost(
    tmp_path: Path, video: Path
) -> None:
    cfg = camera("front", video)
    heard, observers = Heard(), Observers()
    observers.add(heard)
    job = CameraJob(cfg, Spool(tmp_path), observers=observers)
    run(job, cfg, {30: camera("front", video, privacy_zones=[BOTTOM])})
    first, second = (decode_clip(c.entry.clip) for c in job.clips)
    # The clip in progress was finished and kept (stream copy: it had no zones), and the
    # next one, re-encoded with the zone, starts at the very next frame.
    assert [c.reencoded for c in job.clips] == [False, True]
    assert first.indices == list(range(first.indices[0], 30))
    assert second.indices == list(range(30, 60))
    assert not any(hidden(f) for f in first.frames)
    assert all(hidden(f) for f in second.frames)
    assert all(f[: HIDDEN_ROWS.start - 20].mean() > 40 for f in second.frames)
    # Listeners heard motion begin, both clips, and motion end when the stream closed.
    assert heard.of("motion") == [("front", True), ("front", False)]
    assert [c.clip_id for c in heard.of("clip")] == [c.entry.id for c in job.clips]
    assert job.clips[0].end <= job.clips[1].start  # back to back, by the frames above


def test_a_zone_removed_mid_clip_keeps_the_clip_whole_and_hidden_until_it_ends(
    tmp_path: Path, video: Path
) -> None:
    cfg = camera("front", video, privacy_zones=[BOTTOM])
    job = CameraJob(cfg, Spool(tmp_path))
    run(job, cfg, {30: camera("front", video)})
    [clip] = job.clips  # not split by the change
    decoded = decode_clip(clip.entry.clip)
    assert decoded.indices == list(range(decoded.indices[0], 60))
    assert all(hidden(f) for f in decoded.frames)  # never less hidden than asked before
    assert job.camera.privacy_zones == []


def test_once_the_clip_ends_the_next_clip_after_a_removal_is_a_stream_copy_again(
    tmp_path: Path,
) -> None:
    """A walker crosses (the synthetic scene, as an H.264 file) and leaves; the zone is
    removed while the clip runs; a doorbell press later records with stream copy again."""
    scene = SyntheticSource(
        kind="synthetic", width=320, height=192, duration_s=12.0, enter_at_s=1.0, scene="object"
    )
    path = tmp_path / "scene.mp4"
    encode_h264(scene, path, gop_s=1.0)
    short = {"pre_roll_s": 0, "post_roll_s": 0.5, "min_clip_s": 0.5, "cooldown_s": 0}
    cfg = camera("front", path, privacy_zones=[BOTTOM], record=short)
    job = CameraJob(cfg, Spool(tmp_path / "spool"))
    run(job, cfg, {25: camera("front", path, record=short), 110: "ring"})
    assert [c.reencoded for c in job.clips] == [True, False]
    assert job.clips[-1].metadata["labels"] == ["ring"]
    assert all(hidden(f) for f in decode_clip(job.clips[0].entry.clip).frames)
    assert not hidden(decode_clip(job.clips[1].entry.clip).frames[-1])


def test_detection_off_records_nothing_on_motion_but_a_ring_still_records(
    tmp_path: Path, video: Path
) -> None:
    cfg = camera("front", video)
    heard, observers = Heard(), Observers()
    observers.add(heard)
    job = CameraJob(cfg, Spool(tmp_path), observers=observers)
    run(job, cfg, {0: (cfg, False), 40: "ring"})
    [clip] = job.clips
    assert clip.metadata["labels"] == ["ring"]
    assert decode_clip(clip.entry.clip).indices[-1] == 59
    assert heard.of("motion") == []  # not analysed at all
    job2 = CameraJob(cfg, Spool(tmp_path / "again"), detection_enabled=False)
    run(job2, cfg, {20: (cfg, True)})  # and back on: motion records again
    assert len(job2.clips) == 1 and "motion" in job2.clips[0].metadata["labels"]


def test_recording_lengths_apply_to_the_clip_in_progress(tmp_path: Path, video: Path) -> None:
    cfg = camera("front", video)  # max_clip_s 60: one clip for the whole file
    job = CameraJob(cfg, Spool(tmp_path))
    shorter = camera("front", video, record={"pre_roll_s": 0, "post_roll_s": 30,
                                             "min_clip_s": 1, "max_clip_s": 2})  # fmt: skip
    run(job, cfg, {20: shorter})
    assert len(job.clips) >= 2  # split at 2 s from then on
    frames = [i for c in job.clips for i in decode_clip(c.entry.clip).indices]
    assert frames == list(range(frames[0], 60))  # split, nothing lost or repeated
