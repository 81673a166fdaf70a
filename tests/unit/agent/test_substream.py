"""Sub-streams (agent/substream.py): detect on the low-resolution stream, record the
main one, on real H.264 files (encode_h264) of one scene at two sizes.

The main file is often the *static* scene while its sub-stream shows a walker: then a
clip can only come from detection on the sub-stream, and where it starts in the main
stream's time shows the two clocks are one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import pytest
import structlog
from pydantic import ValidationError

from doorwarden.agent.app import AgentApp
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import (
    AgentConfig,
    CameraConfig,
    FileSource,
    SyntheticSource,
)
from doorwarden.agent.observe import Observers
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool
from doorwarden.agent.substream import ArrivalClock, SubstreamFeed

MAIN = (640, 360)
SUB = (320, 180)
ENTER_S = 2.7  # mid-GOP: keyframes every 0.5 s
GOP_S = 0.5
RECORD = {"pre_roll_s": 0, "post_roll_s": 1, "min_clip_s": 1, "cooldown_s": 0}


def scene(size: tuple[int, int], fps: float, kind: str, duration_s: float = 6.0) -> SyntheticSource:
    return SyntheticSource(
        kind="synthetic", width=size[0], height=size[1], fps=fps, duration_s=duration_s,
        scene=kind, enter_at_s=ENTER_S, seed=4,
    )  # fmt: skip


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The files, made once: name -> path."""
    folder = tmp_path_factory.mktemp("substream")
    wanted = {
        "main_static": scene(MAIN, 30, "static"),
        "main_object": scene(MAIN, 30, "object"),
        "sub_object_10": scene(SUB, 10, "object"),
        "sub_object_30": scene(SUB, 30, "object"),
        "sub_short": scene(SUB, 10, "object", duration_s=1.5),  # ends before the walker
        "sub_mid": scene(SUB, 10, "object", duration_s=4.0),  # ends while it walks
    }
    paths = {}
    for name, cfg in wanted.items():
        paths[name] = folder / f"{name}.mp4"
        encode_h264(cfg, paths[name], gop_s=GOP_S)
    return paths


def file(path: Path) -> FileSource:
    return FileSource(kind="file", path=path, pace=False)


def camera(main: Path, sub: Path | None, **overrides: object) -> CameraConfig:
    settings: dict[str, object] = {
        "name": "door", "source": file(main), "record": RECORD, "detect": {"kind": "none"},
        "substream": file(sub) if sub is not None else None,
    }  # fmt: skip
    return CameraConfig.model_validate(settings | overrides)


class Run:
    """What one run of a camera did: its clips, and what the main stream's own decoder
    handed out (the frames in its samples: none when it was told to skip them)."""

    def __init__(self, job: CameraJob) -> None:
        self.job = job
        self.main_packets = 0
        self.main_frames = 0
        self.main_frames_from = float("inf")  # main time of the first decoded frame
        self.sub_frames = 0
        self.fallbacks = 0
        self.now = 0.0  # the main sample being handled
        self.motion_at: list[float] = []  # main times at which motion began

    def motion(self, camera: str, active: bool) -> None:
        if active:
            self.motion_at.append(self.now)

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *_: None  # the other events of an observer: not needed here


def run(cam: CameraConfig, spool_dir: Path) -> Run:
    observers = Observers()
    job = CameraJob(cam, Spool(spool_dir), observers=observers)
    out = Run(job)
    observers.add(out)
    with open_source(cam.source) as source:
        job.opened(source)
        feed = job.feed
        for sample in source.samples():
            out.now = sample.time
            out.main_packets += sample.packet is not None
            if sample.frames:
                out.main_frames += len(sample.frames)
                out.main_frames_from = min(out.main_frames_from, sample.time)
            job.handle(sample)
    job.closed()
    if feed is not None:
        out.sub_frames, out.fallbacks = feed.sub.frames_read, feed.fallbacks
    return out


