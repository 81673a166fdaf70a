"""What chromium's fake microphone plays (`--use-file-for-fake-audio-capture`): a WAV of
tone bursts, written here for the talk tests and the talk latency bench."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 48_000


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """Mono 16-bit PCM of `samples` in -1..1."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def tone_bursts(path: Path, hz: float) -> Path:
    """2 s: 0.3 s of a tone, 0.1 s of silence, five times (chromium loops the file).
    Bursts rather than one long tone: noise suppression learns a steady sound as noise."""
    t = np.arange(int(0.3 * RATE)) / RATE
    burst = 0.5 * np.sin(2 * np.pi * hz * t)
    return write_wav(path, np.tile(np.concatenate([burst, np.zeros(int(0.1 * RATE))]), 5))
