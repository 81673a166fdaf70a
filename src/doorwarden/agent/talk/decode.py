"""Talk audio from the browser, decoded: raw Opus packets (WebCodecs' AudioEncoder) or a
WebM/Opus byte stream (MediaRecorder's chunks), both 48 kHz; then resampled to what the
output takes.

A WebM stream is only a stream: its chunks do not split at packet boundaries, so it is
demuxed by FFmpeg from a file object fed by a queue, on its own thread (the demuxer
blocks in `read` until the next chunk comes).
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from typing import Protocol

import av
import structlog
from av.audio.codeccontext import AudioCodecContext

from doorwarden.agent.talk.output import TalkError

log = structlog.get_logger("doorwarden.agent.talk.decode")

OPUS_RATE = 48_000
BAD_PACKETS_LIMIT = 25  # this many undecodable packets in a row is not audio: give up
BAD_AUDIO = "the talk audio from the browser could not be decoded"


class Decoder(Protocol):
    def feed(self, payload: bytes) -> None:
        """One message's payload; TalkError when the audio is not decodable."""

    def take(self) -> list[av.AudioFrame]:
        """The frames decoded so far (and not taken yet)."""

    def close(self) -> None: ...


def opus_context() -> AudioCodecContext:
    """An Opus decoder: libopus where FFmpeg has it (the reference), else FFmpeg's own."""
    for name in ("libopus", "opus"):
        try:
            context = av.CodecContext.create(name, "r")
        except (av.FFmpegError, ValueError):
            continue
        assert isinstance(context, AudioCodecContext)  # noqa: S101 - Opus is audio
        context.sample_rate = OPUS_RATE
        context.layout = "mono"
        return context
    raise TalkError("this agent's FFmpeg has no Opus decoder")


class OpusDecoder:
    """Each payload is one raw Opus packet."""

    def __init__(self) -> None:
        self._context = opus_context()
        self._frames: list[av.AudioFrame] = []
        self._bad = 0

    def feed(self, payload: bytes) -> None:
        try:
            if not payload:  # an empty packet would put the decoder in draining mode
                raise av.InvalidDataError(0, "empty packet")
            frames = self._context.decode(av.Packet(payload))
        except av.FFmpegError:
            self._bad += 1
            if self._bad >= BAD_PACKETS_LIMIT:
                raise TalkError(BAD_AUDIO + " (not Opus)") from None
            return
        self._bad = 0
        self._frames.extend(frames)

    def take(self) -> list[av.AudioFrame]:
        frames, self._frames = self._frames, []
        return frames

    def close(self) -> None:
        pass


class _Pipe:
    """A read-only file object over queued chunks (no `seek`: FFmpeg reads it as a stream)."""

    def __init__(self, chunks: int) -> None:
        self.chunks: queue.Queue[bytes | None] = queue.Queue(chunks)
        self._buffer = b""
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._buffer and not self._ended:
            chunk = self.chunks.get()
            if chunk is None:
                self._ended = True
            else:
                self._buffer = chunk
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class WebmDecoder:
    """Each payload is the next chunk of one WebM (Matroska) stream with an Opus track."""

    def __init__(self, *, chunks: int = 64) -> None:
        self._pipe = _Pipe(chunks)
        self._frames: collections.deque[av.AudioFrame] = collections.deque()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="doorwarden-talk-webm", daemon=True)
        self._thread.start()

    def feed(self, payload: bytes) -> None:
        if self.error is not None:
            raise TalkError(f"{BAD_AUDIO} ({self.error})")
        try:
            self._pipe.chunks.put_nowait(payload)
        except queue.Full:
            # A stream cannot skip a chunk (the next would start mid-element): a flood
            # ends the talk rather than queueing without limit.
            raise TalkError("the talk audio came faster than it can be played") from None

    def take(self) -> list[av.AudioFrame]:
        if self.error is not None:
            raise TalkError(f"{BAD_AUDIO} ({self.error})")
        frames = []
        while self._frames:
            frames.append(self._frames.popleft())
        return frames

    def close(self) -> None:
        while True:  # make room for the end mark; what is queued is not wanted now
            try:
                self._pipe.chunks.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._pipe.chunks.get_nowait()
        self._thread.join(2.0)

    def _run(self) -> None:
        try:
            # probesize/analyzeduration small: the track's header says what it is, and
            # probing further would wait for seconds of speech before the first word.
            options = {"probesize": "4096", "analyzeduration": "0"}
            with av.open(self._pipe, "r", format="matroska", options=options) as container:
                if not container.streams.audio:
                    raise TalkError("the WebM stream has no audio track")
                stream = container.streams.audio[0]
                if stream.codec_context.name not in ("opus", "libopus"):
                    raise TalkError(f"the WebM audio is {stream.codec_context.name}, not Opus")
                for packet in container.demux(stream):
                    self._frames.extend(packet.decode())
        except TalkError as exc:
            self.error = str(exc)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.error = "not a WebM/Opus stream"
            log.info("talk.webm_failed", error=str(exc))


def decoder_for(codec: str) -> Decoder:
    if codec == "opus":
        return OpusDecoder()
    if codec == "webm":
        return WebmDecoder()
    raise TalkError(f"unknown talk codec {codec!r}")


class Resampler:
    """Frames at any rate and layout to the output's (format, layout, rate)."""

    def __init__(self, audio_format: tuple[str, str, int]) -> None:
        fmt, layout, rate = audio_format
        self._resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)

    def __call__(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        if frame is not None:
            frame.pts = None  # the input's clock is not the output's; the pacer keeps time
        return list(self._resampler.resample(frame))
