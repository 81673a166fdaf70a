"""The capture sources' clock and pacing: one increasing timeline per camera."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

# A consumer that stalls longer than this gets the clock re-anchored instead of a burst
# of "late" frames, as a live camera would have dropped them.
MAX_PACE_LAG_S = 1.0


class Clock:
    """Rebases packet timestamps to seconds from 0, kept increasing across loops/reconnects.

    Fed decode timestamps where there are any: with B-frames, presentation timestamps go
    back and forth in packet order, and stages need a clock that never goes backwards.
    """

    def __init__(self, fps: float) -> None:
        self.step = 1.0 / fps if fps > 0 else 0.1
        self.last: float | None = None
        self._offset = 0.0
        self._origin: int | None = None
        self._origin_base: Fraction | None = None

    def rebase(self) -> None:
        self._offset = 0.0 if self.last is None else self.last + self.step
        self._origin = None

    def at(self, ts: int | None, time_base: Fraction | None) -> float:
        if ts is None or time_base is None:
            t = 0.0 if self.last is None else self.last + self.step
        else:
            if self._origin is None:
                self._origin, self._origin_base = ts, time_base
            t = self._offset + float((ts - self._origin) * time_base)
        if self.last is not None:
            t = max(t, self.last)
        self.last = t
        return t

    def other(self, ts: int | None, time_base: Fraction | None) -> float | None:
        """Another stream's timestamp (audio) on this clock, which the video's timestamps
        drive: the demuxer puts both streams on one timeline, so the same origin applies.
        None before the first video packet since the start or the last rebase (that audio
        has no picture to go with); not clamped: the caller keeps its own order."""
        if ts is None or time_base is None or self._origin is None or self._origin_base is None:
            return None
        return self._offset + float(ts * time_base - self._origin * self._origin_base)


class Pacer:
    """Sleeps until wall-clock time matches media time, against one anchor (no drift)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._anchor: float | None = None

    def wait(self, media_time: float) -> bool:
        """False when stopped while waiting."""
        now = time.monotonic()
        if self._anchor is None or now - (self._anchor + media_time) > MAX_PACE_LAG_S:
            self._anchor = now - media_time
        delay = self._anchor + media_time - now
        if delay > 0:
            return not self._stop.wait(delay)
        return not self._stop.is_set()
