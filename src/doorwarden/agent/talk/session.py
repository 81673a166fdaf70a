"""One talk session: the audio of one resident, for one camera, from talk_start to its end.

Its thread opens the output (a camera's backchannel can take seconds to answer), says
`open`, then decodes what the link feeds and plays it out. It ends, closing the output,
when the server says talk_stop, when no audio has come for `idle_s` (the browser's stream
stopped mid-word, or the link dropped), or when the output fails; then it says `closed`
or `failed`, with words for the resident.

The link thread only appends to a bounded queue here, so a flood costs memory up to the
bound and no more: Opus packets are independent, and the oldest are dropped; a WebM
stream cannot lose a chunk, so a WebM flood ends the session.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

import structlog

from doorwarden.agent.talk.decode import Decoder, Resampler, decoder_for
from doorwarden.agent.talk.output import TalkError, TalkOutput

log = structlog.get_logger("doorwarden.agent.talk.session")

IDLE_S = 1.0  # no audio for this long: the browser's stream stopped; close the output
QUEUE_ITEMS = 32  # Opus: 0.64 s of 20 ms packets; WebM: 3.2 s of 100 ms chunks
BACKLOG_S = 0.2  # Opus that waited longer than this for the output to open is stale
# Opus that waited longer than this while the output played what came before is dropped:
# the output plays at real time, so a backlog (an uplink that stalled, then delivered at
# once; a busy CPU) would otherwise put the voice behind for the rest of the talk, since
# the browser sends without pause (silence too). Opus packets decode independently.
MAX_LAG_S = 0.12
INTERNAL = "talk failed on the camera box (an internal error; its log says more)"

Report = Callable[[str, str], None]  # (state, message)


class TalkSession:
    def __init__(
        self,
        camera: str,
        session: str,
        codec: str,
        *,
        make_output: Callable[[], TalkOutput],
        report: Report,
        on_end: Callable[[TalkSession], None],
        idle_s: float = IDLE_S,
        queue_items: int = QUEUE_ITEMS,
    ) -> None:
        self.camera = camera
        self.session = session
        self.codec = codec
        self.idle_s = idle_s
        self._make_output = make_output
        self._report = report
        self._on_end = on_end
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._queue_items = queue_items
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._flooded = False
        self.received_bytes = 0
        self.dropped = 0
        self.state: str | None = None  # open, then closed or failed
        self._thread = threading.Thread(
            target=self._run, name=f"doorwarden-talk-{camera}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def feed(self, payload: bytes) -> None:
        """A payload from the link thread: queued, never waited on."""
        with self._lock:
            self.received_bytes += len(payload)
            if len(self._queue) >= self._queue_items:
                if self.codec == "webm":
                    self._flooded = True
                    return
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((time.monotonic(), payload))
        self._wake.set()

    def stop(self) -> None:
        """talk_stop: the thread closes the output as soon as it sees this."""
        self._stopped.set()
        self._wake.set()

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # -- the session's thread -----------------------------------------------------------

    def _run(self) -> None:
        state, message = "closed", "talk ended"
        output: TalkOutput | None = None
        decoder: Decoder | None = None
        try:
            decoder = decoder_for(self.codec)
            output = self._make_output()
            output.open()
            if not self._stopped.is_set():
                message = self._play(output, decoder)
        except TalkError as exc:
            state, message = "failed", str(exc)
        except Exception:  # a bug here must end only this talk, never the camera
            log.exception("talk.session_failed", camera=self.camera)
            state, message = "failed", INTERNAL
        finally:
            self._close(output, decoder)
            log.info(
                "talk.session_end", camera=self.camera, state=state, reason=message,
                bytes=self.received_bytes, dropped=self.dropped,
            )  # fmt: skip
            self._on_end(self)  # before the report: the server may start the next at once
            self.state = state
            self._report(state, message)

    def _play(self, output: TalkOutput, decoder: Decoder) -> str:
        """Decode and play until the end; why it ended."""
        resample = Resampler(output.audio_format)
        opened = time.monotonic()
        if self.codec == "opus":
            self._drop_stale(opened - BACKLOG_S)
        self.state = "open"
        self._report("open", "")
        last_audio = opened
        while True:
            if self._stopped.is_set():
                return "talk ended"
            with self._lock:
                items = list(self._queue)
                self._queue.clear()
                flooded = self._flooded
                self._wake.clear()
            if flooded:
                raise TalkError("the talk audio came faster than it can be played")
            for arrived, payload in items:
                last_audio = max(last_audio, arrived)
                if self.codec == "opus" and time.monotonic() - arrived > MAX_LAG_S:
                    self.dropped += 1  # late: catch up with the resident's voice
                    continue
                decoder.feed(payload)
                # Played packet by packet, so each one's lag is known when its turn comes.
                for frame in decoder.take():
                    for out in resample(frame):
                        if self._stopped.is_set():
                            return "talk ended"
                        output.write(out)
            if time.monotonic() - last_audio > self.idle_s:
                return f"no talk audio came for {self.idle_s:g} s"
            if not items:
                self._wake.wait(0.02)

    def _drop_stale(self, before: float) -> None:
        with self._lock:
            while self._queue and self._queue[0][0] < before:
                self._queue.popleft()
                self.dropped += 1

    def _close(self, output: TalkOutput | None, decoder: Decoder | None) -> None:
        for part in (output, decoder):
            if part is None:
                continue
            try:
                part.close()
            except Exception:  # closing must go on with the next part
                log.exception("talk.close_failed", camera=self.camera)
