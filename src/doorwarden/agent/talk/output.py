"""What every talk output is (the camera's backchannel, a speaker), and the clock that
paces audio sent to a camera."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import av


class TalkError(Exception):
    """Talk cannot go on; the message is for the resident (relayed by the server as the
    talk_state's message), so it names no internals and never holds a credential."""


class TalkOutput(Protocol):
    """Where decoded talk audio goes. `open` may take a while (a camera's RTSP handshake)
    and raises TalkError; `write` takes frames in the output's own format, rate and
    layout, and blocks when it runs ahead of real time; `close` is quick and idempotent."""

    @property
    def audio_format(self) -> tuple[str, str, int]:
        """(sample format, channel layout, rate) that `write` takes, e.g. ("s16", "mono", 8000)."""
        ...

    def open(self) -> None: ...

    def write(self, frame: av.AudioFrame) -> None: ...

    def close(self) -> None: ...


class Pacer:
    """An audio clock for packets sent to a camera, whose own buffer would overflow if a
    backlog arrived at once. A packet goes out when its audio is due, or up to `lead_s`
    before; a packet later than `gap_s` means the input paused (between words, or a slow
    uplink), and starts a new talk spurt: the RTP timestamp jumps by the pause, so the
    camera plays it now rather than queueing it behind a silence it never received."""

    def __init__(
        self, rate: int, *, stop: threading.Event, lead_s: float = 0.06, gap_s: float = 0.1
    ) -> None:
        self.rate = rate
        self.lead_s = lead_s
        self.gap_s = gap_s
        self._stop = stop
        self._origin: float | None = None
        self.position = 0  # samples since the start, pauses included: the RTP timestamp

    def next(self, samples: int) -> tuple[int, bool]:
        """Wait until a packet of `samples` may go; its timestamp (in samples from the
        start) and whether it begins a talk spurt (RTP's marker bit)."""
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
            spurt = True
        else:
            due = self._origin + self.position / self.rate
            spurt = now > due + self.gap_s
            if spurt:
                self.position += round((now - due) * self.rate)
            elif due - now > self.lead_s:
                self._stop.wait(due - now - self.lead_s)
        at = self.position
        self.position += samples
        return at, spurt
