"""Repeated presses of one doorbell count once: a visitor who presses three times, a
bouncing contact, an MQTT retain replayed at reconnect, an ONVIF input that reports
each state twice. Per camera, a press within `window_s` of the last *accepted* one is
dropped, so a flood (a stuck button, a script in a loop) yields one ring per window,
and the server's own limit (6 a minute) is never the first line of defence."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_WINDOW_S = 3.0


class Debouncer:
    def __init__(
        self,
        window_s: float | Callable[[str], float] = DEFAULT_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window_s if callable(window_s) else (lambda _camera: float(window_s))
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self.dropped: dict[str, int] = {}  # presses dropped, per camera

    def allow(self, camera: str) -> bool:
        """True for a press that counts (and starts a new window); False within one."""
        now = self._clock()
        with self._lock:
            last = self._last.get(camera)
            if last is not None and now - last < self._window(camera):
                self.dropped[camera] = self.dropped.get(camera, 0) + 1
                return False
            self._last[camera] = now
            return True
