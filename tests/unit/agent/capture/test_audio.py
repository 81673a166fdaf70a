"""Camera audio in capture: AAC copied, G.711 and Opus transcoded to AAC-LC, on the video's
clock; a camera without audio asked for some; audio off means not demuxed at all."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.capture.audio import AAC_FRAME, AudioMuxer, audio_pts, mime_codec
from doorwarden.agent.capture.media import AudioInfo, AudioPacket, Sample, StreamInfo
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import BEEP_S, flash_box
from doorwarden.agent.config.models import FileSource
from tests.unit.agent.capture.sound import media_file, scene
from tests.unit.agent.samples import make_video


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


def read(path: Path, *, audio: bool = True, loop: bool = False) -> tuple[list[Sample], StreamInfo]:
    cfg = FileSource(kind="file", path=path, pace=False, loop=loop)
    samples: list[Sample] = []
    with open_source(cfg, audio=audio) as source:
        for sample in source.samples():
            samples.append(sample)
            if loop and sample.time > 14:
                break
        return samples, source.info


def aac_decode(info: AudioInfo, packets: list[AudioPacket]) -> tuple[np.ndarray, int]:
    """What an AAC decoder makes of the packets (mono float), and where the first is."""
    decoder = av.CodecContext.create("aac", "r")
    assert isinstance(decoder, av.AudioCodecContext)
    decoder.extradata = info.extradata
    pcm = [
        frame.to_ndarray()[0]
        for audio in packets
        for frame in decoder.decode(av.Packet(bytes(audio.packet)))
    ]
    return np.concatenate(pcm), info.sample_rate


@pytest.mark.parametrize(
    ("codec", "rate"),
    [("aac", 48_000), ("pcm_mulaw", 48_000), ("pcm_alaw", 48_000), ("libopus", 48_000)],
)
def test_audio_arrives_as_aac_on_the_videos_clock(files: Path, codec: str, rate: int) -> None:
    samples, info = read(media_file(files, codec))
    audio = info.audio
    assert isinstance(audio, AudioInfo)
    assert audio.source_codec == codec.removeprefix("lib")
    assert (audio.sample_rate, audio.channels) == (rate, 1)
    assert audio.extradata[0] >> 3 == 2  # AudioSpecificConfig: AAC-LC
    assert mime_codec(audio) == "mp4a.40.2"
    packets = [a for s in samples for a in s.audio]
    times = [a.time for a in packets]
    assert times == sorted(set(times))  # strictly increasing
    # Six seconds of sound; each sample's audio is what came since the frame before, and
    # files interleave their tracks in chunks of up to a second.
    assert 5.5 < len(packets) * AAC_FRAME / rate < 6.2
    for sample in samples:
        assert all(abs(a.time - sample.time) < 1.1 for a in sample.audio)
    pcm, sr = aac_decode(audio, packets)
    # The beeps: loud 1 kHz when the flash shows (both on the clock, which starts at the
    # first packet's decode time: 0.2 s before the first picture with B-frames), silence
    # between.
    [first, second] = flash_times(samples)
    start = packets[0].time
    onsets = beep_onsets(pcm, sr, start)
    assert onsets == pytest.approx([first, second], abs=0.01)
    at = round((first - start) * sr)
    beep = pcm[at + sr // 100 : at + round(BEEP_S * sr) - sr // 100]
    quiet = pcm[round((first + 1 - start) * sr) : round((first + 1.5 - start) * sr)]
    assert np.abs(beep).max() > 0.3 and np.abs(quiet).max() < 0.05
    spectrum = np.abs(np.fft.rfft(beep))
    assert abs(np.argmax(spectrum) * sr / len(beep) - 1000) < 30


def flash_times(samples: list[Sample]) -> list[float]:
    x, y, side = flash_box(scene())
    return [
        sample.frame_time(i, 10.0)
        for sample in samples
        for i, frame in enumerate(sample.frames)
        if frame.to_ndarray(format="rgb24")[y : y + side, x : x + side].mean() > 240
    ]


def beep_onsets(pcm: np.ndarray, sr: int, start: float) -> list[float]:
    loud = np.flatnonzero(np.abs(pcm) > 0.2) / sr + start
    return [float(loud[0]), *map(float, loud[1:][np.diff(loud) > 0.5])]


def test_aac_from_the_camera_is_copied_byte_for_byte(files: Path) -> None:
    path = media_file(files, "aac")
    samples, _ = read(path)
    copied = [bytes(a.packet) for s in samples for a in s.audio]
    with av.open(str(path)) as container:
        original = [bytes(p) for p in container.demux(audio=0) if p.size]
    assert copied and copied == original[-len(copied) :]
    assert len(original) - len(copied) <= 1  # at most the one before the first frame


def test_audio_off_is_not_even_demuxed(files: Path) -> None:
    samples, info = read(media_file(files, "pcm_mulaw"), audio=False)
    assert info.audio is None
    assert all(s.audio == [] and s.frame_times == [] for s in samples)
    assert sum(len(s.frames) for s in samples) == 60


def test_a_camera_without_audio_asked_for_audio_warns_once_and_records_video(
    tmp_path: Path,
) -> None:
    silent = make_video(tmp_path / "silent.mp4", seconds=2)
    with capture_logs() as logs:
        samples, info = read(silent, loop=True)
    assert info.audio is None
    assert sum(len(s.frames) for s in samples) > 100  # the video, looped, all of it
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["capture.no_audio"]  # once, not every loop
    assert "has no audio stream: recording video only" in warnings[0]["message"]


def test_synthetic_camera_without_its_tone_asked_for_audio(files: Path) -> None:
    with capture_logs() as logs, open_source(scene(audio=False, duration_s=1), audio=True) as src:
        assert src.info.audio is None
        assert sum(len(s.frames) for s in src.samples()) == 10
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["capture.no_audio"]


def test_a_looped_file_keeps_audio_time_increasing(files: Path) -> None:
    samples, _ = read(media_file(files, "pcm_alaw"), loop=True)
    times = [a.time for s in samples for a in s.audio]
    assert times == sorted(set(times))
    assert times[-1] > 12  # past two passes of six seconds
    # No gap or pile-up at the joins: one AAC frame (21 ms) apart throughout.
    gaps = np.diff(times)
    assert gaps.max() < 0.2 and np.median(gaps) == pytest.approx(AAC_FRAME / 48_000, abs=0.002)


def test_the_synthetic_flash_and_beep_coincide() -> None:
    cfg = scene(duration_s=4.5)
    _, _, side = flash_box(cfg)
    with open_source(cfg, audio=True) as source:
        assert source.info.audio is not None
        samples = list(source.samples())
        packets = [a for s in samples for a in s.audio]
        pcm, sr = aac_decode(source.info.audio, packets)
    # The synthetic clock starts at the first frame, and the decoder's delay (its frame
    # threads hand pictures out late) is undone by each frame's own time.
    assert flash_times(samples) == pytest.approx([2.0, 4.0])
    assert beep_onsets(pcm, sr, packets[0].time) == pytest.approx([2.0, 4.0], abs=0.005)
    # The square is small: under motion's default minimum area (0.2% of the image).
    assert side * side / (cfg.width * cfg.height) < 0.002


def test_audio_pts_and_the_muxer_keep_packets_in_order() -> None:
    info = AudioInfo(16_000, 1, bytes.fromhex("1408"), "pcm_mulaw")
    assert audio_pts(10.5, 10.0, info) == 8000
    assert mime_codec(AudioInfo(48_000, 2, bytes.fromhex("2b92"), "aac")) == "mp4a.40.5"
    out = av.open(io.BytesIO(), "w", format="mp4")
    muxer = AudioMuxer(out, info)
    payload = av.Packet(b"\x00" * 8)
    placed = [
        muxer.packet(AudioPacket(payload, t), start=10.0)
        for t in (9.9, 10.0, 10.0639, 10.128, 10.1, 10.5)
    ]
    pts = [None if p is None else p.pts for p in placed]
    # Before the start: dropped; a sample early: moved to abut; going back: dropped.
    assert pts == [None, 0, 1024, 2048, None, 8000]
    assert all(p is None or p.time_base == Fraction(1, 16_000) for p in placed)
    out.close()
