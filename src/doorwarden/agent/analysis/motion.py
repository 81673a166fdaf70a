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
   down to `SMALL_FRACTION` of ``min_area`` (scaled by sensitivity) are candidate regions,
   each followed from analysis to analysis as a track (a region overlapping where one was
   at the last analysis continues it; one whose centre jumped or whose area leapt, as
   blobs of leaves do when they merge and split, starts a new track, except that a region
   still at the image border it came in at may grow: more of a walker comes into view);
6. a region of at least ``min_area`` counts once it has persisted in place: to start an
   event, seen at ``start_frames + 1`` analyses in a row (3 at the default sensitivity,
   2 at >= 0.75, 4 at <= 0.25) spanning ``start_frames`` analysis periods, or fewer
   periods if it moved steadily (see Latency), followed as one track for as many analyses
   and standing still (moved < `STALL_STEP` px) at no more than half of them: a walker
   moves at every analysis, while a displaced clump of a tree in wind holds still between
   gusts (tree.avi's frames come at ~2.3 a second, so one holds for two analyses) and its
   track restarts as it regroups; to keep an event going, at 2 in a row;
7. a smaller region (a far walker: vtest.avi's entry at frame 170 is ~0.1% of the image)
   counts only after `SMALL_AGE` analyses in a row spanning at least `SMALL_SPAN_S`, in
   which its centre moved steadily away from where it was first seen (at least
   `SMALL_TRAVEL` px and `SMALL_TRAVEL_SIZE` of its size, with net displacement >=
   `SMALL_STRAIGHTNESS` of the path) and stood still at most `SMALL_STALLS` times (a walker
   moves at every analysis; a blob among leaves drifts in jumps and pauses), in quiet
   surroundings (at most `QUIET_FLICKER` of the area around it toggled more than
   `QUIET_TOGGLES` times recently, judged once `SETTLE_S` of history has been seen). Noise
   and flicker of the same size blink, jitter in place or sit among swaying leaves, so they
   never count: the small area is not trusted on its own, only with persistence and
   coherent movement. A region first seen touching the image border came in from outside
   the view, as a walker does and noise seldom does: what moves is measured, along the
   axis it came in on, by its side facing away from the border (its leading edge; while
   half in view a walker's centre moves at half its speed), it must move inwards, and it
   counts after `ENTERING_AGE` analyses spanning `ENTERING_SPAN_S`;
8. the background is a running average with a time constant in seconds (so it behaves the
   same at any analysis rate), updated more slowly under foreground so a person standing
   still is absorbed only after tens of seconds.

Latency: while no event runs and a region in quiet surroundings awaits confirmation,
`should_analyse` takes the next frame after `BURST_GAP` of the period instead of a whole
period (a burst). For a large region that lasts until it is confirmed: one confirmed on
such early frames must also have moved steadily (a walker coming in does), by
`SMALL_TRAVEL_SIZE` of its length along the way it moved (a walker going sideways: a
quarter of its width, not of its height), measured by its leading edge if it came in at
the border; otherwise it must have lasted as long as at the regular rate, so persistence
in time, which tells swaying leaves apart, is not weakened; an event starts ~0.2 s after a
walker is first seen instead of 0.4 s. A small region bursts when it is new or has moved
steadily so far, so its `SMALL_AGE` analyses take ~0.4 s (`SMALL_SPAN_S`; 0.3 s coming in
at the border) instead of 0.8 s at 5 analyses a second; the travel it must show is the
same number of pixels, so a slow walker still waits until it has covered it. Small
regions are the common kind of noise (rain, leaves), so their bursts are rationed: a
credit of `BURST_CREDIT_MAX` early analyses refilled at `BURST_CREDIT_RATE` a second; when
flicker has spent it, small regions are analysed at the regular rate (the latency before
bursts, never more analyses). A still scene is analysed at exactly ``analysis_fps``; on
the labelled set the rate rises ~3%.

Hysteresis: an event ends after `END_FRAMES` (5, i.e. 1 s at 5 analyses a second)
consecutive analyses without a counted region. Changes that flicker for a single
analysis never start an event.
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
SMALL_FRACTION = 0.15  # regions down to this fraction of min_area are tracked as "small"
SMALL_AGE = 5  # analyses in a row a small region must be seen (persistence)...
SMALL_SPAN_S = 0.4  # ...spanning at least this long (they come faster in a burst)...
SMALL_TRAVEL = 2.0  # ...over which its centre must move this far (analysis pixels)...
SMALL_TRAVEL_SIZE = 0.25  # ...and this fraction of its larger side...
SMALL_STRAIGHTNESS = 0.9  # ...along a coherent path: net displacement / path length...
ENTERING_AGE = 4  # ...or, coming in at the image border, this many...
ENTERING_SPAN_S = 0.3  # ...spanning this long
SMALL_STALLS = 1  # ...standing still (moved < STALL_STEP px) at most this often
STALL_STEP = 0.5
QUIET_FLICKER = 0.05  # a region is "quiet" when this little of its surroundings...
QUIET_TOGGLES = 3.5  # ...toggled more than this many times recently (decayed count)...
QUIET_REACH = 0.5  # ...within this fraction of its size around it...
SETTLE_S = 4.0  # ...judged only once this much flicker history has been seen
BURST_GAP = 0.4  # a region awaiting confirmation is re-checked after this fraction of a period
BURST_STEP = 0.5  # a small region bursts when new or once it moved this far (analysis px)...
BURST_CREDIT_RATE = 1.0  # ...rationed: at most this many early analyses a second in the long run
BURST_CREDIT_MAX = 6.0  # ...saved up to this many (confirming a walker takes 4 or 5)
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
class _Track:
    """A candidate region followed across analyses."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (analysis pixels)
    cx: float
    cy: float
    age: int = 1  # analyses in a row it has been seen
    x0: float = 0.0  # where it was first seen (`_Track.spot`)
    y0: float = 0.0
    path: float = 0.0  # summed displacement of its spot
    area: int = 0
    big: int = 0  # analyses in a row it has been at least min_area
    size: int = 0  # its larger side (analysis pixels)
    big_since: float = 0.0  # when its run of large sightings began (s)
    since: float = 0.0  # when it was first seen (s)
    stalls: int = 0  # analyses at which its spot stood still
    edges: tuple[int, int] = (0, 0)  # per axis: -1/+1 entered at the low/high border, else 0
    sx: float = 0.0  # its spot now
    sy: float = 0.0
    extent: tuple[int, int] = (0, 0)  # its width and height (analysis pixels)

    @staticmethod
    def spot(
        raw: tuple[int, int, int, int], cx: float, cy: float, edges: tuple[int, int]
    ) -> tuple[float, float]:
        """The point whose movement is measured: the centre, except along an axis where the
        region came in at the image border, where it is the side facing away from the
        border (its leading edge: while half in view, a walker's centre moves at half its
        speed and the side at the border stays put)."""
        x0, y0, x1, y1 = raw
        if edges == (0, 0):
            return cx, cy
        # Only the axes it came in along: across them its centre wanders while more of
        # the body comes into view.
        return (
            0.0 if edges[0] == 0 else float(x1 if edges[0] < 0 else x0),
            0.0 if edges[1] == 0 else float(y1 if edges[1] < 0 else y0),
        )

    def follow(
        self,
        box: tuple[int, int, int, int],
        raw: tuple[int, int, int, int],
        cx: float,
        cy: float,
        area: int,
        size: int,
        now: float,
        edges: tuple[int, int],
    ) -> _Track:
        """This track seen again as the region `box`; a new track when it jumped."""
        sx, sy = self.spot(raw, cx, cy, self.edges)
        step = math.hypot(sx - self.sx, sy - self.sy)
        moved = math.hypot(cx - self.cx, cy - self.cy)
        # Blobs of leaves merge and split, so their centres jump and their areas leap:
        # such a region starts over instead of inheriting the persistence. A region
        # coming in at the border it came in at grows as more of it enters: that is no leap.
        entering = self.edges != (0, 0) and (
            (self.edges[0] != 0 and edges[0] == self.edges[0])
            or (self.edges[1] != 0 and edges[1] == self.edges[1])
        )
        ratio = area / max(1, self.area)
        jumped = moved > 0.5 * size + 2
        if jumped or not 0.5 <= ratio <= (math.inf if entering else 2):
            # `big` goes on: a large region persists in place even while its parts regroup.
            sx, sy = self.spot(raw, cx, cy, edges)
            return _Track(
                box,
                cx,
                cy,
                1,
                sx,
                sy,
                area=area,
                big=self.big,
                size=size,
                big_since=self.big_since,
                since=now,
                edges=edges,
                sx=sx,
                sy=sy,
                extent=(raw[2] - raw[0], raw[3] - raw[1]),
            )
        return _Track(
            box,
            cx,
            cy,
            self.age + 1,
            self.x0,
            self.y0,
            self.path + step,
            area,
            self.big,
            size,
            self.big_since,
            self.since,
            self.stalls + (max(step, moved) < STALL_STEP),  # an edge moves in whole pixels
            self.edges,
            sx,
            sy,
            (raw[2] - raw[0], raw[3] - raw[1]),
        )

    def coherent(self, along: bool = False) -> bool:
        """Moved far enough along a steady path (flicker and noise jitter in place).

        Far enough is a quarter of its larger side, or with `along` of its length along
        the way it moved (a walker going sideways: a quarter of its width, not its height).
        """
        dx, dy = self.sx - self.x0, self.sy - self.y0
        if dx * self.edges[0] > 0 or dy * self.edges[1] > 0:
            return False  # came in at the border and went back out
        net = math.hypot(dx, dy)
        length: float = self.size
        if along:
            w, h = self.extent
            length = min(length, (abs(dx) * w + abs(dy) * h) / max(net, 1e-6))
        travel = max(SMALL_TRAVEL, SMALL_TRAVEL_SIZE * length)
        return net >= travel and net >= SMALL_STRAIGHTNESS * self.path

    def heading(self) -> bool:
        """Moving along a steady path so far, though maybe not far yet."""
        net = math.hypot(self.sx - self.x0, self.sy - self.y0)
        return net >= BURST_STEP and net >= SMALL_STRAIGHTNESS * self.path


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
        self._tracks: list[_Track] = []
        self._restless: np.ndarray | None = None  # pixels that toggled > QUIET_TOGGLES
        self.small_area_px = max(4.0, self.min_area_px * SMALL_FRACTION)
        self.start_big = self.start_frames + 1  # analyses a large region must persist
        self._burst = False  # a region awaits confirmation: analyse the next frame early
        self._credit = BURST_CREDIT_MAX  # early analyses left for small regions
        self._last_t: float | None = None
        self._next_t: float | None = None
        self._hold_until = -math.inf
        self._negatives = 0
        self.motion = False

    def should_analyse(self, t: float) -> bool:
        """True when the frame at `t` is due for analysis at ``analysis_fps``.

        Due times advance by exactly one period, so a stream whose rate is not a multiple of
        the analysis rate still averages ``analysis_fps``; after a gap they jump ahead
        instead of bursting. The one exception: a region in quiet surroundings awaiting
        confirmation at the last analysis (and no event running; see Latency in the module
        docstring) makes the first frame `BURST_GAP` of a period later due.
        """
        period = 1.0 / self.config.analysis_fps
        if self._next_t is None:
            self._next_t = t + period
            return True
        if (
            self._burst
            and self._last_t is not None
            and t >= self._last_t + BURST_GAP * period - 1e-3
        ):
            # A large region appeared at the last analysis: confirm it now, not a period later.
            self._burst = False
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
        self._tracks = []
        self._burst = False
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
        self._credit = min(BURST_CREDIT_MAX, self._credit + BURST_CREDIT_RATE * max(dt, 0.0))
        flickery = cv2.dilate(_above(self._flicker, self._flicker_limit()), self._open)
        steady: np.ndarray = cv2.subtract(changed, flickery)
        steady = cv2.morphologyEx(steady, cv2.MORPH_OPEN, self._open)
        steady = cv2.morphologyEx(steady, cv2.MORPH_CLOSE, self._close)
        _, _, stats, centroids = cv2.connectedComponentsWithStats(steady, connectivity=8)
        self._restless = None
        area, boxes, start = self._track(stats[1:].tolist(), centroids[1:].tolist())

        # The background learns slowly under foreground, so a loiterer is absorbed late.
        # It learns the raw frame, not the normalised one: normalising against the model and
        # then learning the result would let the model's brightness drift from the scene's.
        cv2.accumulateWeighted(
            small, self._bg, _alpha(dt, BACKGROUND_TAU_S), cv2.bitwise_not(changed)
        )
        cv2.accumulateWeighted(small, self._bg, _alpha(dt, FOREGROUND_TAU_S), changed)
        self._bg_mean = float(cv2.mean(self._bg, self._valid)[0]) or 1.0
        return self._decide(bool(boxes), area / max(1, self._valid_px), boxes, start=start)

    def _track(
        self, stats: list[list[int]], centroids: list[list[float]]
    ) -> tuple[int, list[tuple[int, int, int, int]], bool]:
        """Follow candidate regions (steps 5-7 of the module docstring).

        Returns the counted area, the counted regions' boxes (source pixels) and whether
        one of them may start an event.
        """
        m = self._margin
        tracks: list[_Track] = []
        area = 0
        boxes: list[tuple[int, int, int, int]] = []
        start = pending = small = False
        settled = self._watched >= SETTLE_S  # flicker is known only after a while
        now = self._last_t or 0.0
        period = 1.0 / self.config.analysis_fps
        for (x, y0, w, h, a), (cx, cy) in zip(stats, centroids, strict=True):
            if a < self.small_area_px:
                continue
            grown = (x - m, y0 - m, x + w + m, y0 + h + m)
            raw = (x, y0, x + w, y0 + h)
            edges = (
                -1 if x <= 0 else (1 if x + w >= self.aw else 0),
                -1 if y0 <= 0 else (1 if y0 + h >= self.ah else 0),
            )
            prev = [
                p
                for p in self._tracks
                if x < p.box[2] and p.box[0] < x + w and y0 < p.box[3] and p.box[1] < y0 + h
            ]
            if prev:
                near = min(prev, key=lambda p: (p.cx - cx) ** 2 + (p.cy - cy) ** 2)
                track = near.follow(grown, raw, cx, cy, a, max(w, h), now, edges)
                # Any large region here persists (the longest run of them).
                longest = max(prev, key=lambda p: p.big)
                track.big, track.big_since = longest.big, longest.big_since
            else:
                sx, sy = _Track.spot(raw, cx, cy, edges)
                track = _Track(
                    grown,
                    cx,
                    cy,
                    1,
                    sx,
                    sy,
                    area=a,
                    size=max(w, h),
                    since=now,
                    edges=edges,
                    sx=sx,
                    sy=sy,
                    extent=(w, h),
                )
            tracks.append(track)
            if a >= self.min_area_px:
                if track.big == 0:
                    track.big_since = now
                track.big += 1
                persists = track.big >= 2
                # Analysed early (a burst), a region must also have moved steadily to start
                # an event; otherwise it must have lasted as long as at the regular rate.
                # Either way it must have been one track as long and moved at half its
                # analyses or more: a clump of leaves holds still between gusts (step 6).
                confirmed = (
                    track.big >= self.start_big
                    and (
                        now - track.big_since >= self.start_frames * period - 1e-3
                        or track.coherent(along=True)
                    )
                    and track.age >= self.start_big
                    and 2 * track.stalls <= track.age - 1
                )
                start |= confirmed
                if not confirmed and not pending:
                    # Confirm a new region early, unless leaves flicker around it.
                    pending = self._quiet(x, y0, w, h)
            else:
                track.big = 0
                persists = (
                    settled
                    and track.age >= (SMALL_AGE if track.edges == (0, 0) else ENTERING_AGE)
                    and now - track.since
                    >= (SMALL_SPAN_S if track.edges == (0, 0) else ENTERING_SPAN_S) - 1e-3
                    and track.stalls <= SMALL_STALLS
                    and track.coherent()
                    and self._quiet(x, y0, w, h)
                )
                start |= persists
                if (
                    not (persists or small)
                    and settled
                    and self._credit >= 1
                    and track.stalls <= SMALL_STALLS
                    and (track.age == 1 or track.heading())
                ):
                    # New, or moving steadily so far: a walker coming in, or noise.
                    small = self._quiet(x, y0, w, h)
            if persists:
                area += a
                boxes.append(self._to_source(x, y0, w, h))
        self._tracks = tracks
        self._burst = (pending or small) and not self.motion
        if self._burst and not pending:
            self._credit -= 1
        return area, boxes, start

    def _quiet(self, x: int, y: int, w: int, h: int) -> bool:
        """Hardly anything toggles around the region (`QUIET_REACH` of its size around
        it): a region among swaying leaves is a gap or a shadow between them, not a walker.

        The level is below the flicker limit: leaves that toggle a few times, too few to be
        discounted as flicker, still make their surroundings restless; a walker in an open
        street leaves only pixels it passed (two toggles: arrive, leave)."""
        gx = max(self._margin, round(QUIET_REACH * w))
        gy = max(self._margin, round(QUIET_REACH * h))
        if self._restless is None:
            self._restless = _above(self._flicker, QUIET_TOGGLES)
        roi = self._restless[max(0, y - gy) : y + h + gy, max(0, x - gx) : x + w + gx]
        return cv2.countNonZero(roi) <= QUIET_FLICKER * roi.size

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
        start: bool = False,
    ) -> MotionResult:
        if illumination:
            # Blind while the background re-seeds: an ongoing event neither ends nor a new
            # one starts because of the light change itself.
            return MotionResult(self.motion, 0.0, [])
        if positive:
            # An event starts on a confirmed region; one running goes on while any persists.
            self._negatives = 0
            self.motion = self.motion or start
            self._burst = self._burst and not self.motion
        else:
            self._negatives += 1
            if self._negatives >= END_FRAMES:
                self.motion = False
        return MotionResult(self.motion, score, boxes)
