"""One camera's chain as the agent runs it: source -> motion -> detection -> clip -> spool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doorwarden.agent.analysis.detection import Detection, RgbFrame
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.config.models import CameraConfig, DetectConfig, FileSource, SyntheticSource
from doorwarden.agent.pipeline import CameraJob, CameraPipeline
from doorwarden.agent.recording.spool import Spool
from tests.paths import VTEST
from tests.unit.agent.samples import decode_clip

QUICK_RECORD = {"pre_roll_s": 0, "post_roll_s": 1, "min_clip_s": 1, "cooldown_s": 0}


def synthetic(**overrides: object) -> SyntheticSource:
    settings: dict[str, object] = {
        "kind": "synthetic", "width": 320, "height": 192, "fps": 10.0,
        "duration_s": 6.0, "scene": "object", "enter_at_s": 1.0,
    }  # fmt: skip
    return SyntheticSource.model_validate(settings | overrides)


def camera(source: object, **overrides: object) -> CameraConfig:
    settings: dict[str, object] = {
        "name": "door", "source": source, "record": QUICK_RECORD, "detect": {"kind": "none"},
    }  # fmt: skip
    return CameraConfig.model_validate(settings | overrides)


def run_job(job: CameraJob, cfg: SyntheticSource | FileSource, until_s: float = 1e9) -> None:
    with open_source(cfg) as source:
        job.opened(source)
        for sample in source.samples():
            if sample.time > until_s:
                break
            job.handle(sample)
    job.closed()


def test_an_object_entering_makes_one_motion_clip_in_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    job = CameraJob(camera(synthetic()), spool)
    run_job(job, synthetic())
    assert len(job.clips) == 1
    clip = job.clips[0]
    assert clip.metadata["labels"] == ["motion"]
    # The box slides in from the edge at 1 s; motion (analysed at 5 fps) counts it once
    # enough of it shows: well within a second.
    assert 1.0 <= clip.start <= 2.0
    sidecars = list(tmp_path.glob("*.json"))
    assert [json.loads(p.read_text())["camera"] for p in sidecars] == ["door"]
    assert decode_clip(clip.entry.clip).frames


def test_closing_mid_event_keeps_the_clip_in_progress(tmp_path: Path) -> None:
    cfg = synthetic(duration_s=30.0)
    job = CameraJob(camera(cfg, record=QUICK_RECORD | {"post_roll_s": 30}), Spool(tmp_path))
    run_job(job, cfg, until_s=4.0)  # the agent stops while the event is still recording
    assert len(job.clips) == 1
    assert job.clips[0].end == pytest.approx(4.0, abs=0.15)
    frames = len(decode_clip(job.clips[0].entry.clip).frames)
    assert frames == pytest.approx((job.clips[0].end - job.clips[0].start) * 10, abs=1)


def test_a_stream_that_comes_back_different_ends_the_clip_and_starts_afresh(
    tmp_path: Path,
) -> None:
    """An RTSP source refreshes `info` when it reconnects; a camera that rebooted into
    another resolution must not have its new frames written into the old clip."""
    first, second = synthetic(duration_s=30.0), synthetic(width=160, height=96)
    job = CameraJob(camera(first, record=QUICK_RECORD | {"post_roll_s": 30}), Spool(tmp_path))
    with open_source(first) as a, open_source(second) as b:
        job.opened(a)
        for sample in a.samples():
            if sample.time > 3:
                break
            job.handle(sample)
        assert job.clips == []  # still recording
        a.info = b.info  # what RtspVideoSource does on reconnect
        for sample in b.samples():
            job.handle(sample)
    job.closed()
    sizes = [(c.metadata["width"], c.metadata["height"]) for c in job.clips]
    assert sizes == [(320, 192), (160, 96)]
    for clip in job.clips:
        frames = decode_clip(clip.entry.clip).frames
        assert frames and frames[0].shape[:2] == (clip.metadata["height"], clip.metadata["width"])


class SeenFrames:
    """A detector that finds nothing and keeps what it was shown."""

    def __init__(self) -> None:
        self.frames: list[RgbFrame] = []

    def detect(self, rgb: RgbFrame) -> list[Detection]:
        self.frames.append(rgb.copy())
        return []


def detector_saw(tmp_path: Path, zone: list[tuple[float, float]]) -> list[RgbFrame]:
    cfg = synthetic(duration_s=5.0)
    cam = camera(cfg, privacy_zones=[zone])
    with open_source(cfg) as source:
        seen = SeenFrames()
        pipeline = CameraPipeline(
            cam, source.info, Spool(tmp_path), detector=seen, detect_interval_s=0
        )
        list(pipeline.run(source.samples()))
    return seen.frames


def test_the_detector_never_sees_what_a_privacy_zone_hides(tmp_path: Path) -> None:
    """The detector runs on a crop around the motion (detect_regions), cut from the
    masked copy: with the whole picture hidden it sees nothing but black; with half of it
    hidden it sees the scene where it is not hidden."""
    everything = detector_saw(tmp_path / "all", [(0, 0), (1, 0), (1, 1), (0, 1)])
    assert len(everything) >= 5  # every analysed frame with motion (motion is not masked)
    assert not any(rgb.any() for rgb in everything)
    half = detector_saw(tmp_path / "half", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])
    assert len(half) >= 5
    assert any(rgb.std() > 5 for rgb in half)  # the right half, as the camera saw it


def test_person_only_drops_events_without_a_person(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    cam = camera(synthetic(), detect={"kind": "hog", "alert": "person_only"})
    job = CameraJob(cam, spool)
    run_job(job, synthetic())
    assert job.clips == []
    assert spool.entries() == []  # removed, not just left out of the list
    assert not list(tmp_path.glob("*.mp4"))


def test_person_only_without_a_person_detector_is_refused() -> None:
    with pytest.raises(ValueError, match="person_only"):
        DetectConfig.model_validate({"kind": "none", "alert": "person_only"})


@pytest.mark.skipif(not VTEST.exists(), reason=f"{VTEST} not found (../shared/data)")
def test_pedestrians_on_vtest_are_labelled_person_with_boxes(tmp_path: Path) -> None:
    cfg = FileSource(kind="file", path=VTEST, pace=False)
    cam = camera(cfg, detect={"kind": "hog", "alert": "person_only"})
    job = CameraJob(cam, Spool(tmp_path))
    run_job(job, cfg, until_s=12.0)
    assert job.clips, "no event kept in the first 12 s of vtest.avi"
    meta = job.clips[0].metadata
    assert {"motion", "person"} <= set(meta["labels"])
    people = [b for b in meta["boxes"] if b["label"] == "person"]
    assert people
    for box in people:
        x0, y0, x1, y1 = box["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert job.clips[0].entry.thumbnail is not None and job.clips[0].entry.thumbnail.exists()
