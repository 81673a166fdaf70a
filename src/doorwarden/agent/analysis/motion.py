"""Motion detection on a small grey copy of the analysed frames (the agent's hot path).

Per analysed frame (`MotionDetector.update`):

1. the luma plane (taken straight from the decoded frame, never converted to RGB) is
   downscaled to ``analysis_width`` with INTER_AREA and lightly blurred;
2. it is normalised to the background's mean brightness, so a cloud or a slow sunset
   (a global gain) does not read as change;
3. a jump in mean brightness of more than `ILLUMINATION_JUMP`, or more than
   `ILLUMINATION_FRACTION` of the analysed area changing at once, is an illumination event
   (a light switched on, the camera's exposure stepping): the background is re-seeded and
   nothing is reported for `ILLUMINATION_HOLD_S`;
4. |frame - background| above ``threshold`` (scaled by sensitivity) is "changed"; pixels
   that toggled between changed and unchanged many times recently (leaves, a flag, a tree in
   wind: a decayed toggle count above `FLICKER_TOGGLES`, a limit scaled down while less than
   `FLICKER_TAU_S` of history has been seen) are discounted, as are pixels outside
   the motion zones or inside ignore areas;
5. an opening drops speckle, a closing joins the parts of one body, and connected components
   of at least ``min_area`` (scaled by sensitivity) are the candidate regions; a region only
   counts if it overlaps a candidate of the previous analysis (it persists in place);
6. the background is a running average with a time constant in seconds (so it behaves the
   same at any analysis rate), updated more slowly under foreground so a person standing
   still is absorbed only after tens of seconds.

Hysteresis: motion starts after `start_frames` consecutive positive analyses (2 at the
default sensitivity, 1 at >= 0.75, 3 at <= 0.25) and ends after `END_FRAMES` (5, i.e. 1 s at
5 analyses a second) consecutive negative ones. Changes that flicker for a single analysis
never start an event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import av
import cv2
import numpy as np

from doorwarden.agent.config.models import MotionConfig, Polygon

# 8-bit formats whose first plane is the luma at full resolution.
_PLANAR_Y = frozenset(
    {"yuv420p", "yuvj420p", "nv12", "nv21", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray"}
)

BACKGROUND_TAU_S = 4.0  # a change slower than this (a shadow creeping) fades into the model
FOREGROUND_TAU_S = 30.0  # a person standing still is absorbed only after ~this long
FLICKER_TAU_S = 4.0  # how long a pixel's record of toggling is remembered
FLICKER_TOGGLES = 5.0  # a walker toggles a pixel a few times (arrive, texture, leave)
ILLUMINATION_JUMP = 0.12  # relative change of mean brightness between analyses
ILLUMINATION_FRACTION = 0.6
ILLUMINATION_HOLD_S = 1.0  # auto-exposure settles over several frames after a light change
END_FRAMES = 5
_MAX_DT_S = 2.0  # after a gap (reconnect) the models must not jump to fully adapted


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's Y plane as a 2-D uint8 array, without a colour conversion.

    For planar/semi-planar YUV the array is a view of the decoder's buffer (no copy): use
    it before the frame is released.
    """
    if frame.format.name in _PLANAR_Y:
        plane = frame.planes[0]
        buf: np.ndarray = np.frombuffer(memoryview(plane), np.uint8)
        return buf.reshape(plane.height, plane.line_size)[:, : plane.width]
    out: np.ndarray = frame.reformat(format="gray").to_ndarray()
    return out


@dataclass
class MotionResult:
    motion: bool  # the event state after hysteresis
    score: float  # fraction of the analysed area that changed in this frame
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x, y, w, h (source)


def _polygon_mask(polygons: list[Polygon], width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    pts = [
        np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in poly], np.int32)
        for poly in polygons
    ]
    if pts:
        cv2.fillPoly(mask, pts, 255)
    return mask


def _above(a: np.ndarray, level: float) -> np.ndarray:
    """uint8 mask, 255 where `a` > `level`."""
    return cv2.threshold(a, level, 255, cv2.THRESH_BINARY)[1].astype(np.uint8)


def _alpha(dt: float, tau: float) -> float:
    return 1.0 - math.exp(-min(max(dt, 0.0), _MAX_DT_S) / tau)


