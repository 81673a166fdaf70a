"""A labelled set for tuning motion detection: real walkers on real backgrounds.

Why: vtest.avi has 17 entries and tree.avi one hand, too few to tune a detector without
fitting it to them. This module composites many labelled walkers, deterministically from a
seed, so the detector can be tuned on one half (`TUNING_SEEDS`) and its figures published
on the other (`HELD_OUT_SEEDS`), which is never looked at while tuning.

What a clip is (640x480 grey, 10 fps, luma only: the detector sees only luma):

* background, by seed (tree for seeds 0 and 1 mod 5, so each half has the same share):
  the empty street of vtest.avi (a per-pixel temporal median of its
  frames, which removes the pedestrians), or tree.avi's first 23 s (a tree swaying in
  wind, real frames at their own ~2.3 fps variable rate, played forwards and backwards so
  the loop has no jump), both resized to 640x480;
* walkers: real person cut-outs from vtest.avi (foreground of a frame against the median
  background, kept where a blob is person-shaped and away from the border), scaled so their
  bounding box covers 0.1% to 3% of the image, entering from the left or right edge at a
  random height and walking across at 0.5 to 1.5 body heights a second (a far walker moves
  few pixels a second), with a 1 px step bob; one walker at a time, 4 to 8 s apart, 0 to 3
  per clip;
* nuisances, each drawn per clip: lights switching (a global gain step of x0.7 or x1.4
  over 0.2 s), exposure steps (gain x0.9..1.1 with an offset and clipping, in one frame),
  rain (short bright streaks at new random places every frame plus sensor noise sigma 4),
  headlights (a soft pool of light, up to +35%, sweeping across the lower half in 1.5 to
  3 s), and the tree's swaying when the background is tree.avi. Every clip has sensor noise.

Labels: for each walker, the first and last frame in which its centre is inside the image
(a walker half in view is "in"; this is the frame "the walker enters"). Latency is measured
from the entry frame's time.

Cut-outs and backgrounds are cached in the temp dir (keyed by `VERSION`), so after the
first run a clip costs only its compositing.

Run alone to print the set's summary: .venv/bin/python bench/motion_set.py
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VERSION = 1
WIDTH, HEIGHT, FPS = 640, 480, 10.0
TUNING_SEEDS = range(24)
HELD_OUT_SEEDS = range(1000, 1024)
TREE_UNTIL_S = 23.0  # tree.avi: a hand waves in front of the lens from ~23.1 s
SIZES = (0.001, 0.0015, 0.002, 0.004, 0.01, 0.03)  # walker box area / image area


@dataclass
class Walker:
    cutout: int
    area: float
    y: float  # feet line, fraction of the height
    direction: int  # +1: from the left edge, -1: from the right
    speed_hps: float  # body heights per second
    start_s: float
    enter_frame: int = 0
    leave_frame: int = 0


@dataclass
class Clip:
    seed: int
    background: str  # "street" | "tree"
    duration_s: float
    walkers: list[Walker]
    nuisances: list[str] = field(default_factory=list)
    render: Callable[[int], np.ndarray] | None = None  # frame index -> HxW uint8
    sprites: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # grey, alpha

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        assert self.render is not None
        for i in range(round(self.duration_s * FPS)):
            yield i / FPS, self.render(i)

    def truth(self) -> list[tuple[float, float]]:
        return [(w.enter_frame / FPS, w.leave_frame / FPS) for w in self.walkers]


def _cache() -> Path:
    d = Path(tempfile.gettempdir()) / f"doorwarden-motion-set-v{VERSION}"
    d.mkdir(exist_ok=True)
    return d


def _grey_frames(path: Path) -> tuple[list[float], list[np.ndarray]]:
    times, frames = [], []
    with av.open(str(path)) as c:
        for f in c.decode(c.streams.video[0]):
            times.append(float(f.time or 0.0))
            frames.append(f.to_ndarray(format="gray"))
    return times, frames


@dataclass
class Assets:
    street: np.ndarray  # HxW uint8: vtest.avi without its pedestrians
    tree: np.ndarray  # NxHxW uint8: tree.avi's frames before the hand
    tree_t: np.ndarray  # their times (s)
    cutouts: list[tuple[np.ndarray, np.ndarray]]  # (grey, mask 0/255) per walker


_ASSETS: list[Assets] = []


def _assets() -> Assets:
    """Street background, tree frames (+ times) and walker cut-outs, built once and cached."""
    if _ASSETS:
        return _ASSETS[0]
    path = _cache() / "assets.npz"
    if not path.exists():
        _build_assets(path)
    z = np.load(path, allow_pickle=False)
    n = int(z["n_cutouts"])
    cutouts = [(z[f"c{i}"], z[f"m{i}"]) for i in range(n)]
    _ASSETS.append(Assets(z["street"], z["tree"], z["tree_t"], cutouts))
    return _ASSETS[0]


def _build_assets(path: Path) -> None:
    _, vt = _grey_frames(DATA / "vtest.avi")
    median: np.ndarray = np.median(np.stack(vt[::8]), axis=0).astype(np.uint8)
    arrays: dict[str, np.ndarray] = {}
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    k9 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    for idx in range(20, len(vt), 37):
        raw = (cv2.absdiff(vt[idx], median) > 30).astype(np.uint8) * 255
        fg = cv2.morphologyEx(cv2.morphologyEx(raw, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k9)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(fg)
        for j in range(1, n):
            x, y, w, h, a = stats[j].tolist()
            if not (70 <= h <= 200 and 1.8 <= h / max(1, w) <= 4.0 and a > 0.45 * w * h):
                continue  # not person-shaped
            if x < 8 or y < 8 or x + w > 760 or y + h > 568:
                continue  # cut by the border
            i = len(arrays) // 2
            arrays[f"c{i}"] = vt[idx][y : y + h, x : x + w].copy()
            arrays[f"m{i}"] = (lab[y : y + h, x : x + w] == j).astype(np.uint8) * 255
            break
        if len(arrays) >= 24:
            break
    n_cutouts = len(arrays) // 2
    tt, tf = _grey_frames(DATA / "tree.avi")
    keep = [i for i, t in enumerate(tt) if t < TREE_UNTIL_S]
    arrays["tree"] = np.stack(
        [cv2.resize(tf[i], (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR) for i in keep]
    )
    arrays["tree_t"] = np.array([tt[i] for i in keep])
    arrays["street"] = cv2.resize(median, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    arrays["n_cutouts"] = np.array(n_cutouts)
    np.savez(path, **arrays)  # type: ignore[arg-type]


def _walker_sprite(
    cut: tuple[np.ndarray, np.ndarray], area: float, direction: int
) -> tuple[np.ndarray, np.ndarray]:
    img, mask = cut
    h0, w0 = img.shape
    scale = math.sqrt(area * WIDTH * HEIGHT / (w0 * h0))
    w, h = max(2, round(w0 * scale)), max(4, round(h0 * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    img = cv2.resize(img, (w, h), interpolation=interp).astype(np.float32)
    alpha = cv2.resize(mask, (w, h), interpolation=interp).astype(np.float32) / 255.0
    if direction < 0:
        img, alpha = img[:, ::-1], alpha[:, ::-1]
    return img, alpha


def walker_pos(w: Walker, sprite_w: int, sprite_h: int, t: float) -> tuple[float, float]:
    """Top-left corner of the walker at time t (x may be off-image)."""
    dx = (t - w.start_s) * w.speed_hps * sprite_h
    x = -sprite_w + dx if w.direction > 0 else WIDTH - dx
    bob = 1.0 if int((t - w.start_s) * 4) % 2 else 0.0
    return x, w.y * HEIGHT - sprite_h - bob


def make_clip(seed: int) -> Clip:
    """The clip for `seed`: same seed, same frames and labels, on every machine."""
    rng = np.random.default_rng(seed)
    assets = _assets()
    cutouts = assets.cutouts
    background = "tree" if seed % 5 < 2 else "street"  # 40% in each half, by construction
    walkers: list[Walker] = []
    t = float(rng.uniform(2.0, 5.0))
    sprites = []
    for _ in range(int(rng.integers(0, 4))):
        d = 1 if rng.random() < 0.5 else -1
        w = Walker(
            cutout=int(rng.integers(0, len(cutouts))),
            area=float(rng.choice(SIZES)),
            y=float(rng.uniform(0.3, 0.95)),
            direction=d,
            speed_hps=float(rng.uniform(0.5, 1.5)),
            start_s=t,
        )
        img, alpha = _walker_sprite(cutouts[w.cutout], w.area, d)
        sh, sw = img.shape
        w.y = max(w.y, (sh + 2) / HEIGHT)
        w.speed_hps = max(w.speed_hps, (WIDTH + sw) / sh / 25.0)  # across in at most 25 s
        cross_s = (WIDTH + sw) / (w.speed_hps * sh)
        # Entry/leave: the frames in which the centre is inside the image.
        frames = np.arange(math.floor(t * FPS), math.ceil((t + cross_s) * FPS) + 1)
        centres = [walker_pos(w, sw, sh, f / FPS)[0] + sw / 2 for f in frames]
        inside = [int(f) for f, c in zip(frames, centres, strict=True) if 0 <= c < WIDTH]
        w.enter_frame, w.leave_frame = inside[0], inside[-1]
        walkers.append(w)
        sprites.append((img, alpha))
        t += cross_s + float(rng.uniform(4.0, 8.0))
    duration = max(t + 2.0, 12.0)
    nuisances = [n for n in ("lights", "exposure", "rain", "headlights") if rng.random() < 0.35]
    if background == "tree":
        nuisances.append("vegetation")
    lights_at = float(rng.uniform(1.0, duration - 1.0))
    lights_gain = 1.4 if rng.random() < 0.5 else 0.7
    exposure = sorted(float(x) for x in rng.uniform(1.0, duration, 3))
    exposure_gain = [(float(rng.uniform(0.9, 1.1)), float(rng.uniform(-8, 8))) for _ in exposure]
    head = [
        (
            float(rng.uniform(1.0, duration - 3.0)),
            float(rng.uniform(1.5, 3.0)),
            1 if rng.random() < 0.5 else -1,
        )
        for _ in range(int(rng.integers(1, 3)))
    ]
    noise_sigma = 4.0 if "rain" in nuisances else float(rng.uniform(1.5, 3.0))
    street = assets.street.astype(np.float32)
    tree, tree_t = assets.tree, assets.tree_t
    loop = float(tree_t[-1])
    tree_phase = float(rng.uniform(0.0, 2 * loop))  # each clip starts elsewhere in the loop
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    # Noise frames are cut at random offsets from a few larger fields (cheap, still random).
    bank = rng.normal(0.0, noise_sigma, (3, HEIGHT + 32, WIDTH + 32)).astype(np.float32)

    def render(i: int) -> np.ndarray:
        t = i / FPS
        frng = np.random.default_rng((seed, i))
        if background == "tree":
            phase = (t + tree_phase) % (2 * loop)
            tl = phase if phase <= loop else 2 * loop - phase
            img = tree[int(np.searchsorted(tree_t, tl, side="right")) - 1].astype(np.float32)
        else:
            img = street.copy()
        for w, (spr, alpha) in zip(walkers, sprites, strict=True):
            sh, sw = spr.shape
            x, y = walker_pos(w, sw, sh, t)
            xi, yi = round(x), round(y)
            x0, x1 = max(0, xi), min(WIDTH, xi + sw)
            y0, y1 = max(0, yi), min(HEIGHT, yi + sh)
            if x0 >= x1 or y0 >= y1 or t < w.start_s:
                continue
            a = alpha[y0 - yi : y1 - yi, x0 - xi : x1 - xi]
            s = spr[y0 - yi : y1 - yi, x0 - xi : x1 - xi]
            img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a) + s * a
        if "headlights" in nuisances:
            for start, dur, d in head:
                if start <= t <= start + dur:
                    p = (t - start) / dur
                    cx = (p if d > 0 else 1 - p) * (WIDTH * 1.4) - WIDTH * 0.2
                    pool = np.exp(
                        -(
                            ((xx - cx) / (WIDTH / 7)) ** 2
                            + ((yy - HEIGHT * 0.8) / (HEIGHT / 8)) ** 2
                        )
                    )
                    img *= 1.0 + 0.35 * pool
        if "rain" in nuisances:
            streaks = np.zeros((HEIGHT, WIDTH), np.float32)
            for _ in range(60):
                x, y = int(frng.integers(0, WIDTH)), int(frng.integers(0, HEIGHT))
                ln = int(frng.integers(8, 20))
                cv2.line(streaks, (x, y), (x + ln // 5, y + ln), 40.0, 1)
            img += streaks
        if "lights" in nuisances and t >= lights_at:
            img *= 1.0 + (lights_gain - 1.0) * min(1.0, (t - lights_at) / 0.2)
        if "exposure" in nuisances:
            for at, (g, off) in zip(exposure, exposure_gain, strict=True):
                if t >= at:
                    img = img * g + off
        k, ox, oy = (int(v) for v in frng.integers(0, (3, 32, 32)))
        img += bank[k, oy : oy + HEIGHT, ox : ox + WIDTH]
        out: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
        return out

    return Clip(seed, background, duration, walkers, nuisances, render, sprites)


def main() -> None:
    for name, seeds in (("tuning", TUNING_SEEDS), ("held-out", HELD_OUT_SEEDS)):
        clips = [make_clip(s) for s in seeds]
        n = sum(len(c.walkers) for c in clips)
        hours = sum(c.duration_s for c in clips) / 3600
        print(f"{name}: {len(clips)} clips, {n} walkers, {hours * 60:.1f} min")
        for c in clips:
            sizes = ",".join(f"{w.area * 100:g}%" for w in c.walkers)
            print(
                f"  seed {c.seed:>4} {c.background:<6} {c.duration_s:5.1f}s [{sizes}] {c.nuisances}"
            )


if __name__ == "__main__":
    main()
