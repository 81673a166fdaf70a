"""The GPIO button's decisions, driven with real `gpiod.EdgeEvent` objects (libgpiod's
own type, as `read_edge_events` returns them). There is no GPIO chip here: the kernel's
gpio-sim module would provide one, and this machine has neither it nor configfs, so the
waiting loop (`request_lines`, `wait_edge_events`) runs only against a missing chip."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import gpiod
from gpiod.edge_event import EdgeEvent
from gpiod.line import Bias, Direction, Edge
from structlog.testing import capture_logs

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.config.ring import GpioRing
from doorwarden.agent.ring.doorbell import Doorbell
from doorwarden.agent.ring.gpio import GpioButton

RISING, FALLING = EdgeEvent.Type.RISING_EDGE.value, EdgeEvent.Type.FALLING_EDGE.value


def edge(kind: int, line: int, seq: int, t_ns: int = 0) -> EdgeEvent:
    return EdgeEvent(kind, t_ns, line, seq, seq)


def test_a_press_is_a_rising_edge_on_our_line() -> None:
    presses: list[tuple[str, str]] = []
    button = GpioButton("front", GpioRing(line=17), lambda c, s: presses.append((c, s)))
    events = [
        edge(RISING, 17, 1), edge(FALLING, 17, 2),  # press, release
        edge(RISING, 4, 3),  # another line of the same chip
        edge(RISING, 17, 4), edge(FALLING, 17, 5),
    ]  # fmt: skip
    assert button.handle_events(events) == 2
    assert presses == [("front", "gpio"), ("front", "gpio")]


def test_the_line_is_an_input_with_logical_rising_edges_and_kernel_debounce() -> None:
    settings = GpioButton("front", GpioRing(line=3, bounce_ms=30), print).settings()
    assert isinstance(settings, gpiod.LineSettings)
    assert settings.direction is Direction.INPUT
    assert settings.edge_detection is Edge.RISING  # active_low inverts: pressed = rising
    assert settings.active_low is True and settings.bias is Bias.PULL_UP
    assert settings.debounce_period == timedelta(milliseconds=30)


def test_a_bouncing_button_through_the_doorbell_rings_once(tmp_path: Path) -> None:
    camera = CameraConfig.model_validate(
        {"name": "front", "source": {"kind": "synthetic"}, "ring": {"gpio": {"line": 5}}}
    )
    bell = Doorbell([camera], tmp_path)
    button = GpioButton("front", GpioRing(line=5), bell.press)
    # A cheap button chatters for milliseconds; the kernel filter would catch most, the
    # doorbell's 3 s debounce the rest (a visitor pressing again and again).
    chatter = [edge(RISING if i % 2 == 0 else FALLING, 5, i, i * 1_000_000) for i in range(20)]
    assert button.handle_events(chatter) == 10
    assert [e.camera for e in bell.queue.pending()] == ["front"]
    assert bell.debouncer.dropped["front"] == 9


def test_a_missing_chip_is_retried_not_fatal() -> None:
    button = GpioButton("front", GpioRing(chip="/dev/gpiochip99", line=1), print)
    with capture_logs() as logs:
        button.start()
        deadline = time.monotonic() + 5
        while not any(e["event"] == "ring.gpio_failed" for e in logs):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        button.stop()
    failed = next(e for e in logs if e["event"] == "ring.gpio_failed")
    assert "gpiochip99" in failed["error"] or "No such file" in failed["error"]
