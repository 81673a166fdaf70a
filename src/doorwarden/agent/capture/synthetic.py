"""Scripted synthetic scenes with known ground truth, for tests and benchmarks.

A scene is a textured static background (gradients and shapes, deterministic from the
seed) with mild sensor noise, plus one scripted event:

* ``static``: nothing happens;
* ``object``: a person-sized textured box enters from the left edge at ``enter_at_s`` and
  walks across the image in `CROSSING_S` seconds;
* ``lights``: the whole image brightens by ~35% over 0.2 s at ``enter_at_s``;
* ``noise``: heavy sensor noise (sigma ~8) and nothing else;
* ``sunset``: brightness falls ~50% linearly over the whole duration.

Only the ``object`` scene has something a motion detector should report; the others are
the false-positive traps.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from doorwarden.agent.config.models import SyntheticSource

CROSSING_S = 5.0  # a person walks past a doorbell camera's field of view in a few seconds
LIGHTS_GAIN = 1.35
LIGHTS_RAMP_S = 0.2
SUNSET_FLOOR = 0.5
_NOISE_PAD = 64  # noise frames are cut from a larger random field at a random offset
_NOISE_BANK = 3


def frame_count(cfg: SyntheticSource) -> int:
    return max(1, round(cfg.duration_s * cfg.fps))


def _object_size(cfg: SyntheticSource) -> tuple[int, int]:
    h = max(8, cfg.height // 6)
    return max(4, round(h * 0.4)), h


def ground_truth(cfg: SyntheticSource) -> list[tuple[float, float]]:
    """Intervals (start_s, end_s) during which a real object is in view."""
    if cfg.scene != "object" or cfg.enter_at_s >= cfg.duration_s:
        return []
    return [(cfg.enter_at_s, min(cfg.enter_at_s + CROSSING_S, cfg.duration_s))]


def _background(cfg: SyntheticSource) -> np.ndarray:
    """A float32 HxWx3 scene in 0..255: sky/ground gradients, walls, a door, a path."""
    rng = np.random.default_rng(cfg.seed)
    w, h = cfg.width, cfg.height
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    base = 70 + 80 * ys + 25 * xs  # light falls off towards the top-left
    img = np.repeat(base[:, :, None], 3, axis=2) * np.array([0.95, 1.0, 1.05], np.float32)
    for _ in range(12):  # shapes: windows, bins, plants; colours drawn from the seed
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 20, w // 4)), y0 + int(rng.integers(h // 20, h // 4))
        colour = tuple(float(c) for c in rng.uniform(30, 200, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
        else:
            cv2.circle(img, (x0, y0), max(2, (x1 - x0) // 2), colour, -1)
    # Low-frequency texture (brick, grass) so the image is not flat at analysis scale.
    tex = rng.normal(0, 12, (max(2, h // 8), max(2, w // 8), 1)).astype(np.float32)
    img += cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None]
    out: np.ndarray = np.clip(img, 0, 255)
    return out


def _sprite(cfg: SyntheticSource) -> np.ndarray:
    """The walker: dark trousers, a patterned coat, a lighter head; float32 h x w x 3."""
    rng = np.random.default_rng(cfg.seed + 1)
    w, h = _object_size(cfg)
    body = np.empty((h, w, 3), np.float32)
    head = h // 6
    body[:head] = (190, 160, 140)
    body[head : h * 3 // 5] = (40, 60, 150)
    body[h * 3 // 5 :] = (35, 35, 45)
    body += rng.normal(0, 10, (h, w, 1)).astype(np.float32)
    return np.clip(body, 0, 255)


def _gain(cfg: SyntheticSource, t: float) -> float:
    if cfg.scene == "lights":
        ramp = min(max((t - cfg.enter_at_s) / LIGHTS_RAMP_S, 0.0), 1.0)
        return 1.0 + (LIGHTS_GAIN - 1.0) * ramp
    if cfg.scene == "sunset":
        return 1.0 - (1.0 - SUNSET_FLOOR) * min(t / cfg.duration_s, 1.0)
    return 1.0


def render_scene(cfg: SyntheticSource) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time_s, rgb24 HxWx3 uint8) for every frame of the scene."""
    rng = np.random.default_rng(cfg.seed + 2)
    w, h = cfg.width, cfg.height
    bg = _background(cfg)
    sprite = _sprite(cfg)
    sw, sh = sprite.shape[1], sprite.shape[0]
    speed = (w + sw) / CROSSING_S
    sigma = 8.0 if cfg.scene == "noise" else 2.0
    # Drawing fresh Gaussian noise for every pixel of every 1080p frame dominates the cost;
    # a random window into a few larger fields is as uncorrelated frame to frame.
    bank = [
        rng.normal(0, sigma, (h + _NOISE_PAD, w + _NOISE_PAD, 1)).astype(np.float32)
        for _ in range(_NOISE_BANK)
    ]
    top = int(h * 0.55)
    for i in range(frame_count(cfg)):
        t = i / cfg.fps
        img = bg * _gain(cfg, t) if cfg.scene in ("lights", "sunset") else bg.copy()
        if cfg.scene == "object" and t >= cfg.enter_at_s:
            right = round((t - cfg.enter_at_s) * speed)  # leading edge, from the left border
            x0, y0 = right - sw, top + round(2 * np.sin(t * 8))  # a slight walking bob
            sx0, sx1 = max(0, -x0), min(sw, w - x0)
            if sx0 < sx1 and y0 >= 0 and y0 + sh <= h:
                img[y0 : y0 + sh, x0 + sx0 : x0 + sx1] = sprite[:, sx0:sx1]
        dy, dx = (int(v) for v in rng.integers(0, _NOISE_PAD, 2))
        img += bank[i % _NOISE_BANK][dy : dy + h, dx : dx + w]
        yield t, np.clip(img, 0, 255).astype(np.uint8)


def encode_h264(cfg: SyntheticSource, path: Path, *, gop_s: float = 2.0) -> None:
    """Write the scene as H.264 (libx264, yuv420p) in MP4 with faststart.

    Keyframes fall exactly every `gop_s` seconds (scene-cut detection off), which tests of
    keyframe-aligned pre-roll rely on.
    """
    rate = Fraction(cfg.fps).limit_denominator(1001)
    gop = max(1, round(gop_s * cfg.fps))
    with av.open(str(path), "w", container_options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = cfg.width, cfg.height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.time_base = 1 / rate
        stream.options = {
            "preset": "veryfast",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        for i, (_, rgb) in enumerate(render_scene(cfg)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