def clip_frames(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of a stored clip, decoded."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.codec_context.width, stream.codec_context.height


@contextmanager
def logged() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        yield logs


@pytest.mark.parametrize("sub_fps", [10, 30])
def test_motion_on_the_sub_stream_records_the_main_streams_packets(
    videos: dict[str, Path], tmp_path: Path, sub_fps: int
) -> None:
    """Main 30 fps, sub 10 or 30 fps: the walker is only in the sub-stream, so the clip
    is detection on the sub; it holds main-stream packets at main resolution, starts at
    the main stream's keyframe before the walker entered (sub time = main time), and
    the main stream was never decoded."""
    sub = videos[f"sub_object_{sub_fps}"]
    without = run(camera(videos["main_static"], None), tmp_path / "a")
    assert without.job.clips == []  # the main stream alone has nothing to detect
    got = run(camera(videos["main_static"], sub), tmp_path / "b")
    [clip] = got.job.clips
    assert clip.metadata["labels"] == ["motion"]
    assert not clip.reencoded
    # Aligned: motion found on the sub reaches the main stream at the walker's entry
    # (2.7 s; a few of its columns must show), and the clip opens at the main stream's
    # keyframe at or before that moment (pre_roll 0: the GOP holding the trigger).
    # (How soon motion triggers is motion.py's business, hence the second's slack; a
    # clock off by the streams' rates or starts would be seconds out.)
    [trigger] = got.motion_at
    assert ENTER_S < trigger <= ENTER_S + 1.0
    assert clip.start == pytest.approx(int(trigger / GOP_S) * GOP_S)
    frames, width, height = clip_frames(clip.entry.clip)
    assert (width, height) == MAIN
    # Every main packet from the clip's start to its end, at 30 fps.
    assert frames == pytest.approx((clip.end - clip.start) * 30, abs=1)
    assert got.main_packets == 180 and got.main_frames == 0  # its decoder skipped them all
    assert got.sub_frames == 6 * sub_fps
    assert got.fallbacks == 0
    assert clip.entry.thumbnail is not None  # from the sub-stream's frame


def test_the_sub_streams_frame_rate_does_not_move_the_clip(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    slow = run(camera(videos["main_static"], videos["sub_object_10"]), tmp_path / "a")
    fast = run(camera(videos["main_static"], videos["sub_object_30"]), tmp_path / "b")
    # The same moment within two analysis intervals (5 fps): which frames are analysed
    # differs with the rate, the clock does not.
    [at_10], [at_30] = slow.motion_at, fast.motion_at
    assert at_10 == pytest.approx(at_30, abs=0.4 + 1e-6)
    assert len(slow.job.clips) == len(fast.job.clips) == 1


def test_privacy_zones_decode_the_main_stream_but_detection_stays_on_the_sub(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    zone = [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]
    cam = camera(videos["main_static"], videos["sub_object_10"], privacy_zones=[zone])
    got = run(cam, tmp_path)
    [clip] = got.job.clips  # the main stream is static: the sub-stream found the walker
    assert clip.reencoded  # the masked pixels must not leave: frames, so decoded
    assert got.main_frames == got.main_packets
    assert clip_frames(clip.entry.clip)[1:] == MAIN


def test_a_sub_stream_that_never_opens_falls_back_to_the_main_stream(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    reference = run(camera(videos["main_object"], None), tmp_path / "a")
    with logged() as logs:
        got = run(camera(videos["main_object"], tmp_path / "missing.mp4"), tmp_path / "b")
    fallbacks = [e for e in logs if e["event"] == "substream.fallback"]
    assert len(fallbacks) == 1 and "missing.mp4" in str(fallbacks[0]["reason"])
    assert got.main_frames == got.main_packets  # decoded from the start
    assert [(c.start, c.end) for c in got.job.clips] == [
        (c.start, c.end) for c in reference.job.clips
    ]
    assert len(got.job.clips) == 1


def test_a_sub_stream_that_ends_before_the_event_falls_back_and_still_records_it(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    with logged() as logs:
        got = run(camera(videos["main_object"], videos["sub_short"]), tmp_path)
    assert [e["reason"] for e in logs if e["event"] == "substream.fallback"] == ["ended"]
    # The main stream's decoder came back on at the first keyframe after the sub ended.
    # (its frames come out a few packets late: the decoder's frame threads).
    assert 1.5 <= got.main_frames_from <= 1.5 + GOP_S + 0.2
    [clip] = got.job.clips
    assert 2.5 <= clip.start <= 3.5
    assert clip_frames(clip.entry.clip)[1:] == MAIN


def test_a_sub_stream_that_drops_mid_event_keeps_the_clip_whole(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    """The sub ends at 4 s while the walker crosses (2.7 s to the end at 6 s): detection
    goes on on the main stream, and the clip in progress is one clip with every packet."""
    record = RECORD | {"post_roll_s": 3}
    cam = camera(videos["main_object"], videos["sub_mid"], record=record)
    got = run(cam, tmp_path)
    [clip] = got.job.clips
    assert got.fallbacks == 1
    assert 2.5 <= clip.start <= 3.5
    assert clip.end == pytest.approx(6.0, abs=0.05)  # to the end of the stream
    frames, *size = clip_frames(clip.entry.clip)
    assert size == list(MAIN)
    assert frames == pytest.approx((clip.end - clip.start) * 30, abs=1)


def test_arrival_clock_puts_two_live_streams_on_one_time() -> None:
    """Two streams of one camera, opened 0.7 s apart, each counting from its own 0 and
    arriving with jitter: a sub frame maps onto the main stream's time of the same moment;
    after the sub reconnects (its count goes on from where it was) the map follows."""
    main, sub = ArrivalClock(), ArrivalClock()
    jitter = [0.03, 0.0, 0.05, 0.01, 0.02]
    for i in range(50):
        wall = 100.0 + i * 0.1
        main.note(wall - 100.0, wall + jitter[i % 5])  # main's 0 was at 100.0
        sub.note(wall - 100.7, wall + 0.01 + jitter[(i + 2) % 5]) if wall >= 100.7 else None
    assert main.anchor is not None and sub.anchor is not None
    assert sub.anchor - main.anchor == pytest.approx(0.7, abs=0.02)
    # The sub drops for 3 s and comes back; its clock goes on from 4.4 s (+ a frame).
    for i in range(20):
        wall = 108.0 + i * 0.1
        sub.note(4.5 + i * 0.1, wall + 0.01)
    assert sub.anchor - main.anchor == pytest.approx(103.5 - 100.0, abs=0.02)


def test_feed_without_a_main_decoder_to_switch_keeps_decoding(videos: dict[str, Path]) -> None:
    """A synthetic main (no demuxer stream) cannot skip frames: it stays decoded."""
    feed = SubstreamFeed(file(videos["sub_object_10"]), camera="door")
    with open_source(scene(MAIN, 10, "static", duration_s=1)) as main:
        feed.attach(main.info, main_frames_needed=False)
    assert feed.main_decoding


@pytest.mark.parametrize(
    ("sub", "message"),
    [
        ({"kind": "rtsp", "url": "rtsp://cam/sub"}, "cannot go with a 'file' source"),
        ({"kind": "file", "path": "/v/main.mp4", "pace": False}, "the same stream as source"),
        ({"kind": "file", "path": "/v/sub.mp4", "pace": True}, "both be paced or both not"),
        (
            {"kind": "file", "path": "/v/sub.mp4", "pace": False, "loop": True},
            "both loop or both not",
        ),
    ],
)
def test_nonsense_sub_streams_are_refused(sub: dict[str, object], message: str) -> None:
    main = {"kind": "file", "path": "/v/main.mp4", "pace": False}
    with pytest.raises(ValidationError, match=message):
        CameraConfig.model_validate({"name": "door", "source": main, "substream": sub})


def test_live_sub_streams_are_told_apart_by_more_than_their_password() -> None:
    main = {"kind": "rtsp", "url": "rtsp://admin:a@cam:554/Streaming/Channels/101"}
    same = {"kind": "rtsp", "url": "rtsp://viewer:b@CAM:554/Streaming/Channels/101"}
    with pytest.raises(ValidationError, match="the same stream as source"):
        CameraConfig.model_validate({"name": "door", "source": main, "substream": same})
    sub = {"kind": "rtsp", "url": "rtsp://admin:a@cam:554/Streaming/Channels/102"}
    cam = CameraConfig.model_validate({"name": "door", "source": main, "substream": sub})
    assert cam.substream is not None
    synthetic = {"kind": "synthetic", "scene": "object"}
    with pytest.raises(ValidationError, match="same scene as source"):
        CameraConfig.model_validate(
            {"name": "door", "source": synthetic, "substream": synthetic | {"scene": "static"}}
        )


def test_the_agent_runs_a_camera_with_its_sub_stream_once_at_full_speed(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    """Through the composition root, as `agent run --once`: both streams unpaced (a
    paced sub-stream would hold the main one to real time), the sub-stream's thread
    gone afterwards, the clip from the main stream."""
    paced = [
        FileSource(kind="file", path=videos[n], pace=True) for n in ("main_static", "sub_object_10")
    ]
    before = set(threading.enumerate())
    cam = CameraConfig.model_validate(
        {"name": "door", "source": paced[0], "substream": paced[1], "record": RECORD,
         "detect": {"kind": "none"}}
    )  # fmt: skip
    config = AgentConfig(spool_dir=tmp_path / "spool", state_dir=tmp_path / "state", cameras=[cam])
    app = AgentApp.from_config(config, once=True)
    [ran] = app.config.cameras
    assert isinstance(ran.source, FileSource) and isinstance(ran.substream, FileSource)
    assert not ran.substream.pace and not ran.source.pace
    app.run_until(threading.Event())
    assert app.failed() == []
    [clip] = app.clips
    assert clip.metadata["width"] == MAIN[0] and not clip.reencoded
    app.stop()
    assert [t.name for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_zones_removed_mid_clip_keep_the_main_stream_decoded_to_the_clips_end(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    """The recorder re-encodes the clip in progress to its end when zones are removed
    (pipeline.reconfigure): the main stream's frames stay needed until then, so the clip
    has as many frames as the same clip with the zones kept all along."""
    zone = [[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]]
    cam = camera(videos["main_static"], videos["sub_object_10"], privacy_zones=[zone])

    def clip(drop_zones_at: float | None, spool_dir: Path) -> tuple[float, float, int]:
        job = CameraJob(cam, Spool(spool_dir))
        with open_source(cam.source) as source:
            job.opened(source)
            for sample in source.samples():
                if drop_zones_at is not None and sample.time >= drop_zones_at:
                    job.reconfigure(cam.model_copy(update={"privacy_zones": []}))
                    drop_zones_at = None
                job.handle(sample)
        job.closed()
        first = job.clips[0]
        assert first.reencoded
        return first.start, first.end, clip_frames(first.entry.clip)[0]

    kept = clip(None, tmp_path / "kept")
    dropped = clip(3.5, tmp_path / "dropped")  # mid-event: the zones go
    assert kept[0] < 3.5 < kept[1]
    assert dropped == kept