class MotionDetector:
    """Stateful motion detector for one camera; see the module docstring for the method."""

    def __init__(self, config: MotionConfig, width: int, height: int) -> None:
        self.config = config
        self.width, self.height = width, height
        self.aw = min(config.analysis_width, width)
        self.ah = max(16, round(height * self.aw / width))
        self._sx, self._sy = width / self.aw, height / self.ah
        s = config.sensitivity
        self.threshold = max(2.0, config.threshold * (1.5 - s))  # s=0: x1.5, s=1: x0.5
        area_scale = 4.0 ** (1.0 - 2.0 * s)  # s=0: x4, s=0.5: x1, s=1: x1/4
        valid = np.full((self.ah, self.aw), 255, np.uint8)
        if config.zones:
            valid = _polygon_mask(config.zones, self.aw, self.ah)
        if config.ignore:
            valid[_polygon_mask(config.ignore, self.aw, self.ah) > 0] = 0
        self._valid = valid
        self._valid_px = int(np.count_nonzero(valid))
        self.min_area_px = max(4.0, config.min_area * area_scale * self.aw * self.ah)
        self.start_frames = 1 if s >= 0.75 else (3 if s <= 0.25 else 2)
        k = max(3, round(self.aw / 160) * 2 + 1)  # kernels grow with the analysis size
        self._blur = (k, k)
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 2, k + 2))
        self._margin = k  # how far a region may move between analyses and still persist
        self._bg: np.ndarray | None = None
        self._bg_mean = 0.0
        self._flicker = np.zeros((self.ah, self.aw), np.float32)
        self._watched = 0.0  # seconds of toggle history the flicker counts hold
        self._ones = np.ones((self.ah, self.aw), np.float32)
        self._prev_changed = np.zeros((self.ah, self.aw), np.uint8)
        self._prev_regions: list[tuple[int, int, int, int]] = []
        self._last_t: float | None = None
        self._next_t: float | None = None
        self._hold_until = -math.inf
        self._positives = 0
        self._negatives = 0
        self.motion = False

    def should_analyse(self, t: float) -> bool:
        """True when the frame at `t` is due for analysis at ``analysis_fps``.

        Due times advance by exactly one period, so a stream whose rate is not a multiple of
        the analysis rate still averages ``analysis_fps``; after a gap they jump ahead
        instead of bursting.
        """
        period = 1.0 / self.config.analysis_fps
        if self._next_t is None:
            self._next_t = t + period
            return True
        if t < self._next_t - 1e-3:
            return False
        self._next_t += period
        if self._next_t <= t:
            self._next_t = t + period
        return True

    def _reseed(self, small: np.ndarray, hold_until: float) -> None:
        self._bg = small
        self._bg_mean = float(cv2.mean(small, self._valid)[0]) or 1.0
        self._prev_changed[:] = 0
        self._prev_regions = []
        self._hold_until = hold_until

    def update(self, y: np.ndarray, t: float) -> MotionResult:
        """Analyse the luma plane `y` (source resolution) of the frame at time `t` (s)."""
        dt = 0.0 if self._last_t is None else t - self._last_t
        self._last_t = t
        small = self._shrink(y)
        small = cv2.GaussianBlur(small, self._blur, 0).astype(np.float32)
        if self._bg is None:
            self._reseed(small, -math.inf)
            return self._decide(False, 0.0, [])
        if t < self._hold_until:  # exposure still settling: follow it, report nothing
            self._reseed(small, self._hold_until)
            return self._decide(False, 0.0, [], illumination=True)
        mean = float(cv2.mean(small, self._valid)[0]) or 1.0
        gain = self._bg_mean / mean
        if abs(gain - 1.0) > ILLUMINATION_JUMP:
            self._reseed(small, t + ILLUMINATION_HOLD_S)
            return self._decide(False, 0.0, [], illumination=True)
        norm = small * gain
        diff = cv2.absdiff(norm, self._bg)
        changed: np.ndarray = cv2.bitwise_and(_above(diff, self.threshold), self._valid)
        frac = cv2.countNonZero(changed) / max(1, self._valid_px)
        if frac > ILLUMINATION_FRACTION:
            self._reseed(small, t + ILLUMINATION_HOLD_S)
            return self._decide(False, 0.0, [], illumination=True)

        # Flicker: decayed count of on/off toggles per pixel.
        self._flicker *= math.exp(-min(max(dt, 0.0), _MAX_DT_S) / FLICKER_TAU_S)
        cv2.add(
            self._flicker,
            self._ones,
            dst=self._flicker,
            mask=cv2.compare(changed, self._prev_changed, cv2.CMP_NE),
        )
        self._prev_changed = changed
        # Dilated: a leaf that flickers here also sways over its neighbours.
        self._watched += min(max(dt, 0.0), _MAX_DT_S)
        flickery = cv2.dilate(_above(self._flicker, self._flicker_limit()), self._open)
        steady: np.ndarray = cv2.subtract(changed, flickery)
        steady = cv2.morphologyEx(steady, cv2.MORPH_OPEN, self._open)
        steady = cv2.morphologyEx(steady, cv2.MORPH_CLOSE, self._close)
        _, _, stats, _ = cv2.connectedComponentsWithStats(steady, connectivity=8)
        regions: list[tuple[int, int, int, int]] = []
        boxes: list[tuple[int, int, int, int]] = []
        area = 0
        m = self._margin
        for x, y0, w, h, a in stats[1:].tolist():
            if a < self.min_area_px:
                continue
            regions.append((x - m, y0 - m, x + w + m, y0 + h + m))
            # Persistence: the region must overlap where a region was at the last analysis.
            if not any(
                x < x1 and px < x + w and y0 < y1 and py < y0 + h
                for px, py, x1, y1 in self._prev_regions
            ):
                continue
            area += a
            boxes.append(self._to_source(x, y0, w, h))
        self._prev_regions = regions

        # The background learns slowly under foreground, so a loiterer is absorbed late.
        # It learns the raw frame, not the normalised one: normalising against the model and
        # then learning the result would let the model's brightness drift from the scene's.
        cv2.accumulateWeighted(
            small, self._bg, _alpha(dt, BACKGROUND_TAU_S), cv2.bitwise_not(changed)
        )
        cv2.accumulateWeighted(small, self._bg, _alpha(dt, FOREGROUND_TAU_S), changed)
        self._bg_mean = float(cv2.mean(self._bg, self._valid)[0]) or 1.0
        return self._decide(bool(boxes), area / max(1, self._valid_px), boxes)

    def _flicker_limit(self) -> float:
        """Toggle count above which a pixel is flickery, for the history seen so far.

        A pixel toggling at a steady rate r holds r * tau * (1 - exp(-watched / tau))
        toggles, so the limit grows by the same factor: the test is the same toggle *rate*
        from the first seconds on (a tree in wind is recognised right after start-up, not
        only after tau), never below 2 (one arrival and one departure).
        """
        filled = 1.0 - math.exp(-self._watched / FLICKER_TAU_S)
        return max(2.0, FLICKER_TOGGLES * filled)

    def _shrink(self, y: np.ndarray) -> np.ndarray:
        # INTER_AREA is fast only for small integer ratios (1080p -> 320 wide at 6x costs
        # ~1.2 ms, 7x the rest of the pipeline): sample every n-th pixel down to about twice
        # the target, average 2x2 blocks, then resize bilinearly by what remains (< 2x).
        # The blur that follows does the rest of the anti-aliasing.
        f = min(y.shape[1] // self.aw, y.shape[0] // self.ah)
        if f >= 4:
            y = y[:: f // 2, :: f // 2]
            f = min(y.shape[1] // self.aw, y.shape[0] // self.ah)
        if f > 1 and (y.shape[1] != self.aw * f or y.shape[0] != self.ah * f):
            y = cv2.resize(y, (y.shape[1] // f, y.shape[0] // f), interpolation=cv2.INTER_AREA)
            return cv2.resize(y, (self.aw, self.ah), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(y, (self.aw, self.ah), interpolation=cv2.INTER_AREA)

    def _to_source(self, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
        x0, y0 = round(x * self._sx), round(y * self._sy)
        x1 = min(self.width, round((x + w) * self._sx))
        y1 = min(self.height, round((y + h) * self._sy))
        return x0, y0, x1 - x0, y1 - y0

    def _decide(
        self,
        positive: bool,
        score: float,
        boxes: list[tuple[int, int, int, int]],
        *,
        illumination: bool = False,
    ) -> MotionResult:
        if illumination:
            # Blind while the background re-seeds: an ongoing event neither ends nor a new
            # one starts because of the light change itself.
            return MotionResult(self.motion, 0.0, [])
        if positive:
            self._positives += 1
            self._negatives = 0
            if self._positives >= self.start_frames:
                self.motion = True
        else:
            self._negatives += 1
            self._positives = 0
            if self._negatives >= END_FRAMES:
                self.motion = False
        return MotionResult(self.motion, score, boxes)
