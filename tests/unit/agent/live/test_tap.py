"""The live tap: real H.264 in, fragmented MP4 out, decoded back with PyAV.

The source is 10 fps with a keyframe every 10 frames, and each frame carries its own
index as a bar code (samples.py), so a test can tell exactly which frames a viewer got.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.media import Sample
from doorwarden.agent.capture.source import VideoSource
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.config.models import FileSource
from doorwarden.agent.live import fmp4
from doorwarden.agent.live.fmp4 import codec_string, is_keyframe_fragment
from doorwarden.agent.live.tap import Fragment, InitSegment, LiveOutput, LiveTap
from tests.unit.agent.samples import SQUARE_RGB, make_video, read_index

W, H, FPS, GOP = 320, 240, 10, 10
# Across the square's path (it sweeps the middle band), as in test_privacy.py.
ZONE = [(101 / W, 91 / H), (221 / W, 91 / H), (221 / W, 161 / H), (131 / W, 161 / H)]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("live") / "src.mp4", seconds=5, gop=GOP)


def _samples(path: Path) -> Iterator[tuple[VideoSource, Sample]]:
    source = open_source(FileSource(kind="file", path=path, pace=False))
    try:
        for sample in source.samples():
            yield source, sample
    finally:
        source.close()


def _run(path: Path, tap: LiveTap, out: list[LiveOutput], start_at: int | None = None) -> list[int]:
    """Feed the whole file, starting the tap before sample `start_at`; the number of
    outputs each sample produced from there on."""
    produced = []
    for index, (source, sample) in enumerate(_samples(path)):
        if index == start_at:
            tap.start()
        before = len(out)
        tap.feed(sample, source.info)
        if start_at is not None and index >= start_at:
            produced.append(len(out) - before)
    return produced


def _play(outputs: list[LiveOutput]) -> list[av.VideoFrame]:
    """What a viewer decodes: the init segment and every fragment after it."""
    init = outputs[0]
    assert isinstance(init, InitSegment)
    data = init.data + b"".join(o.data for o in outputs[1:] if isinstance(o, Fragment))
    with av.open(io.BytesIO(data)) as container:
        return list(container.decode(video=0))


def _box_types(data: bytes) -> list[str]:
    """Top-level MP4 box types, parsed here independently of the code under test."""
    types, pos = [], 0
    while pos + 8 <= len(data):
        types.append(data[pos + 4 : pos + 8].decode("latin-1"))
        pos += max(int.from_bytes(data[pos : pos + 4], "big"), 8)
    return types


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return np.asarray(frame.to_ndarray(format="rgb24"))


def test_an_unwatched_tap_only_keeps_references_to_the_last_gop(video: Path) -> None:
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    _run(video, tap, out)
    assert out == []
    assert not tap.muxing and not tap.running
    # 50 frames, keyframes at 0, 10, ... 40: the cache holds frames 40..49 and no pictures.
    assert tap.cached == GOP


def test_a_viewer_gets_the_init_then_the_cached_gop_at_once(video: Path) -> None:
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    _run(video, tap, out, start_at=25)
    init, first = out[0], out[1]
    assert isinstance(init, InitSegment) and isinstance(first, Fragment)
    assert first.keyframe
    assert _box_types(init.data) == ["ftyp", "moov"]
    assert _box_types(first.data) == ["moof", "mdat"]
    assert all(isinstance(o, Fragment) for o in out[1:])
    frames = _play(out)
    assert (frames[0].width, frames[0].height) == (W, H)
    # From the keyframe before the start (20), every frame in order; the last one is
    # still in the muxer (it writes a frame's fragment when the next frame comes).
    assert [read_index(_rgb(f)) for f in frames] == list(range(20, 49))
    assert float(frames[0].time or 0) == 0.0  # the viewer's timeline starts at 0
    keyframes = [o.keyframe for o in out[1:] if isinstance(o, Fragment)]
    assert keyframes == [i % GOP == 0 for i in range(20, 49)]


def test_one_fragment_comes_out_per_frame_as_it_is_fed(video: Path) -> None:
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    per_packet = []
    for index, (source, sample) in enumerate(_samples(video)):
        if index == 25:
            tap.start()
            # The init segment and the cached frames 20..23 at once; 24's fragment
            # waits for the next frame, which gives the muxer its duration.
            assert isinstance(out[0], InitSegment) and len(out) == 5
        before = len(out)
        tap.feed(sample, source.info)
        if index >= 25 and sample.packet is not None:
            per_packet.append(len(out) - before)
    # Each frame pushes out exactly the fragment of the frame before it: no batching.
    assert per_packet == [1] * 25
    assert tap.fragments == 29
    sizes = [len(o.data) for o in out[1:]]
    assert all(100 < size < 20_000 for size in sizes)


def test_started_before_any_sample_the_stream_begins_at_the_first_keyframe(video: Path) -> None:
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    tap.start()
    assert out == []  # no stream known yet: nothing to describe
    _run(video, tap, out)
    assert isinstance(out[0], InitSegment)
    assert [read_index(_rgb(f)) for f in _play(out)] == list(range(49))


def test_the_mime_type_names_the_streams_profile_and_level(video: Path) -> None:
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    _run(video, tap, out, start_at=5)
    init = out[0]
    assert isinstance(init, InitSegment)
    with av.open(str(video)) as container:
        ctx = container.streams.video[0].codec_context
        avcc = ctx.extradata
        profile = ctx.profile
    assert avcc is not None and avcc[0] == 1
    assert init.mime == f'video/mp4; codecs="avc1.{avcc[1:4].hex()}"'
    # ultrafast is Constrained Baseline: profile_idc 66 (0x42), constraint_set1 (0x40).
    assert profile == "Constrained Baseline" and init.mime.startswith('video/mp4; codecs="avc1.42')
    assert (init.width, init.height) == (W, H)
    assert codec_string(b"no avcC in here") is None


def test_privacy_zones_are_black_in_what_the_viewer_decodes(video: Path) -> None:
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append, mask=PrivacyMask([ZONE], W, H))
    _run(video, tap, out, start_at=25)
    first = out[1]
    assert isinstance(first, Fragment) and first.keyframe  # re-encoded: a keyframe at once
    frames = [_rgb(f) for f in _play(out)]
    assert len(frames) >= 24
    # The zone's own pixels, rasterised independently of the code under test, shrunk by
    # a pixel: the encoder may blur the outermost edge.
    zone = np.zeros((H, W), np.uint8)
    cv2.fillPoly(zone, [np.round(np.array(ZONE) * [W, H]).astype(np.int32)], 1)
    inside = cv2.erode(zone, np.ones((3, 3), np.uint8)).astype(bool)
    outside = ~cv2.dilate(zone, np.ones((9, 9), np.uint8)).astype(bool)
    square_seen = 0
    for rgb in frames:
        assert rgb[inside].max() < 25, "masked pixels reached the viewer"
        assert rgb[outside].mean() > 50
        r, g, b = (rgb[..., i].astype(int) for i in range(3))
        square = (abs(r - SQUARE_RGB[0]) < 40) & (abs(g - SQUARE_RGB[1]) < 40) & (b > 150)
        square_seen += int(square[outside].sum() > 100)
    assert square_seen  # the square is visible where it is not masked


def test_stopping_and_starting_again_gives_a_fresh_init_segment(video: Path) -> None:
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    for i, (source, sample) in enumerate(_samples(video)):
        if i == 12:
            tap.start()
        if i == 22:
            tap.stop()
            stopped_at = len(out)
        if i == 33:
            assert len(out) == stopped_at, "output after stop"
            restarted_at = len(out)
            tap.start()
        tap.feed(sample, source.info)
    again = out[restarted_at:]
    assert isinstance(again[0], InitSegment)
    assert isinstance(again[1], Fragment) and again[1].keyframe
    assert [read_index(_rgb(f)) for f in _play(again)] == list(range(30, 49))


def test_a_new_stream_restarts_the_viewer_with_a_new_init_segment(
    video: Path, tmp_path: Path
) -> None:
    """A camera reconnecting may come back with other parameters (here: another size)."""
    other = make_video(tmp_path / "other.mp4", width=160, height=128, seconds=2, gop=GOP)
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    _run(video, tap, out, start_at=3)
    switched = len(out)
    _run(other, tap, out)
    init = out[switched]
    assert isinstance(init, InitSegment) and (init.width, init.height) == (160, 128)
    frames = _play(out[switched:])
    assert (frames[0].width, frames[0].height) == (160, 128)
    assert len(frames) == 19


def test_a_looped_file_keeps_the_viewers_clock_going_forward(video: Path) -> None:
    """A file camera that loops restarts its timestamps; the viewer's must not."""
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    source = open_source(FileSource(kind="file", path=video, pace=False, loop=True))
    try:
        for index, sample in enumerate(source.samples()):
            if index == 25:
                tap.start()
            tap.feed(sample, source.info)
            if index == 130:
                break
    finally:
        source.close()
    assert sum(isinstance(o, InitSegment) for o in out) == 1  # one stream, not restarted
    frames = _play(out)
    indices = [read_index(_rgb(f)) for f in frames]
    assert indices == [(20 + i) % 50 for i in range(len(indices))] and len(indices) > 100
    times = [float(f.time or 0) for f in frames]
    assert all(b > a for a, b in itertools.pairwise(times))


