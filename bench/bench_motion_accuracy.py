"""Event-level accuracy of motion detection on labelled real and synthetic footage.

Labels
------
* vtest.avi (768x576, 10 fps, 79.4 s, pedestrians): people are in view for the whole
  video (a median-background foreground pass finds 2-9 person-sized blobs in every second),
  so the "people present" interval is [0, 79.4]. Entries: a median-background pass proposed
  every person-sized foreground blob that appears at the image border where none was in
  the previous 2 s; each proposal was checked by eye on a contact sheet of the frames, and
  the two tiny ambiguous ones (frames 114 and 373) were dropped. `VTEST_ENTRIES` lists
  (frame, box in source pixels). An entry counts as detected when, within 2 s of its frame,
  the detector is in the motion state with a box overlapping the entry box (grown by
  24 px); latency is from the entry frame to that analysis.
* tree.avi (320x240, ~2.3 fps VFR, 29.5 s): a tree in wind, nothing else, until frame 53
  (23.1 s), when a hand waves in front of the lens until the end (checked by eye). The hand
  is one real event; every event that starts before 23.1 s is a false positive. With the
  tree as an ignore area (everything right of the window frame) the hand is inside the
  ignored area too, so no event at all is expected.
* synthetic (640x360, 10 fps, 10 s, seeds 0-4): "object" has one real event (ground truth
  from synthetic.ground_truth); "lights", "noise", "sunset", "static" have none.
* the labelled set (bench/motion_set.py): real walker cut-outs of 0.1% to 3% of the image
  composited onto the empty vtest.avi street and the swaying tree of tree.avi, with lights,
  exposure steps, rain and headlights; labels are each walker's entry and leave frames.
  It has two halves: the tuning half (seeds 0-23) was used to tune the detector; the
  held-out half (seeds 1000-1023) was not, but its figures were seen while the detector
  was worked on, so a third, fresh half (seeds 2000-2023, `FRESH_SEEDS`: the same
  generator, and the same share of tree backgrounds, which motion_set assigns by seed
  mod 5) is kept for a change's final check; its row is the one to quote. A walker is
  found when a detected event overlaps [entry, leave]; its latency is from the entry frame
  (the first in which its centre is inside the image) to the event's start, or, when an
  event was already running, to the first analysis in the event with a box on it. An event
  is correct when it overlaps a walker's interval extended by 1.5 s (the hysteresis end);
  false events per hour count the others over the half's total duration. Walkers under
  0.2% of the image (below the default minimum area) are also reported apart, and
  analyses/s is the analysed frames per second of footage (the configured 5 plus the
  detector's early re-checks of regions awaiting confirmation). False events are also
  counted by cause (`false_event_cause`: a headlight pool on, or a light or exposure
  step, in the 2 s before the event, else rain, else the tree).

Event precision = detected events that overlap a real event / all detected events; recall =
real events with an overlapping detected event (vtest: entries detected as above) / all.

Run: .venv/bin/python bench/bench_motion_accuracy.py
"""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py`: bench/ only

import av
import cv2
import numpy as np
from bench import motion_set

from doorwarden.agent.analysis.motion import MotionDetector, MotionResult, luma
from doorwarden.agent.capture.synthetic import ground_truth, render_scene
from doorwarden.agent.config.models import MotionConfig, Polygon, SyntheticSource

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TREE_IGNORE: Polygon = [(0.12, 0.0), (1.0, 0.0), (1.0, 1.0), (0.1, 1.0)]
TREE_HAND_S = 23.1
VTEST_ENTRIES: list[tuple[int, tuple[int, int, int, int]]] = [
    (10, (744, 320, 24, 92)),
    (39, (752, 308, 16, 96)),
    (170, (0, 108, 24, 36)),
    (204, (724, 280, 44, 88)),
    (218, (0, 144, 16, 52)),
    (279, (4, 176, 32, 68)),
    (361, (700, 240, 68, 100)),
    (395, (752, 300, 16, 92)),
    (420, (752, 300, 16, 92)),
    (460, (748, 356, 20, 96)),
    (501, (732, 280, 36, 296)),
    (570, (744, 248, 24, 100)),
    (606, (0, 192, 12, 48)),
    (611, (720, 248, 44, 84)),
    (655, (732, 332, 36, 92)),
    (690, (748, 244, 20, 76)),
    (742, (0, 172, 28, 64)),
]
Results = list[tuple[float, MotionResult]]
SMALL_WALKER = 0.002  # walkers whose box is under the default minimum area, reported apart
# Never looked at while tuning: run once per change, at the end (seed mod 5 picks the
# background, so starting at a multiple of 5 keeps the tuning half's share of trees).
FRESH_SEEDS = range(2000, 2024)


def run_file(path: Path, motion: MotionConfig) -> Results:
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        det = MotionDetector(motion, stream.width, stream.height)
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if det.should_analyse(t):
                out.append((t, det.update(luma(frame), t)))
    return out


def run_scene(cfg: SyntheticSource, motion: MotionConfig) -> Results:
    det = MotionDetector(motion, cfg.width, cfg.height)
    out = []
    for t, rgb in render_scene(cfg):
        if det.should_analyse(t):
            out.append((t, det.update(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), t)))
    return out


def events(results: Results) -> list[tuple[float, float]]:
    out, start = [], None
    for t, r in results:
        if r.motion and start is None:
            start = t
        elif not r.motion and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, results[-1][0]))
    return out


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], grow: int) -> bool:
    return (
        a[0] - grow < b[0] + b[2]
        and b[0] < a[0] + a[2] + grow
        and a[1] - grow < b[1] + b[3]
        and b[1] < a[1] + a[3] + grow
    )


class Tally:
    def __init__(self) -> None:
        self.true_events = self.found = self.detected = self.correct = 0
        self.latencies: list[float] = []

    def line(self, label: str) -> str:
        p = self.correct / self.detected if self.detected else 1.0
        r = self.found / self.true_events if self.true_events else float("nan")
        lat = f"{statistics.median(self.latencies):.2f}" if self.latencies else "-"
        worst = f"{max(self.latencies):.2f}" if self.latencies else "-"
        return (
            f"{label:<34} {self.true_events:>5} {self.detected:>8} {p:>9.2f} {r:>7.2f} "
            f"{lat:>8} {worst:>8}"
        )


def score_intervals(tally: Tally, results: Results, truth: list[tuple[float, float]]) -> None:
    detected = events(results)
    tally.true_events += len(truth)
    tally.detected += len(detected)
    tally.correct += sum(any(s <= te and ts <= e for ts, te in truth) for s, e in detected)
    for ts, te in truth:
        starts = [s for s, e in detected if s <= te and ts <= e]
        if starts:
            tally.found += 1
            tally.latencies.append(max(0.0, min(starts) - ts))


def score_vtest(results: Results) -> Tally:
    tally = Tally()
    detected = events(results)
    tally.detected, tally.true_events = len(detected), len(VTEST_ENTRIES)
    tally.correct = len(detected)  # people are in view for the whole video
    for frame, box in VTEST_ENTRIES:
        t0 = frame / 10.0
        hit = next(
            (
                t
                for t, r in results
                if t0 - 0.05 <= t <= t0 + 2.0
                and r.motion
                and any(_overlaps(b, box, 24) for b in r.boxes)
            ),
            None,
        )
        if hit is not None:
            tally.found += 1
            tally.latencies.append(hit - t0)
    return tally


def run_clip(clip: motion_set.Clip, motion: MotionConfig) -> Results:
    det = MotionDetector(motion, motion_set.WIDTH, motion_set.HEIGHT)
    assert clip.render is not None
    out = []
    for i in range(round(clip.duration_s * motion_set.FPS)):
        t = i / motion_set.FPS
        if det.should_analyse(t):
            out.append((t, det.update(clip.render(i), t)))
    return out


def _walker_box(clip: motion_set.Clip, w: motion_set.Walker, t: float) -> tuple[int, int, int, int]:
    sh, sw = clip.sprites[clip.walkers.index(w)][0].shape
    x, y = motion_set.walker_pos(w, sw, sh, t)
    return round(x), round(y), sw, sh


class SetTally(Tally):
    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.analyses = 0  # analysed frames: early re-checks (bursts) raise the rate a little
        self.small: list[float | None] = []  # latency per walker under 0.2%, None: missed
        self.causes: dict[str, int] = {}  # false events by the nuisance that caused them

    def small_line(self) -> str:
        found = sorted(x for x in self.small if x is not None)
        med = f"{statistics.median(found):.2f}" if found else "-"
        return (
            f"  of which under {SMALL_WALKER:.1%} of the image: {len(found)} of "
            f"{len(self.small)} found, latency median {med} s"
        )

    def causes_line(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.causes.items())) or "none"
        return f"  false events by cause: {parts}"

    def set_line(self, label: str) -> str:
        p = self.correct / self.detected if self.detected else 1.0
        r = self.found / self.true_events if self.true_events else float("nan")
        lat = sorted(self.latencies)
        med = f"{statistics.median(lat):.2f}" if lat else "-"
        p95 = f"{lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)]:.2f}" if lat else "-"
        fph = (self.detected - self.correct) / (self.seconds / 3600)
        return (
            f"{label:<34} {self.true_events:>5} {self.detected:>8} {p:>9.2f} {r:>7.2f} "
            f"{med:>8} {p95:>8}   false/h {fph:.1f}   analyses/s {self.analyses / self.seconds:.2f}"
        )


def score_clip(tally: SetTally, clip: motion_set.Clip, results: Results) -> None:
    detected = events(results)
    truth = clip.truth()
    tally.seconds += clip.duration_s
    tally.analyses += len(results)
    tally.true_events += len(truth)
    tally.detected += len(detected)
    tally.correct += sum(any(s <= te + 1.5 and ts <= e for ts, te in truth) for s, e in detected)
    for s, e in detected:
        if not any(s <= te + 1.5 and ts <= e for ts, te in truth):
            cause = false_event_cause(clip, s)
            tally.causes[cause] = tally.causes.get(cause, 0) + 1
    for w, (ts, te) in zip(clip.walkers, truth, strict=True):
        starts = [s for s, e in detected if s <= te and ts <= e]
        lat = _walker_latency(clip, w, results, starts, ts, te)
        if w.area < SMALL_WALKER:
            tally.small.append(lat)
        if lat is not None:
            tally.found += 1
            tally.latencies.append(lat)


def false_event_cause(clip: motion_set.Clip, start: float) -> str:
    """The nuisance that started a false event at `start` (s).

    Each timed nuisance's gain on the frame is the clip rendered with it over the clip
    rendered without it (its render reads `clip.nuisances`), at every half second of the
    2 s before the event. Headlights are the cause when a pool was on (over 1% of the
    pixels off the frame's median gain by 5%); a light switching or an exposure step when
    its median gain changed (the median: clipping at white leaves some pixels behind).
    Otherwise rain if the clip has rain, the tree if its background is tree.avi, else
    "other".
    """
    assert clip.render is not None
    i = round(start * motion_set.FPS)
    frames = range(max(0, i - round(2.0 * motion_set.FPS)), i + 1, round(motion_set.FPS / 2))
    for name in ("headlights", "lights", "exposure"):
        if name not in clip.nuisances:
            continue
        full = [clip.render(k).astype(np.float32) + 1.0 for k in frames]
        clip.nuisances.remove(name)
        try:
            bare = [clip.render(k).astype(np.float32) + 1.0 for k in frames]
        finally:
            clip.nuisances.append(name)
        gains = [f / b for f, b in zip(full, bare, strict=True)]
        medians = [float(np.median(g)) for g in gains]
        if name == "headlights":
            pairs = zip(gains, medians, strict=True)
            if max(float(np.mean(np.abs(g / m - 1.0) > 0.05)) for g, m in pairs) > 0.01:
                return name
        elif max(medians) - min(medians) > 0.005:
            return name
    if "rain" in clip.nuisances:
        return "rain"
    return "tree" if clip.background == "tree" else "other"


def _walker_latency(
    clip: motion_set.Clip,
    w: motion_set.Walker,
    results: Results,
    starts: list[float],
    ts: float,
    te: float,
) -> float | None:
    """Seconds from the walker's entry to the event it started, or when an event was
    already running, to the first box on it; None when no event overlaps it."""
    if not starts:
        return None
    start = min(starts)
    if start >= ts:
        return start - ts
    hit = next(
        (
            t
            for t, r in results
            if ts <= t <= te
            and r.motion
            and any(_overlaps(b, _walker_box(clip, w, t), 8) for b in r.boxes)
        ),
        te,
    )
    return hit - ts


def score_set(seeds: range, motion: MotionConfig) -> SetTally:
    tally = SetTally()
    for seed in seeds:
        clip = motion_set.make_clip(seed)
        score_clip(tally, clip, run_clip(clip, motion))
    return tally


def main() -> None:
    default = MotionConfig()
    print(
        f"{'case':<34} {'truth':>5} {'detected':>8} {'precision':>9} {'recall':>7} "
        f"{'lat med':>8} {'lat max':>8}"
    )
    vtest, tree = DATA / "vtest.avi", DATA / "tree.avi"
    if vtest.exists():
        print(score_vtest(run_file(vtest, default)).line("vtest.avi entries"))
    else:
        print(f"(skipped: {vtest} is missing)")
    if tree.exists():
        results = run_file(tree, default)
        tally = Tally()
        score_intervals(tally, results, [(TREE_HAND_S, results[-1][0])])
        false_tree = [s for s, _ in events(results) if s < TREE_HAND_S]
        print(tally.line("tree.avi (hand = the real event)"))
        print(f"  tree-only false events (default settings): {len(false_tree)}")
        ignored = events(run_file(tree, MotionConfig(ignore=[TREE_IGNORE])))
        print(f"  events with the tree as ignore area: {len(ignored)}")
    else:
        print(f"(skipped: {tree} is missing)")
    for scene in ("object", "lights", "noise", "sunset", "static"):
        tally = Tally()
        for seed in range(5):
            cfg = SyntheticSource(
                kind="synthetic", scene=scene, seed=seed, width=640, height=360, duration_s=10
            )
            score_intervals(tally, run_scene(cfg, default), ground_truth(cfg))
        print(tally.line(f"synthetic {scene} (5 seeds)"))
    print(
        f"{'labelled set':<34} {'truth':>5} {'detected':>8} {'precision':>9} {'recall':>7} "
        f"{'lat med':>8} {'lat p95':>8}"
    )
    if (DATA / "vtest.avi").exists() and tree.exists():
        for label, seeds in (
            ("tuning half (seeds 0-23)", motion_set.TUNING_SEEDS),
            ("held-out half (1000-1023)", motion_set.HELD_OUT_SEEDS),
            ("fresh held-out half (2000-2023)", FRESH_SEEDS),
        ):
            tally = score_set(seeds, default)
            print(tally.set_line(label))
            print(tally.small_line())
            print(tally.causes_line())
    else:
        print("(labelled set skipped: it is built from vtest.avi and tree.avi)")


if __name__ == "__main__":
    main()
