"""A doorbell button on a GPIO line, through libgpiod (`pip install gpiod`, imported only
when a camera's `ring.gpio` is configured).

The line is requested as an input with edge detection on the *logical* rising edge:
with `active_low` the kernel inverts the line, so "pressed" is always a rising edge
whatever the wiring, and the kernel's debounce filter (`bounce_ms`) swallows contact
bounce before it reaches us. A press is a rising edge on our line; a release (falling
edge) is ignored. `handle_events` is the whole decision, kept apart from the waiting so
it can be checked with real `gpiod.EdgeEvent`s without a GPIO chip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import structlog

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.config.ring import GpioRing

log = structlog.get_logger("doorwarden.agent.ring.gpio")

Press = Callable[[str, str], object]  # (camera, source)


class GpioButton:
    def __init__(self, camera: str, config: GpioRing, press: Press) -> None:
        self.camera = camera
        self.config = config
        self.press = press
        self.presses = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import gpiod  # noqa: F401, PLC0415 - optional: fail at start, with the extra to install

        self._thread = threading.Thread(target=self._run, name="doorwarden-gpio", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def handle_events(self, events: Iterable[Any]) -> int:
        """Presses among `events` (gpiod.EdgeEvent), each passed on; how many."""
        import gpiod  # noqa: PLC0415 - optional dependency

        count = 0
        for event in events:
            if event.line_offset != self.config.line:
                continue
            if event.event_type is not gpiod.EdgeEvent.Type.RISING_EDGE:
                continue  # the release
            count += 1
            self.presses += 1
            self.press(self.camera, "gpio")
        return count

    def settings(self) -> Any:
        """The line's gpiod.LineSettings for this configuration."""
        import gpiod  # noqa: PLC0415 - optional dependency
        from gpiod.line import Bias, Direction, Edge  # noqa: PLC0415

        bias = {
            "pull_up": Bias.PULL_UP, "pull_down": Bias.PULL_DOWN,
            "disabled": Bias.DISABLED, "as_is": Bias.AS_IS,
        }[self.config.bias]  # fmt: skip
        return gpiod.LineSettings(
            direction=Direction.INPUT,
            edge_detection=Edge.RISING,
            bias=bias,
            active_low=self.config.active_low,
            debounce_period=timedelta(milliseconds=self.config.bounce_ms),
        )

    def _run(self) -> None:
        import gpiod  # noqa: PLC0415 - optional dependency

        backoff = Backoff(1.0, 60.0)
        while not self._stop.is_set():
            try:
                with gpiod.request_lines(
                    self.config.chip,
                    consumer=f"doorwarden-{self.camera}",
                    config={self.config.line: self.settings()},
                ) as request:
                    log.info("ring.gpio_ready", camera=self.camera, chip=self.config.chip,
                             line=self.config.line)  # fmt: skip
                    backoff.reset()
                    while not self._stop.is_set():
                        if request.wait_edge_events(timedelta(seconds=0.5)):
                            self.handle_events(request.read_edge_events())
            except (OSError, ValueError) as exc:  # a missing chip, a line in use
                delay = backoff.next_delay()
                log.warning("ring.gpio_failed", camera=self.camera, error=str(exc), retry_in=delay)
                self._stop.wait(delay)
