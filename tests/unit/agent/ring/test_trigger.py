"""A doorbell press records a clip through the real recorder: pre-roll, label "ring",
on a camera that sees no motion, and kept by the person_only alert mode."""

from __future__ import annotations

from pathlib import Path

from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.pipeline import TRIGGER_TTL_S, CameraJob
from doorwarden.agent.recording.spool import Spool
from tests.unit.agent.samples import decode_clip
from tests.unit.agent.test_pipeline import camera, synthetic

RECORD = {"pre_roll_s": 2, "post_roll_s": 1, "min_clip_s": 1, "cooldown_s": 30}


def run_with_press(job: CameraJob, cfg: object, press_at: float) -> None:
    with open_source(cfg) as source:  # type: ignore[arg-type]
        job.opened(source)
        pressed = False
        for sample in source.samples():
            if not pressed and sample.time >= press_at:
                job.trigger("ring")  # as the doorbell's thread does, between two samples
                pressed = True
            job.handle(sample)
    job.closed()


def test_a_press_records_a_ring_clip_with_pre_roll_where_nothing_moves(tmp_path: Path) -> None:
    cfg = synthetic(scene="static", duration_s=8.0)
    job = CameraJob(camera(cfg, record=RECORD), Spool(tmp_path))
    run_with_press(job, cfg, press_at=4.0)
    [clip] = job.clips
    assert clip.metadata["labels"] == ["ring"]
    assert clip.metadata["trigger"] >= 4.0
    assert clip.start <= 4.0 - 1.0  # pre-roll: from the keyframe at or before 2 s back
    assert clip.end >= 4.0 + RECORD["post_roll_s"]
    assert decode_clip(clip.entry.clip).frames


def test_without_a_press_a_still_scene_records_nothing(tmp_path: Path) -> None:
    cfg = synthetic(scene="static", duration_s=8.0)
    job = CameraJob(camera(cfg, record=RECORD), Spool(tmp_path))
    run_with_press(job, cfg, press_at=1e9)
    assert job.clips == []


def test_person_only_keeps_a_ring_clip_nobody_was_seen_in(tmp_path: Path) -> None:
    cfg = synthetic(scene="static", duration_s=6.0)
    cam = camera(cfg, record=RECORD, detect={"kind": "hog", "alert": "person_only"})
    job = CameraJob(cam, Spool(tmp_path))
    run_with_press(job, cfg, press_at=3.0)
    assert [c.metadata["labels"] for c in job.clips] == [["ring"]]


def test_a_press_during_a_motion_clip_labels_it_ring_and_ignores_the_cool_down(
    tmp_path: Path,
) -> None:
    cfg = synthetic(scene="object", enter_at_s=1.0, duration_s=6.0)
    job = CameraJob(camera(cfg, record=RECORD), Spool(tmp_path))
    run_with_press(job, cfg, press_at=2.0)
    assert any(set(c.metadata["labels"]) == {"motion", "ring"} for c in job.clips)


def test_a_press_for_a_stream_that_is_down_expires(tmp_path: Path) -> None:
    cfg = synthetic(scene="static", duration_s=3.0)
    job = CameraJob(camera(cfg, record=RECORD), Spool(tmp_path))
    job.trigger("ring")
    job._trigger = ("ring", job._trigger[1] - TRIGGER_TTL_S - 1)  # type: ignore[index]
    run_with_press(job, cfg, press_at=1e9)
    assert job.clips == []


def test_a_mode_that_records_nothing_still_records_the_ring(tmp_path: Path) -> None:
    from doorwarden.agent.live.mode import CameraSwitches

    cfg = synthetic(scene="object", enter_at_s=1.0, duration_s=8.0)
    switches = CameraSwitches()
    switches.recording_enabled = False  # as a `mode` message with record=false leaves it
    job = CameraJob(camera(cfg, record=RECORD), Spool(tmp_path), switches=switches)
    run_with_press(job, cfg, press_at=5.0)
    [clip] = job.clips  # the object's motion from 1 s made none
    assert "ring" in clip.metadata["labels"]
    assert clip.start < 5.0 <= clip.metadata["trigger"]
