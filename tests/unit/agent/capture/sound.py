"""Helpers for the audio tests: files with the synthetic tone track in the codecs cameras
send, and where the beep and the flash are in what a player decodes.

The synthetic scene with `audio` beeps (1 kHz, 0.1 s) every `beep_every_s` from the first
interval on, and shows a white square in the top-left corner in the frames of each beep's
start (agent/capture/synthetic.py), so a decoded file says exactly how far apart they are.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from doorwarden.agent.capture.synthetic import encode_h264, flash_box
from doorwarden.agent.config.models import SyntheticSource

SUFFIX = {"aac": ".mp4", "pcm_mulaw": ".mov", "pcm_alaw": ".mov", "libopus": ".mkv"}


def scene(**overrides: object) -> SyntheticSource:
    settings: dict[str, object] = {
        "kind": "synthetic", "width": 320, "height": 180, "fps": 10.0, "duration_s": 6.0,
        "scene": "static", "audio": True, "beep_every_s": 2.0,
    }  # fmt: skip
    return SyntheticSource.model_validate(settings | overrides)


def media_file(directory: Path, codec: str, cfg: SyntheticSource | None = None) -> Path:
    path = directory / f"tone-{codec}{SUFFIX[codec]}"
    if not path.exists():
        encode_h264(cfg or scene(), path, audio_codec=codec)
    return path


def beeps(path: Path | bytes, level: float = 0.2) -> list[float]:
    """Start times (s) of the beeps in the file's first audio stream, as decoded."""
    import io

    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    onsets: list[float] = []
    with av.open(source) as container:
        loud_until = -1.0
        for frame in container.decode(audio=0):
            pcm = np.abs(frame.to_ndarray().astype(np.float32)).max(axis=0)
            if frame.format.name.startswith("s16"):
                pcm /= 32768.0
            start = float(frame.time or 0.0)
            for i in np.flatnonzero(pcm > level):
                t = start + i / frame.sample_rate
                if t > loud_until + 0.5:
                    onsets.append(t)
                loud_until = t
    return onsets


def flashes(path: Path | bytes, cfg: SyntheticSource | None = None) -> list[float]:
    """Times (s) of the frames in which the flash square appears (its first frame each)."""
    import io

    x, y, side = flash_box(cfg or scene())
    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    found: list[float] = []
    with av.open(source) as container:
        last = -10.0
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            patch = rgb[y + 2 : y + side - 2, x + 2 : x + side - 2]
            t = float(frame.time or 0.0)
            if patch.mean() > 220:
                if t > last + 0.5:
                    found.append(t)
                last = t
    return found


def streams(path: Path | bytes) -> list[tuple[str, str]]:
    import io

    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    with av.open(source) as container:
        return [(s.type, s.codec_context.name) for s in container.streams]


def offsets(path: Path | bytes, cfg: SyntheticSource | None = None) -> list[float]:
    """For each flash, how far the nearest beep is from it (s; positive: audio late)."""
    heard, seen = beeps(path), flashes(path, cfg)
    assert heard and seen, (heard, seen)
    return [min(heard, key=lambda b, f=f: abs(b - f)) - f for f in seen]
