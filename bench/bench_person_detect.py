"""Person detection per clip: precision, recall and time per frame, for each detector.

What a "clip" is: a 2 s window of footage. The detector looks at frames sampled at 2 per
second (the rate the pipeline runs detection at, a few a second at most) and the window
counts as "person" when it reports a person on any of them -- what a person_only alert
decides on. Precision = windows flagged that really hold a person / all windows flagged;
recall = windows with a person that were flagged / all windows with a person.

Labelled footage (all of it real frames unless said otherwise):

* vtest.avi (768x576, 10 fps, 79.4 s): pedestrians are in view for the whole video. The
  motion bench's median-background pass finds 2-9 person-sized blobs in every second
  (bench_motion_accuracy.py), and a contact sheet of the middle frame of each of the 40
  windows was checked by eye: every one shows at least one walking person. All 39 full
  windows are positive.
* tree.avi (320x240, ~2.3 fps, 29.5 s): a tree in wind, then (from 23.1 s) a hand waving
  in front of the lens. No person: every window is negative (a detector firing on the
  hand is a false person).
* the motion set's clips (bench/motion_set.py, held-out seeds 1000-1007; 640x480 grey):
  the empty vtest.avi street (median background) or tree.avi's tree, with lights,
  exposure steps, rain and headlights, and 0-3 real person cut-outs from vtest.avi
  walking across. A window is positive when a walker's centre is in view during it,
  negative when no walker is; windows with a walker only partly in the window are
  positive too. The cut-outs are small (0.1-3% of the image), so this row shows how
  far-away people fare.
* synthetic scenes (capture/synthetic.py: a light switch, noise, sunset, a static
  scene; 640x360): no person, every window negative. The "object" scene is left out: its
  moving sprite is drawn as a stylised walker (head, coat, trousers), so neither label
  would be fair (NanoDet on a motion crop called it a person once at 0.55).

Two ways to run each detector:

* whole: on every sampled frame, the whole frame;
* motion: as the pipeline does -- only on sampled frames where the motion detector (its
  defaults) is in the motion state, and only on a crop around the motion boxes
  (`detect_regions`). A window with no motion at its sampled frames is "no person".

Times are the median milliseconds of one detector call on this run's frames; detectors
alternate frame by frame so both see the same machine load. Speeds are only comparable
within one run (the machine is shared; read the ratio).

Run: .venv/bin/python bench/bench_person_detect.py [--quick]   (--quick: vtest + tree only)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py`: bench/ only

import av
import cv2
import numpy as np
from bench import motion_set

from doorwarden.agent.analysis.detect import HogPersonDetector, detect_regions
from doorwarden.agent.analysis.detection import Detector
from doorwarden.agent.analysis.motion import MotionDetector
from doorwarden.agent.analysis.nanodet import NanoDetDetector
from doorwarden.agent.capture.synthetic import render_scene
from doorwarden.agent.config.models import MotionConfig, SyntheticSource

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WINDOW_S = 2.0
SAMPLE_S = 0.5  # 2 detector runs a second
SET_SEEDS = range(1000, 1008)
TREE_HAND_S = 23.1

# A labelled frame: time, RGB, truth for its window is decided by `positive(window)`.
Frame = tuple[float, np.ndarray]


@dataclass
class Source:
    name: str
    frames: Callable[[], Iterator[Frame]]  # every decoded frame, in order
    positive: Callable[[int], bool]  # window index -> a person is in it
    duration_s: float


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, truth: bool, flagged: bool) -> None:
        if truth and flagged:
            self.tp += 1
        elif truth:
            self.fn += 1
        elif flagged:
            self.fp += 1
        else:
            self.tn += 1

    def merge(self, other: Tally) -> None:
        self.tp, self.fp = self.tp + other.tp, self.fp + other.fp
        self.fn, self.tn = self.fn + other.fn, self.tn + other.tn
        self.ms += other.ms

    def line(self) -> str:
        flagged, real = self.tp + self.fp, self.tp + self.fn
        precision = f"{self.tp / flagged:.2f}" if flagged else "  - "
        recall = f"{self.tp / real:.2f}" if real else "  - "
        ms = f"{statistics.median(self.ms):6.1f}" if self.ms else "     -"
        return (
            f"P {precision}  R {recall}  (TP {self.tp:3d} FP {self.fp:3d} FN {self.fn:3d} "
            f"TN {self.tn:3d})  {ms} ms/call ({len(self.ms)} calls)"
        )


def _video(path: Path) -> Iterator[Frame]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            yield float(frame.time or 0.0), frame.to_ndarray(format="rgb24")


def _grey_to_rgb(frames: Iterator[tuple[float, np.ndarray]]) -> Iterator[Frame]:
    for t, grey in frames:
        yield t, cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def _clip_frames(clip: motion_set.Clip) -> Iterator[Frame]:
    return _grey_to_rgb(clip.frames())


def _never(_window: int) -> bool:
    return False


def _always(_window: int) -> bool:
    return True


def sources(quick: bool) -> list[Source]:
    out: list[Source] = []
    vtest, tree = DATA / "vtest.avi", DATA / "tree.avi"
    if vtest.exists():
        out.append(Source("vtest.avi", partial(_video, vtest), _always, 79.4))
    if tree.exists():
        out.append(Source("tree.avi", partial(_video, tree), _never, 29.5))
    if quick:
        return out
    for seed in SET_SEEDS:
        clip = motion_set.make_clip(seed)
        truth = clip.truth()

        def positive(w: int, truth: list[tuple[float, float]] = truth) -> bool:
            start, end = w * WINDOW_S, (w + 1) * WINDOW_S
            return any(a < end and start <= b for a, b in truth)

        out.append(
            Source(
                f"set {seed} ({clip.background}, {len(clip.walkers)} walkers)",
                partial(_clip_frames, clip),
                positive,
                clip.duration_s,
            )
        )
    for scene in ("lights", "noise", "sunset", "static"):
        cfg = SyntheticSource(kind="synthetic", scene=scene, duration_s=10.0, seed=7)
        out.append(
            Source(
                f"synthetic {scene}",
                partial(render_scene, cfg),
                _never,
                cfg.duration_s,
            )
        )
    return out


def run_source(source: Source, detectors: dict[str, Detector]) -> dict[tuple[str, str], Tally]:
    """Per (detector, mode) tally over the source's full 2 s windows."""
    windows = int(source.duration_s // WINDOW_S)
    flagged: dict[tuple[str, str], set[int]] = {(n, m): set() for n in detectors for m in MODES}
    tallies = {key: Tally() for key in flagged}
    motion: MotionDetector | None = None
    next_sample = 0.0
    boxes: list[tuple[int, int, int, int]] = []
    in_motion = False
    for t, rgb in source.frames():
        if motion is None:
            motion = MotionDetector(MotionConfig(), rgb.shape[1], rgb.shape[0])
        if motion.should_analyse(t):
            result = motion.update(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), t)
            in_motion, boxes = result.motion, result.boxes
        if t + 1e-6 < next_sample:
            continue
        next_sample = t + SAMPLE_S
        window = int(t // WINDOW_S)
        if window >= windows:
            break
        for name, detector in detectors.items():
            start = time.perf_counter()
            found = detector.detect(rgb)
            tallies[(name, "whole")].ms.append((time.perf_counter() - start) * 1000)
            if any(d.label == "person" for d in found):
                flagged[(name, "whole")].add(window)
            if in_motion:
                start = time.perf_counter()
                found = detect_regions(detector, rgb, boxes)
                tallies[(name, "motion")].ms.append((time.perf_counter() - start) * 1000)
                if any(d.label == "person" for d in found):
                    flagged[(name, "motion")].add(window)
    for key, tally in tallies.items():
        for w in range(windows):
            tally.add(source.positive(w), w in flagged[key])
    return tallies


MODES = ("whole", "motion")


def main() -> None:
    quick = "--quick" in sys.argv
    detectors: dict[str, Detector] = {
        "nanodet": NanoDetDetector(0.5),
        "hog": HogPersonDetector(0.5),
    }
    totals = {(n, m): Tally() for n in detectors for m in MODES}
    groups: dict[str, dict[tuple[str, str], Tally]] = {}
    started = time.perf_counter()
    for source in sources(quick):
        tallies = run_source(source, detectors)
        group = source.name.split(" ")[0]
        for key, tally in tallies.items():
            totals[key].merge(tally)
            groups.setdefault(group, {k: Tally() for k in totals})[key].merge(tally)
        print(f"{source.name}:")
        for (name, mode), tally in tallies.items():
            print(f"  {name:8s} {mode:6s} {tally.line()}")
    print("\nby footage:")
    for group, tallies in groups.items():
        for (name, mode), tally in tallies.items():
            print(f"  {group:10s} {name:8s} {mode:6s} {tally.line()}")
    print("\nall windows:")
    for (name, mode), tally in totals.items():
        print(f"  {name:8s} {mode:6s} {tally.line()}")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