def test_b_frames_are_stream_copied_in_order(tmp_path: Path) -> None:
    video = make_video(tmp_path / "b.mp4", seconds=3, gop=GOP, bframes=2)
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    _run(video, tap, out, start_at=12)
    indices = [read_index(_rgb(f)) for f in _play(out)]
    assert indices[0] == 10 and indices == sorted(indices) and len(indices) >= 17


def test_a_codec_browsers_cannot_play_is_re_encoded_to_h264(tmp_path: Path) -> None:
    path = tmp_path / "mpeg4.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), i * 10, np.uint8), "rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    _run(path, tap, out, start_at=5)
    init = out[0]
    assert isinstance(init, InitSegment) and 'codecs="avc1.' in init.mime
    with av.open(io.BytesIO(init.data + b"".join(o.data for o in out[1:]))) as played:
        assert played.streams.video[0].codec_context.name == "h264"
        assert len(list(played.decode(video=0))) >= 14


def test_keyframe_flags_are_read_from_the_fragment_itself(video: Path) -> None:
    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    _run(video, tap, out, start_at=10)
    fragments = [o for o in out if isinstance(o, Fragment)]
    assert is_keyframe_fragment(fragments[0].data)
    assert not is_keyframe_fragment(fragments[1].data)
    assert not is_keyframe_fragment(b"")


