"""A talk output that records what it is given, for the session and control tests."""

from __future__ import annotations

import threading
import time

import av

from doorwarden.agent.talk.output import TalkError


class FakeOutput:
    def __init__(
        self,
        *,
        fail: str | None = None,
        bug: bool = False,
        gate: threading.Event | None = None,
        write_bug_after: int | None = None,
    ) -> None:
        self.audio_format = ("s16", "mono", 8000)
        self.fail = fail
        self.bug = bug
        self.gate = gate  # open() waits for it: a camera slow to answer
        self.write_bug_after = write_bug_after
        self.frames: list[av.AudioFrame] = []
        self.opened = threading.Event()
        self.closed_at: float | None = None
        self.last_write: float | None = None

    def open(self) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        if self.bug:
            raise ZeroDivisionError("a bug")
        if self.fail:
            raise TalkError(self.fail)
        self.opened.set()

    def write(self, frame: av.AudioFrame) -> None:
        if self.write_bug_after is not None and len(self.frames) >= self.write_bug_after:
            raise KeyError("a bug while playing")
        self.frames.append(frame)
        self.last_write = time.monotonic()

    def close(self) -> None:
        self.closed_at = time.monotonic()

    @property
    def samples(self) -> int:
        return sum(f.samples for f in self.frames)
