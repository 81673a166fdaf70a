"""Talk audio from the browser, decoded: raw Opus packets and a WebM/Opus stream cut in
chunks anywhere, resampled to what an output takes; bad audio is a clear TalkError."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest

from doorwarden.agent.talk.decode import (
    BAD_PACKETS_LIMIT,
    OpusDecoder,
    Resampler,
    WebmDecoder,
    decoder_for,
)
from doorwarden.agent.talk.output import TalkError
from tests.unit.agent.talk.rig import RATE, Tone, chunks, opus_packets, peak_hz, webm_stream


def pcm(frames: list[av.AudioFrame], rate: int) -> np.ndarray:
    resample = Resampler(("s16", "mono", rate))
    out = [f.to_ndarray().reshape(-1) for frame in frames for f in resample(frame)]
    return np.concatenate(out).astype(np.float64) / 32768


def test_opus_packets_decode_to_the_tone_they_carry_at_the_output_rate() -> None:
    decoder = OpusDecoder()
    for packet in opus_packets(1.0, Tone(hz=700)):
        decoder.feed(packet)
    frames = decoder.take()
    assert sum(f.samples for f in frames) == RATE  # 50 packets of 20 ms
    assert decoder.take() == []  # taken once
    audio = pcm(frames, 8000)
    assert len(audio) == pytest.approx(8000, abs=64)
    assert peak_hz(audio[800:], 8000) == pytest.approx(700, abs=10)
    assert np.sqrt(np.mean(audio[800:] ** 2)) > 0.2  # the tone, not a whisper


def test_a_bad_packet_is_skipped_and_a_run_of_them_is_a_clear_error() -> None:
    decoder = OpusDecoder()
    good = opus_packets(0.2)
    invalid = b"\x03\x00"  # code 3 (several frames) with a count of none: never Opus
    decoder.feed(b"")  # nothing: skipped, and the decoder is not drained by it
    decoder.feed(invalid)
    decoder.feed(good[0])
    assert decoder.take()
    for _ in range(BAD_PACKETS_LIMIT - 1):
        decoder.feed(invalid)
    with pytest.raises(TalkError, match="could not be decoded"):
        decoder.feed(invalid)


def test_a_webm_stream_cut_anywhere_decodes_soon_after_its_first_chunks() -> None:
    stream = webm_stream(2.0, Tone(hz=1200))
    decoder = WebmDecoder()
    frames = []
    first_at = None
    try:
        for index, chunk in enumerate(chunks(stream, 333)):  # not on element boundaries
            decoder.feed(chunk)
            time.sleep(0.005)
            got = decoder.take()
            if got and first_at is None:
                first_at = index
            frames += got
        deadline = time.monotonic() + 2
        while sum(f.samples for f in frames) < 2 * RATE and time.monotonic() < deadline:
            time.sleep(0.01)
            frames += decoder.take()
    finally:
        decoder.close()
    assert first_at is not None
    assert first_at <= 5  # the demuxer does not wait for seconds of audio to probe
    assert sum(f.samples for f in frames) == 2 * RATE
    audio = pcm(frames, 16000)
    assert peak_hz(audio, 16000) == pytest.approx(1200, abs=10)


def test_a_stream_that_is_not_webm_is_a_clear_error() -> None:
    decoder = WebmDecoder()
    try:
        decoder.feed(b"this is not matroska at all" * 40)
        deadline = time.monotonic() + 2
        while decoder.error is None and time.monotonic() < deadline:
            decoder.feed(b"this is not matroska at all" * 40)
            time.sleep(0.01)
        with pytest.raises(TalkError, match="could not be decoded"):
            decoder.take()
    finally:
        decoder.close()


def test_an_unknown_codec_is_refused() -> None:
    with pytest.raises(TalkError, match="unknown talk codec"):
        decoder_for("mp3")
