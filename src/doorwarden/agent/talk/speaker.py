"""A local speaker as the talk output (a doorbell built on a board with a speaker), through
`sounddevice` (PortAudio): an optional dependency, `pip install 'doorwarden[agent-talk]'`,
imported only when a camera's talk output is a speaker.

The device's buffer paces the audio: `write` blocks while it is full.
"""

from __future__ import annotations

import importlib
from typing import Any

import av

from doorwarden.agent.talk.output import TalkError

RATE = 48_000  # Opus's own rate: no resampling on the way


def load_sounddevice() -> Any:
    """The sounddevice module, or TalkError saying what to install."""
    try:
        return importlib.import_module("sounddevice")
    except ImportError:
        raise TalkError(
            "the speaker output needs the sounddevice package on the camera box: "
            "pip install 'doorwarden[agent-talk]'"
        ) from None
    except OSError as exc:  # sounddevice is there, the PortAudio library is not
        raise TalkError(
            f"the speaker output needs PortAudio on the camera box (Debian: libportaudio2): {exc}"
        ) from None


class Speaker:
    """Talk audio out of `device` (a PortAudio device name or index; None: the default)."""

    audio_format = ("s16", "mono", RATE)

    def __init__(self, device: str | int | None = None) -> None:
        self.device = device
        self._stream: Any = None

    def open(self) -> None:
        sounddevice = load_sounddevice()
        try:
            stream = sounddevice.RawOutputStream(
                samplerate=RATE, channels=1, dtype="int16", device=self.device, latency="low"
            )
            stream.start()
        except (sounddevice.PortAudioError, ValueError) as exc:
            which = "the default speaker" if self.device is None else f"speaker {self.device!r}"
            raise TalkError(f"{which} cannot be opened: {exc}") from None
        self._stream = stream

    def write(self, frame: av.AudioFrame) -> None:
        if self._stream is None:
            raise TalkError("the speaker is closed")
        self._stream.write(bytes(frame.planes[0])[: frame.samples * 2])

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()  # now: the rest of the buffer is a word already cut
            finally:
                stream.close()
