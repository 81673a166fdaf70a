"""End-to-end clips are sealed as fragmented MP4, so that a member's browser can play one
while it downloads and decrypts (recording/fragment.py, static/e2e/clipstream.js); standard
clips are sealed as recorded. Real H.264 from libx264, the real sealer, real crypto: each
sealed clip is opened with the member's key as the page would, and its boxes and packets
are compared with the recording's.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.delivery.identity import TMP_PREFIX
from doorwarden.agent.delivery.sealer import CRASH_STEPS, SealedSpool
from doorwarden.agent.recording.spool import Spool
from doorwarden.crypto.seal import open_clip
from doorwarden.formats.clip_files import committed, read_manifest
from tests.unit.agent.delivery.test_sealer import Rig, add_clips, new_rig

FPS = 10
GOP = 5  # a keyframe at least every half second: several fragments in a 2 s clip


def record_mp4(path: Path, seconds: float = 2.0, *, audio: bool = False) -> bytes:
    """A small H.264 MP4 as the recorder writes it (faststart), optionally with AAC."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=FPS, options={"g": str(GOP), "bf": "0"})
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        sound = out.add_stream("aac", rate=48_000) if audio else None
        for n in range(int(seconds * FPS)):
            image = np.full((96, 160, 3), (n * 12) % 255, np.uint8)
            image[:, (n * 7) % 160 :] = 40
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            samples = int(seconds * 48_000)
            tone = np.sin(np.arange(samples) * 2 * np.pi * 440 / 48_000).astype(np.float32)
            for at in range(0, samples - 1024, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, at : at + 1024], "fltp", "mono")
                chunk.sample_rate, chunk.pts = 48_000, at
                out.mux(sound.encode(chunk))
            out.mux(sound.encode())
    return path.read_bytes()


def commit_mp4(spool: Spool, data: bytes) -> None:
    """A plain entry of this MP4, as the recorder commits one."""
    add_clips(spool, [len(data)], data=data)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return new_rig(tmp_path)


def plaintexts(rig: Rig) -> list[bytes]:
    out = []
    for paths in committed(rig.spool_dir / "sealed"):
        signed = read_manifest(paths.manifest)
        blocks = [paths.clip.read_bytes()]
        out.append(b"".join(open_clip(signed, rig.key.public, blocks, rig.household)))
    return out


def boxes(data: bytes) -> list[str]:
    names, at = [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        names.append(kind.decode())
        at += size
    return names


def packets(data: bytes) -> list[tuple[str, bytes, bool]]:
    """Every packet's stream kind, bytes and keyframe flag, in order. Not timestamps: the
    fragmented muxer shifts them to start at zero (the recording's edit list does it
    there) and may stretch the first sample over the gap; the media is the same."""
    with av.open(io.BytesIO(data), "r") as container:
        return [
            (p.stream.type, bytes(p), p.is_keyframe) for p in container.demux() if p.dts is not None
        ]


def in_e2e(rig: Rig) -> Rig:
    rig.identity = replace(rig.identity, mode="e2e")
    rig.store.save(rig.identity)
    return rig


@pytest.mark.parametrize("audio", [False, True], ids=["video", "video+audio"])
def test_an_end_to_end_clip_is_sealed_as_fragmented_mp4_with_the_same_packets(
    rig: Rig, tmp_path: Path, audio: bool
) -> None:
    recorded = record_mp4(tmp_path / "clip.mp4", audio=audio)
    commit_mp4(rig.spool, recorded)
    with capture_logs() as logs:
        in_e2e(rig).sealed().seal_pending(rig.spool)
    [plain] = plaintexts(rig)
    layout = boxes(plain)
    tracks = 2 if audio else 1
    # The index up front, one `sidx` per track, then the fragments.
    assert layout[: 3 + tracks] == ["ftyp", "moov", *["sidx"] * tracks, "moof"], layout
    keyframes = [p for p in packets(recorded) if p[0] == "video" and p[2]]
    assert layout.count("moof") == len(keyframes) >= 2  # one fragment per keyframe
    assert sorted(packets(plain)) == sorted(packets(recorded))
    events = [e["event"] for e in logs]
    assert "spool.clip_changed" not in events and "spool.fragment_failed" not in events
    # The remux's temporary file is gone with the seal.
    assert not [p for p in (rig.spool_dir / "sealed").iterdir() if p.name.startswith(TMP_PREFIX)]


def test_a_standard_clip_is_sealed_byte_for_byte_as_recorded(rig: Rig, tmp_path: Path) -> None:
    recorded = record_mp4(tmp_path / "clip.mp4")
    commit_mp4(rig.spool, recorded)
    rig.sealed().seal_pending(rig.spool)
    assert plaintexts(rig) == [recorded]


def test_a_clip_ffmpeg_cannot_remux_is_sealed_as_recorded_and_said(rig: Rig) -> None:
    originals = add_clips(rig.spool, [4000])  # random bytes: no MP4 at all
    with capture_logs() as logs:
        in_e2e(rig).sealed().seal_pending(rig.spool)
    [plain] = plaintexts(rig)
    assert hashlib.sha256(plain).hexdigest() == originals[0]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["spool.fragment_failed"]


def test_a_recording_changed_before_the_remux_is_still_reported(rig: Rig, tmp_path: Path) -> None:
    commit_mp4(rig.spool, record_mp4(tmp_path / "clip.mp4"))
    entry = rig.spool.entries()[0]
    altered = bytearray(entry.clip.read_bytes())
    altered[-100] ^= 0xFF  # inside the last frame: still an MP4 FFmpeg remuxes
    entry.clip.write_bytes(bytes(altered))
    with capture_logs() as logs:
        in_e2e(rig).sealed().seal_pending(rig.spool)
    assert "spool.clip_changed" in [e["event"] for e in logs]


@pytest.mark.parametrize("step", CRASH_STEPS[:3])
def test_a_crash_while_sealing_a_remux_leaves_no_debris_and_no_double(
    rig: Rig, tmp_path: Path, step: str
) -> None:
    """Killed with the remux on disk (before and while its sealed copy is written): the
    next start clears the remux and seals the clip once."""
    recorded = record_mp4(tmp_path / "clip.mp4")
    commit_mp4(rig.spool, recorded)
    in_e2e(rig)
    died = rig.run_agent(step)
    assert died.returncode == -9, died.stderr
    leftovers = [p for p in (rig.spool_dir / "sealed").iterdir() if p.name.endswith(".fmp4")]
    assert leftovers  # the kill did land with the remux in place
    sealed = SealedSpool(rig.spool_dir, rig.identity, rig.key)
    recovery = sealed.recover(rig.spool)
    assert set(leftovers) <= set(recovery.removed)
    sealed.seal_pending(rig.spool)
    [plain] = plaintexts(rig)
    assert sorted(packets(plain)) == sorted(packets(recorded))
    assert not [p for p in (rig.spool_dir / "sealed").iterdir() if p.name.startswith(TMP_PREFIX)]
