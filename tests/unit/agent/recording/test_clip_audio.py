"""Clips with the camera's sound: both writers add the AAC track, in sync with the
picture; the sidecar says so; a sealed clip with audio passes `doorwarden verify` and
decrypts to an MP4 PyAV decodes with both streams."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.media import Sample, StreamInfo
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.config.models import FileSource, RecordConfig
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore, Plan
from doorwarden.agent.delivery.sealer import SealedSpool
from doorwarden.agent.recording.clip_writer import ClipWriter, ReencodeWriter, StreamCopyWriter
from doorwarden.agent.recording.recorder import EventRecorder, FinishedClip
from doorwarden.agent.recording.spool import Spool
from doorwarden.cli.app import app
from doorwarden.crypto.keys import RecipientKey, b64e, key_id
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.seal import open_clip
from doorwarden.formats.clip_files import SealedPaths
from tests.unit.agent.capture.sound import beeps, flashes, media_file, offsets, streams

ZONE = [(0.5, 0.5), (0.9, 0.5), (0.9, 0.9), (0.5, 0.9)]
SYNC_S = 0.03  # a flash and its beep in a clip: within one AAC frame and a bit


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clip-audio")


@contextlib.contextmanager
def samples(path: Path, *, audio: bool = True) -> Iterator[tuple[list[Sample], StreamInfo]]:
    """All of the file's samples, with the source kept open: a stream copy copies from
    the demuxer's stream, which closing the source frees."""
    with open_source(FileSource(kind="file", path=path, pace=False), audio=audio) as source:
        yield list(source.samples()), source.info


def write(writer: ClipWriter, items: list[Sample], from_s: float) -> Path:
    for sample in items:
        if sample.time >= from_s:
            writer.write(sample)
    writer.close()
    return writer.path


@pytest.mark.parametrize("codec", ["aac", "pcm_mulaw", "libopus"])
@pytest.mark.parametrize("copy", [True, False], ids=["stream-copy", "re-encode"])
def test_a_clip_carries_the_sound_in_sync(
    files: Path, tmp_path: Path, codec: str, copy: bool
) -> None:
    out = tmp_path / "clip.mp4"
    writer: ClipWriter
    with samples(media_file(files, codec)) as (items, info):
        assert info.audio is not None and info.stream is not None
        if copy:
            writer = StreamCopyWriter(out, info.stream, info.fps, info.audio)
        else:
            mask = PrivacyMask([ZONE], info.width, info.height)  # zones hide video only
            writer = ReencodeWriter(out, info.width, info.height, info.fps, mask, info.audio)
        # From 1.5 s: the copy starts at the keyframe at 2 s, the re-encode at once; the
        # beeps (and flashes) at 2 and 4 s are in both.
        write(writer, items, 1.5)
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    assert writer.audio is not None and writer.audio.packets > 0
    assert len(offsets(out)) == 2
    assert all(abs(o) <= SYNC_S for o in offsets(out)), offsets(out)
    with av.open(str(out)) as clip:
        video, audio = clip.streams.video[0], clip.streams.audio[0]
        assert audio.codec_context.sample_rate == info.audio.sample_rate
        # The sound runs as long as the picture: nothing from before the first frame.
        v_end = float((video.duration or 0) * video.time_base)
        a_end = float((audio.duration or 0) * audio.time_base)
        assert abs(v_end - a_end) < 0.3, (v_end, a_end)
        assert float((audio.start_time or 0) * audio.time_base) >= 0


def test_without_audio_a_clip_has_one_track(files: Path, tmp_path: Path) -> None:
    with samples(media_file(files, "aac"), audio=False) as (items, info):
        assert info.stream is not None
        out = write(StreamCopyWriter(tmp_path / "clip.mp4", info.stream, info.fps), items, 0)
    assert streams(out) == [("video", "h264")]


def record(path: Path, spool: Spool, *, audio: bool) -> FinishedClip:
    record = RecordConfig(pre_roll_s=1, post_roll_s=1, min_clip_s=1, cooldown_s=0)
    finished = []
    with samples(path, audio=audio) as (items, info):
        recorder = EventRecorder("front", info, record, PrivacyMask.none(), spool)
        for sample in items:
            if abs(sample.time - 2.5) < 0.01:
                recorder.trigger("ring")
            done = recorder.push(sample, motion=False)
            finished += [done] if done else []
    assert len(finished) == 1
    return finished[0]


@pytest.mark.parametrize("audio", [True, False])
def test_the_sidecar_says_whether_the_clip_has_sound(
    files: Path, tmp_path: Path, audio: bool
) -> None:
    clip = record(media_file(files, "pcm_alaw"), Spool(tmp_path), audio=audio)
    sidecar = json.loads(clip.entry.sidecar.read_text())
    assert sidecar["audio"] is audio
    assert len(streams(clip.entry.clip)) == (2 if audio else 1)
    if audio:
        assert beeps(clip.entry.clip) and flashes(clip.entry.clip)


def test_a_sealed_clip_with_sound_passes_verify_and_decrypts_with_both_streams(
    files: Path, tmp_path: Path
) -> None:
    household = RecipientKey.generate()
    store = IdentityStore(tmp_path / "state")
    device_key = store.signing_key()
    identity = DeviceIdentity(
        server="https://doorwarden.example", device_id="dev-1", household_id="hh-1",
        token="dwd_secret", mode="standard",
        recipients=[(key_id(household.public), household.public)], plan=Plan("recording", 30),
    )  # fmt: skip
    store.save(identity)
    spool = Spool(tmp_path / "spool")
    clip = record(media_file(files, "aac"), spool, audio=True)
    plain = clip.entry.clip.read_bytes()
    sealed = SealedSpool(spool.directory, identity, device_key)
    sealed.recover(spool)
    sealed.seal_pending(spool)
    key_file = tmp_path / "household.key"
    key_file.write_bytes(household.private_bytes())
    result = CliRunner().invoke(
        app,
        [
            "verify", str(sealed.directory), "--device-key", f"dev-1={b64e(device_key.public)}",
            "--key", str(key_file), "--require-decrypt",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "decrypt ✓" in result.output and result.output.splitlines()[-1] == "PASSED"
    paths = SealedPaths(sealed.directory, 0)
    signed = SignedManifest.parse(json.loads(paths.manifest.read_bytes()))
    opened = b"".join(open_clip(signed, device_key.public, [paths.clip.read_bytes()], household))
    assert opened == plain
    assert streams(opened) == [("video", "h264"), ("audio", "aac")]
    assert all(abs(o) <= SYNC_S for o in offsets(opened))
