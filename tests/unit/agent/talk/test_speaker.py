"""The local speaker output: through PortAudio where it is installed (this machine has no
sound card, so the real library's answer is a clear "cannot be opened"), what it writes
(with a stand-in sounddevice), and clear errors when sounddevice or PortAudio is missing."""

from __future__ import annotations

import importlib
import types
from typing import Any

import pytest

from doorwarden.agent.talk import speaker as speaker_module
from doorwarden.agent.talk.decode import Resampler
from doorwarden.agent.talk.output import TalkError
from doorwarden.agent.talk.speaker import RATE, Speaker
from tests.unit.agent.talk.rig import Tone


def test_the_real_portaudio_without_a_device_is_a_clear_error() -> None:
    try:
        sounddevice = importlib.import_module("sounddevice")
    except (ImportError, OSError) as exc:
        reason = f"sounddevice with PortAudio is not installed here ({exc})"
        print(f"skipping: {reason}")  # noqa: T201 - a printed reason, not a silent pass
        pytest.skip(reason)
    outputs = [d for d in sounddevice.query_devices() if d["max_output_channels"] > 0]
    if outputs:
        pytest.skip("this machine has a sound card: the no-device error cannot be shown")
    with pytest.raises(TalkError, match=r"^the default speaker cannot be opened: "):
        Speaker().open()
    with pytest.raises(TalkError, match=r"^speaker 'hw:9' cannot be opened: "):
        Speaker("hw:9").open()


class FakeStream:
    def __init__(self, **options: Any) -> None:
        self.options = options
        self.written: list[bytes] = []
        self.state = "new"

    def start(self) -> None:
        self.state = "started"

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.state = "aborted"

    def close(self) -> None:
        self.state += ",closed"


def test_the_speaker_plays_48_khz_mono_and_stops_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    streams: list[FakeStream] = []

    def stream(**options: Any) -> FakeStream:
        streams.append(FakeStream(**options))
        return streams[-1]

    fake = types.SimpleNamespace(RawOutputStream=stream, PortAudioError=OSError)
    monkeypatch.setattr(speaker_module, "load_sounddevice", lambda: fake)
    out = Speaker(3)
    out.open()
    resample = Resampler(out.audio_format)
    for frame in Tone().frames(0.1):
        for f in resample(frame):
            out.write(f)
    out.close()
    [s] = streams
    assert s.options == {"samplerate": RATE, "channels": 1, "dtype": "int16", "device": 3,
                         "latency": "low"}  # fmt: skip
    assert sum(len(b) for b in s.written) == 0.1 * RATE * 2  # 16-bit samples
    assert s.state == "aborted,closed"
    with pytest.raises(TalkError, match="closed"):
        out.write(Tone().frames(0.02)[0])


def test_without_sounddevice_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> None:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(TalkError, match=r"pip install 'doorwarden\[agent-talk\]'"):
        Speaker().open()


def test_without_portaudio_the_error_names_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str) -> None:
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(importlib, "import_module", no_library)
    with pytest.raises(TalkError, match="libportaudio2"):
        Speaker().open()