# -- with the camera's sound ------------------------------------------------------------


@pytest.fixture(scope="module")
def toned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.unit.agent.capture.sound import media_file

    return media_file(tmp_path_factory.mktemp("live-audio"), "aac")


def _run_audio(path: Path, tap: LiveTap, out: list[LiveOutput], *, copy: bool) -> list[int]:
    """Feed the file with its audio from sample 25 on; the video frames (by the video
    track's trun) each sample pushed out."""
    per_sample = []
    with open_source(FileSource(kind="file", path=path, pace=False), audio=True) as source:
        info = source.info if copy else dataclasses.replace(source.info, stream=None)
        for index, sample in enumerate(source.samples()):
            if index == 25:
                tap.start()
            before = len(out)
            tap.feed(sample, info)
            if index > 25 and sample.packet is not None:
                per_sample.append(sum(_video_samples(o) for o in out[before:]))
    return per_sample


def _video_samples(output: LiveOutput) -> int:
    """How many video samples a fragment holds: track 1's trun counts, parsed here."""
    if not isinstance(output, Fragment):
        return 0
    data, count = output.data, 0
    moof = fmp4.complete_boxes(data)[0]
    for traf in fmp4.complete_boxes(data, moof.body, moof.end):
        boxes = fmp4.complete_boxes(data, traf.body, traf.end) if traf.kind == "traf" else []
        track = int.from_bytes(data[boxes[0].body + 4 : boxes[0].body + 8], "big") if boxes else 0
        for box in boxes:
            if box.kind == "trun" and track == 1:
                count += int.from_bytes(data[box.body + 4 : box.body + 8], "big")
    return count


