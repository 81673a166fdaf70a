"""Motion detection on synthetic scenes with known ground truth and on real footage."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from doorwarden.agent.analysis.motion import MotionDetector, MotionResult, luma
from doorwarden.agent.capture.synthetic import render_scene
from doorwarden.agent.config.models import MotionConfig, Polygon, SyntheticSource
from tests.paths import SHARED_DATA

DATA = SHARED_DATA
# The tree fills the picture right of the window frame (x > ~0.12) in tree.avi.
TREE_IGNORE: Polygon = [(0.12, 0.0), (1.0, 0.0), (1.0, 1.0), (0.1, 1.0)]
TREE_ONLY_UNTIL_S = 23.0  # from frame 53 (~23.1 s) a hand waves in front of the lens


def _footage(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test footage {path} is missing")
        print(f"skipping: {path} is missing")  # noqa: T201 -- the brief asks for a printed reason
        pytest.skip(f"test footage {path} is missing")
    return path


def _scene(scene: str, **kw: object) -> SyntheticSource:
    base: dict[str, object] = {"kind": "synthetic", "scene": scene, "width": 640, "height": 360}
    return SyntheticSource.model_validate(base | kw)


def _run_scene(
    cfg: SyntheticSource, motion: MotionConfig | None = None
) -> list[tuple[float, MotionResult]]:
    det = MotionDetector(motion or MotionConfig(), cfg.width, cfg.height)
    out = []
    for t, rgb in render_scene(cfg):
        if det.should_analyse(t):
            out.append((t, det.update(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), t)))
    return out


def _run_file(path: Path, motion: MotionConfig | None = None) -> list[tuple[float, MotionResult]]:
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        det = MotionDetector(motion or MotionConfig(), stream.width, stream.height)
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if det.should_analyse(t):
                out.append((t, det.update(luma(frame), t)))
    return out


def _events(results: list[tuple[float, MotionResult]]) -> list[float]:
    """Start times of motion events."""
    starts, was = [], False
    for t, r in results:
        if r.motion and not was:
            starts.append(t)
        was = r.motion
    return starts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_object_triggers_promptly_with_a_box_on_it(seed: int) -> None:
    cfg = _scene("object", seed=seed, fps=10, duration_s=8, enter_at_s=3)
    results = _run_scene(cfg)
    starts = _events(results)
    assert len(starts) == 1
    assert 3.0 <= starts[0] <= 4.0
    t, first = next((t, r) for t, r in results if r.motion)
    assert first.boxes
    # The walker's leading edge is at (t - 3) * speed from the left; its top at 0.55 * h.
    lead = (t - 3.0) * (640 + 24) / 5.0
    x, y, w, h = max(first.boxes, key=lambda b: b[2] * b[3])
    assert x <= lead + 8
    assert x + w >= lead - 24
    assert y <= 360 * 0.55 + 8 <= y + h
    assert 0 < first.score < 0.05


@pytest.mark.parametrize("scene", ["static", "lights", "noise", "sunset"])
@pytest.mark.parametrize("size", [(640, 360), (320, 180)])
def test_no_motion_without_an_object(scene: str, size: tuple[int, int]) -> None:
    cfg = _scene(scene, width=size[0], height=size[1], fps=10, duration_s=8, enter_at_s=3)
    results = _run_scene(cfg)
    assert not any(r.motion for _, r in results)
    assert results  # it did analyse


def test_high_sensitivity_still_ignores_lights_and_noise() -> None:
    motion = MotionConfig(sensitivity=0.9)
    for scene in ("lights", "noise", "sunset"):
        assert not any(r.motion for _, r in _run_scene(_scene(scene, duration_s=8), motion))
    assert _events(_run_scene(_scene("object", duration_s=8), motion))


# The walker's band: y from 0.55 to 0.72 of the height, across the whole width.
WALKWAY: Polygon = [(0.0, 0.5), (1.0, 0.5), (1.0, 0.8), (0.0, 0.8)]
SKY: Polygon = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3)]


def test_ignore_area_and_zone_elsewhere_suppress_the_object() -> None:
    cfg = _scene("object", duration_s=8)
    assert not any(r.motion for _, r in _run_scene(cfg, MotionConfig(ignore=[WALKWAY])))
    assert not any(r.motion for _, r in _run_scene(cfg, MotionConfig(zones=[SKY])))
    # ...and a zone over the walkway keeps it.
    assert _events(_run_scene(cfg, MotionConfig(zones=[WALKWAY])))


def test_should_analyse_keeps_the_configured_rate() -> None:
    det = MotionDetector(MotionConfig(analysis_fps=5), 320, 180)
    for fps in (25.0, 30.0, 7.0):
        det = MotionDetector(MotionConfig(analysis_fps=5), 320, 180)
        due = [i / fps for i in range(int(fps * 20)) if det.should_analyse(i / fps)]
        assert len(due) == pytest.approx(100, abs=2)
    # A stream slower than the analysis rate: every frame is analysed.
    det = MotionDetector(MotionConfig(analysis_fps=5), 320, 180)
    assert all(det.should_analyse(i / 2.0) for i in range(20))
    # After a gap the detector resumes at the rate instead of catching up in a burst.
    det = MotionDetector(MotionConfig(analysis_fps=5), 320, 180)
    assert det.should_analyse(0.0)
    assert det.should_analyse(100.0)
    assert not det.should_analyse(100.04)
    assert det.should_analyse(100.2)


def _yuv_frame(width: int, height: int) -> av.VideoFrame:
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


@pytest.mark.parametrize("size", [(320, 180), (330, 190)])  # 330: rows padded past width
def test_luma_is_the_y_plane(size: tuple[int, int]) -> None:
    frame = _yuv_frame(*size)
    y = luma(frame)
    assert y.shape == (size[1], size[0])
    assert y.dtype == np.uint8
    # swscale's "gray" is full range, the Y plane is limited (16..235): undo the expansion.
    gray = frame.to_ndarray(format="gray").astype(np.float32)
    assert np.abs(y - (gray * 219 / 255 + 16)).max() <= 1.5
    if size[0] == 330:
        assert frame.planes[0].line_size > 330  # the case being tested really is padded


def test_luma_falls_back_for_packed_formats() -> None:
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[:, 48:] = 200
    y = luma(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
    assert y.shape == (64, 96)
    assert y[:, :40].max() < 20
    assert y[:, 56:].min() > 150


def test_boxes_are_in_source_coordinates() -> None:
    det = MotionDetector(MotionConfig(sensitivity=0.75), 1280, 720)
    y = np.full((720, 1280), 100, np.uint8)
    det.update(y, 0.0)
    results = []
    for i in range(1, 6):
        moving = y.copy()
        moving[400:600, 600 + 4 * i : 700 + 4 * i] = 20
        results.append(det.update(moving, i * 0.2))
    assert results[-1].motion
    x, top, w, h = results[-1].boxes[0]
    assert 580 <= x <= 630
    assert 380 <= top <= 410
    assert 80 <= w <= 160
    assert 180 <= h <= 230


def test_vtest_pedestrians_are_detected() -> None:
    results = _run_file(_footage("vtest.avi"))
    starts = _events(results)
    assert starts
    assert starts[0] < 1.5  # people walk from the first frame
    on = sum(r.motion for _, r in results) / len(results)
    assert on > 0.9  # somebody is walking almost all the time


def test_tree_in_wind() -> None:
    path = _footage("tree.avi")
    starts = _events(_run_file(path))
    assert len([t for t in starts if t < TREE_ONLY_UNTIL_S]) <= 1
    # The flicker limit scales with the history seen, so the swaying tree is recognised
    # from the first seconds after start-up, not only once the toggle counts have filled.
    assert not [t for t in starts if t < 10]
    assert not _events(_run_file(path, MotionConfig(ignore=[TREE_IGNORE])))


# A far walker: 8x24 px on 640x360 is 0.08% of the image, well below the default minimum
# area (0.2%), so only its persistence and steady movement can make it count.
FAR = (8, 24)
# Small regions are judged only once the detector has seen a few seconds of the scene
# (which pixels flicker is not known before), so the figure arrives after that.
FAR_AT_S = 5.0


def _far_scene(mover: str, seed: int = 0, fps: int = 10) -> list[tuple[float, MotionResult]]:
    """12 s of the static scene at `fps` with one small dark figure from FAR_AT_S on.

    mover: "walk" (crosses from the left edge at 40 px/s), "blink" (in place, shown in a
    random half of the frames), "jitter" (always shown, jumping up to 6 px each frame
    around a fixed place), "appear" (appears in place and stays).
    """
    cfg = _scene("static", seed=seed, fps=fps, duration_s=12)
    rng = np.random.default_rng(seed)
    texture = rng.integers(20, 60, (FAR[1], FAR[0])).astype(np.uint8)
    det = MotionDetector(MotionConfig(), cfg.width, cfg.height)
    out = []
    for t, rgb in render_scene(cfg):
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        shown, x0, y0 = t >= FAR_AT_S, 300, 200
        if mover == "walk":
            x0 = round(-FAR[0] + (t - FAR_AT_S) * 40)
        elif mover == "blink":
            shown = shown and rng.random() < 0.5
        elif mover == "jitter":
            x0, y0 = x0 + int(rng.integers(-6, 7)), y0 + int(rng.integers(-6, 7))
        if shown:
            xa, xb = max(0, x0), min(cfg.width, x0 + FAR[0])
            if xa < xb:
                y[y0 : y0 + FAR[1], xa:xb] = texture[:, xa - x0 : xb - x0]
        if det.should_analyse(t):
            out.append((t, det.update(y, t)))
    return out


def test_far_walker_is_below_the_minimum_area() -> None:
    assert FAR[0] * FAR[1] < 0.5 * MotionConfig().min_area * 640 * 360


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_far_small_walker_is_found_at_defaults(seed: int) -> None:
    results = _far_scene("walk", seed)
    starts = _events(results)
    assert len(starts) == 1
    assert FAR_AT_S < starts[0] < FAR_AT_S + 2.0  # within 2 s of appearing
    t, first = next((t, r) for t, r in results if r.motion)
    lead = -FAR[0] + (t - FAR_AT_S) * 40
    assert any(x <= lead + FAR[0] + 8 and lead - 8 <= x + w for x, _, w, _ in first.boxes)


@pytest.mark.parametrize("fps", [10, 25])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_far_small_walker_starts_an_event_within_half_a_second(fps: int, seed: int) -> None:
    # Stream time, not wall time. Its centre is inside the image from FAR_AT_S + 0.1 s (it
    # walks in from x = -8 at 40 px/s). At the regular 5 analyses a second its 5 analyses
    # take 0.8 s (a start near FAR_AT_S + 1.0 s); followed on early frames they take 0.4 s.
    results = _far_scene("walk", seed, fps)
    starts = _events(results)
    assert len(starts) == 1
    assert starts[0] - (FAR_AT_S + 0.1) <= 0.55
    # ...for a few analyses more, not a higher rate: 12 s at 5 a second is 60.
    assert len(results) <= 60 + 5


@pytest.mark.parametrize("fps", [10, 25])
@pytest.mark.parametrize("mover", ["blink", "jitter", "appear"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_small_region_that_does_not_walk_is_not_motion(mover: str, seed: int, fps: int) -> None:
    results = _far_scene(mover, seed, fps)
    assert not any(r.motion for _, r in results)
    # Early analyses for small regions are rationed: flicker cannot raise the rate for long.
    assert len(results) <= 60 + 6


def test_vtest_distant_entry_at_frame_170_is_found() -> None:
    # The distant figure entering at the top-left edge (24x36 px of 768x576, ~0.2% as a
    # box and less as a silhouette): within 2 s a box lies on it.
    results = _run_file(_footage("vtest.avi"))
    x, y, w, h = 0, 108, 24, 36
    hits = [
        t
        for t, r in results
        if 17.0 - 0.05 <= t <= 19.0
        and r.motion
        and any(
            bx < x + w + 24 and x - 24 < bx + bw and by < y + h + 24 and y - 24 < by + bh
            for bx, by, bw, bh in r.boxes
        )
    ]
    assert hits


@pytest.mark.parametrize("fps", [10, 25])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_walker_starts_an_event_sooner_than_three_analysis_periods(fps: int, seed: int) -> None:
    # Stream time, not wall time. Seen first at the analysis 0.2 s after it enters, the
    # walker is re-checked on early frames instead of two more analysis periods later
    # (which put the start at 0.6 s): 0.4 s at 10 fps, 0.44 s at 25 fps.
    cfg = _scene("object", seed=seed, fps=fps, duration_s=8, enter_at_s=5)
    results = _run_scene(cfg)
    starts = _events(results)
    assert len(starts) == 1
    assert 5.0 < starts[0] <= 5.45
    # ...at the cost of an analysis or two, not a higher rate.
    assert len(results) <= 5 * 8 + 3


def test_a_still_scene_is_analysed_at_the_configured_rate() -> None:
    results = _run_scene(_scene("static", fps=25, duration_s=8))
    assert len(results) == 40


# A near walker: 36x108 px on 640x360 is 1.7% of the image, well above the minimum area.
NEAR = (36, 108)


@pytest.mark.parametrize("fps", [10, 25])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_walker_coming_in_at_the_border_starts_an_event_within_a_quarter_second(
    fps: int, side: str, seed: int
) -> None:
    # Stream time, not wall time. While it is half in view its centre moves at half its
    # speed (90 px/s, under a body height a second) and its area keeps growing; measured
    # by its leading edge it has moved far enough after 0.2 s. Measured by its centre it
    # took the regular 0.4 s.
    cfg = _scene("static", seed=seed, fps=fps, duration_s=9)
    rng = np.random.default_rng(seed)
    texture = rng.integers(20, 60, (NEAR[1], NEAR[0])).astype(np.uint8)
    det = MotionDetector(MotionConfig(), cfg.width, cfg.height)
    at, speed = 5.0, 90.0
    results = []
    for t, rgb in render_scene(cfg):
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if t >= at:
            run = round((t - at) * speed)
            x0 = run - NEAR[0] if side == "left" else cfg.width - run
            xa, xb = max(0, x0), min(cfg.width, x0 + NEAR[0])
            if xa < xb:
                y[150 : 150 + NEAR[1], xa:xb] = texture[:, xa - x0 : xb - x0]
        if det.should_analyse(t):
            results.append((t, det.update(y, t)))
    starts = _events(results)
    assert len(starts) == 1
    entered = at + NEAR[0] / 2 / speed  # its centre is inside the image
    assert entered < starts[0] <= entered + 0.25
    assert len(results) <= 5 * 9 + 3  # an analysis or two more, not a higher rate


def _gusty_clump(seed: int) -> list[tuple[float, np.ndarray]]:
    """10 fps, 640x360, 6 s: a textured background; from 1 s a clump of leaves (48x48, its
    own texture, well above ``min_area``) that a gust shifts 3 px every 0.6 s and that
    holds still in between, as a displaced clump of a tree does between gusts."""
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.uniform(60, 120, (360, 640)).astype(np.float32), (0, 0), 2)
    blocks = np.random.default_rng(seed + 100).uniform(150, 230, (8, 8)).astype(np.float32)
    leaves = cv2.resize(blocks, (48, 48), interpolation=cv2.INTER_NEAREST)
    frames = []
    for i in range(60):
        t = i / 10
        img = bg.copy()
        if t >= 1.0:
            x = 300 + 3 * int((t - 1.0 + 1e-9) // 0.6)
            img[150:198, x : x + 48] = leaves
        img += rng.normal(0.0, 2.0, img.shape)
        frames.append((t, np.clip(img, 0, 255).astype(np.uint8)))
    return frames


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_large_region_that_holds_still_between_gusts_is_not_motion(seed: int) -> None:
    """A large region that has persisted in place but stood still at most of its analyses
    (it moves at one in three) starts no event: a walker moves at every analysis."""
    det = MotionDetector(MotionConfig(), 640, 360)
    results = [(t, det.update(f, t)) for t, f in _gusty_clump(seed) if det.should_analyse(t)]
    assert _events(results) == []
