"""What the talk tests share: the ONVIF camera (onvif_rtsp_server.py) as a subprocess,
what it recorded, and talk audio as a browser sends it (Opus packets, WebM chunks)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).parents[1] / "onvif_rtsp_server.py"
USER, PASSWORD = "doorcam", "Pa55-s3cret-xyz"
RATE = 48_000
TONE_HZ = 1000.0


def gst_onvif_missing() -> str | None:
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); "
            "from gi.repository import GstRtspServer; GstRtspServer.RTSPOnvifServer",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode:
        return (
            "GStreamer's ONVIF RTSP server not importable: "
            + (probe.stderr.strip().splitlines() or ["?"])[-1]
        )
    return None


def need_gst_onvif() -> None:
    missing = gst_onvif_missing()
    if missing is None:
        return
    reason = f"{missing} (Debian: gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)  # in CI the server is part of the environment
    print(f"skipping backchannel tests: {reason}")  # noqa: T201 - a printed reason
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Camera:
    """The ONVIF camera with a backchannel, recording what it hears under `outdir`."""

    def __init__(self, outdir: Path, *args: str) -> None:
        self.port = free_port()
        self.outdir = outdir
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port), str(outdir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.kill()
            pytest.fail(f"the ONVIF RTSP server did not start ({' '.join(args)})")

    def url(self, user: str = USER, password: str = PASSWORD) -> str:
        return f"rtsp://{user}:{password}@127.0.0.1:{self.port}/cam"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def events(self) -> list[dict[str, Any]]:
        return _jsonl(self.outdir / "events.jsonl")

    def methods(self) -> list[str]:
        return [e["method"] for e in self.events()]

    def buffers(self) -> list[dict[str, Any]]:
        return _jsonl(self.outdir / "buffers.jsonl")

    def audio(self) -> tuple[np.ndarray, int]:
        """What the camera heard (float, -1..1) and its rate."""
        path = self.outdir / "audio.s16"
        data = np.frombuffer(path.read_bytes(), dtype="<i2") if path.exists() else np.zeros(0)
        buffers = self.buffers()
        rate = int(buffers[0]["rate"]) if buffers else 0
        return data.astype(np.float64) / 32768, rate


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def peak_hz(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency (Hz) in `samples`."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[:3] = 0  # DC
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@dataclass
class Tone:
    hz: float = TONE_HZ
    amplitude: float = 0.4

    def frames(self, seconds: float, *, frame: int = 960) -> list[av.AudioFrame]:
        """48 kHz mono s16 frames of `frame` samples."""
        out = []
        total = int(seconds * RATE)
        for start in range(0, total, frame):
            t = (np.arange(frame) + start) / RATE
            pcm = (np.sin(2 * np.pi * self.hz * t) * self.amplitude * 32767).astype(np.int16)
            f = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            f.sample_rate = RATE
            out.append(f)
        return out


def opus_packets(seconds: float, tone: Tone | None = None) -> list[bytes]:
    """Raw Opus packets of a tone, 20 ms each, as WebCodecs' AudioEncoder makes them."""
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate, encoder.layout, encoder.format = RATE, "mono", "s16"
    encoder.bit_rate = 32_000
    encoder.open()
    packets = []
    for frame in (tone or Tone()).frames(seconds):
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def webm_stream(seconds: float, tone: Tone | None = None) -> bytes:
    """One WebM/Opus stream of a tone, as MediaRecorder writes it."""
    buffer = io.BytesIO()
    # live: no seeking back to patch sizes, as a MediaRecorder stream is written
    with av.open(buffer, "w", format="webm", options={"live": "1"}) as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        stream.bit_rate = 32_000
        for frame in (tone or Tone()).frames(seconds):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]