@pytest.mark.parametrize("copy", [True, False], ids=["stream-copy", "re-encode"])
def test_with_audio_the_stream_has_both_tracks_in_sync(toned: Path, copy: bool) -> None:
    from tests.unit.agent.capture.sound import offsets, streams

    out: list[LiveOutput] = []
    tap = LiveTap("door", out.append)
    per_sample = _run_audio(toned, tap, out, copy=copy)
    init = out[0]
    assert isinstance(init, InitSegment) and init.audio
    assert init.mime.startswith('video/mp4; codecs="avc1.') and init.mime.endswith(', mp4a.40.2"')
    assert fmp4.video_track_id(init.data) == 1
    data = init.data + b"".join(o.data for o in out[1:] if isinstance(o, Fragment))
    assert streams(data) == [("video", "h264"), ("audio", "aac")]
    assert all(abs(o) <= 0.03 for o in offsets(data)), offsets(data)
    # Audio costs no latency: each frame still goes out as the next one comes in (the
    # re-encode's first frame even goes at once, its audio being muxed after it).
    assert per_sample[1:] == [1] * (len(per_sample) - 1)
    assert per_sample[0] == (1 if copy else 0)


def test_keyframes_are_judged_by_the_video_track(toned: Path) -> None:
    out: list[LiveOutput] = []
    _run_audio(toned, LiveTap("door", out.append), out, copy=True)
    fragments = [o for o in out if isinstance(o, Fragment)]
    # One fragment per frame, each with the audio since the frame before: no more
    # messages than without sound. The GOP cache from 2 s, then a keyframe every 2 s.
    assert all(_video_samples(f) == 1 for f in fragments)
    assert [f.keyframe for f in fragments] == [i % 20 == 0 for i in range(len(fragments))]
    for fragment in fragments:
        assert is_keyframe_fragment(fragment.data, 1) == fragment.keyframe
        assert not is_keyframe_fragment(fragment.data, 7)  # no such track: no keyframe


def test_an_audio_only_fragment_is_never_a_start_point(toned: Path) -> None:
    """FFmpeg's frag_every_frame cuts audio-only fragments; every AAC sample is a sync
    sample, so judging by the first track fragment would call each of them a keyframe."""
    collector = fmp4.FragmentCollector()
    with av.open(str(toned)) as src, av.open(collector, "w", format="mp4", options=FMP4) as out:
        video = out.add_stream_from_template(src.streams.video[0])
        audio = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = video if packet.stream.type == "video" else audio
            out.mux(packet)
    assert collector.init is not None
    track = fmp4.video_track_id(collector.init)
    fragments = collector.take()
    audio_only = [f for f in fragments if not _video_samples(Fragment(f, False))]
    with_video = [f for f in fragments if _video_samples(Fragment(f, False))]
    assert len(audio_only) > 100 and len(with_video) > 50
    assert all(is_keyframe_fragment(f) for f in audio_only)  # the first traf's view
    assert not any(is_keyframe_fragment(f, track) for f in audio_only)
    assert [is_keyframe_fragment(f, track) for f in with_video][:21] == [True] + [False] * 19 + [
        True
    ]


FMP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof+frag_every_frame"}
