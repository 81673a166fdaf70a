"""One camera's processing chain: sample -> motion -> detection -> recorder -> spool.

Motion runs on the luma plane of frames due at the analysis rate (no colour conversion
on the hot path). Detection costs ~100x more, so it runs only while there is motion and
at most every `detect_interval_s`, on an RGB copy with the privacy zones already black:
what the owner masked is never classified either.

Settings from the web (agent/settings/) reach a running camera through
`CameraJob.reconfigure`, taken at the next sample: see `CameraPipeline.reconfigure` for
what is rebuilt and what is kept. Motion and person state changes and kept clips are told
to the `Observers` (agent/observe.py).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import av
import cv2
import numpy as np

from doorwarden.agent.analysis.detect import detect_regions, make_detector
from doorwarden.agent.analysis.detection import Detection, Detector
from doorwarden.agent.analysis.motion import MotionDetector, luma
from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.media import Sample, StreamInfo
from doorwarden.agent.capture.source import VideoSource
from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.live.mode import CameraSwitches
from doorwarden.agent.observe import ClipFinished, Observers
from doorwarden.agent.recording.clip_writer import can_stream_copy
from doorwarden.agent.recording.recorder import EventRecorder, FinishedClip, LabelledBox
from doorwarden.agent.recording.spool import Spool
from doorwarden.agent.substream import Frames, SubstreamFeed

FORCED_LABEL = "ring"  # a clip a doorbell press asked for: never dropped by person_only
TRIGGER_TTL_S = 10.0  # a press older than this when the stream returns records nothing
# Packets whose frames a decoder may still hand out later (its delay is a few frames).
DECODER_DELAY_PACKETS = 32


@dataclass
class _State:
    motion: bool = False
    person: bool = False  # a person seen since this motion began
    score: float = 0.0
    next_detect: float = float("-inf")


def one_opencv_thread() -> None:
    """Run OpenCV's functions on the calling thread alone (process-wide).

    The agent already runs a thread per camera, and the images motion works on are small
    (320 px wide): OpenCV's own worker pool gained no wall time on them and its workers'
    hand-offs cost CPU. Measured on 1080p frames, 2 cores: 1.3 ms of CPU per analysis
    with the pool, 0.78 ms without, the same result. Called when a camera's job is made.
    """
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


class CameraPipeline:
    def __init__(
        self,
        camera: CameraConfig,
        info: StreamInfo,
        spool: Spool,
        *,
        detector: Detector | None = None,
        detect_interval_s: float = 1.0,
        switches: CameraSwitches | None = None,
        observers: Observers | None = None,
        detection_enabled: bool = True,
    ) -> None:
        self.camera = camera
        self.info = info
        self.observers = observers
        # The web's `detection.enabled`: off, motion is not analysed and starts no clip.
        self.detection_enabled = detection_enabled
        self._rebuild_when_idle = False  # the recorder's mask hides more than asked
        # pts of the latest packets, and those a copied clip took that its re-encoded
        # successor must skip (see `_new_recorder`).
        self._recent_pts: deque[int] = deque(maxlen=DECODER_DELAY_PACKETS)
        self._written_pts: set[int] = set()
        self._skip_left = 0
        # The household's mode (agent/live/mode.py), read on every sample.
        self.switches = switches if switches is not None else CameraSwitches()
        self.spool = spool
        self.mask = _mask(camera, info)
        # Motion and detection run on the frames analysed (the main stream's, or the
        # sub-stream's: substream.py), sized as those; the recorder on the main stream.
        self._analysed_size = (info.width, info.height)
        self._detect_mask = self.mask
        self._copyable = can_stream_copy(info.stream, info.codec)  # as the recorder decides
        self.motion = MotionDetector(camera.motion, info.width, info.height)
        self.recorder = EventRecorder(camera.name, info, camera.record, self.mask, spool)
        self.detector = detector if detector is not None else make_detector(camera.detect)
        self.detect_interval_s = detect_interval_s
        self._state = _State()

    @property
    def main_frames_needed(self) -> bool:
        """Whether the recorder needs the main stream's decoded frames: it re-encodes
        (privacy zones, or a stream it cannot copy). A copy needs its packets only.
        The recorder's own mask counts too: zones just removed leave it re-encoding the
        clip in progress to its end (`reconfigure`)."""
        return bool(self.mask) or bool(self.recorder.mask) or not self._copyable

    def push(self, sample: Sample, analysis: Frames | None = None) -> FinishedClip | None:
        """Feed the next main-stream sample. `analysis`: the frames to detect on with it,
        each with its time on the main stream's clock (a sub-stream's); None: the
        sample's own frames."""
        state = self._state
        labels: list[str] = []
        boxes: list[LabelledBox] = []
        if analysis is None:
            analysis = [(sample.time, frame) for frame in sample.frames]
        for t, frame in analysis:
            if not self.detection_enabled or not self._motion_for(frame).should_analyse(t):
                continue
            result = self.motion.update(luma(frame), t)
            self._set_motion(result.motion)
            state.score = result.score
            detect = self.switches.detection_enabled and self.detector is not None
            if state.motion and detect and self.detector is not None and t >= state.next_detect:
                state.next_detect = t + self.detect_interval_s
                rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                rgb = self._detect_mask.apply_rgb(rgb)
                found = detect_regions(self.detector, rgb, result.boxes)
                labels += [d.label for d in found]
                boxes += [LabelledBox(d.label, d.confidence, _corners(d)) for d in found]
                if "person" in labels:
                    self._set_person(True)
        if state.motion:
            labels.append("motion")
        if self._rebuild_when_idle and not self.recorder.recording:
            self._new_recorder()  # nothing to split now: the recorder takes the new zones
        # A mode that records nothing: motion starts no clip (a ring's trigger still does).
        record = state.motion and self.switches.recording_enabled
        if sample.packet is not None and sample.packet.pts is not None:
            self._recent_pts.append(sample.packet.pts)
        sample = self._unwritten(sample)
        if not sample.frames and analysis and not self.main_frames_needed:
            # A copy ignores frames but for the thumbnail: the analysed frame stands in
            # (a sub-stream's, already thumbnail-sized; the main stream is not decoded).
            sample = dataclasses.replace(sample, frames=[analysis[-1][1]], frame_times=[])
        finished = self.recorder.push(
            sample, motion=record, labels=labels, boxes=boxes, score=state.score
        )
        return self._keep(finished)

    def _motion_for(self, frame: av.VideoFrame) -> MotionDetector:
        """The motion detector for frames of this size: made afresh when the analysed
        stream changes (sub-stream down or back), as a new background is needed."""
        size = (frame.width, frame.height)
        if size != self._analysed_size:
            self._analysed_size = size
            self.motion = MotionDetector(self.camera.motion, *size)
            self._detect_mask = _mask_sized(self.camera, *size)
        return self.motion

    def flush(self) -> FinishedClip | None:
        self._set_motion(False)  # the stream ended: nothing is known to move any more
        return self._keep(self.recorder.flush())

    def reconfigure(
        self, camera: CameraConfig, detector: Detector | None, *, detection_enabled: bool
    ) -> FinishedClip | None:
        """New settings from the next sample on, without losing the clip in progress:

        * recording lengths apply to the clip in progress (the recorder reads them live);
        * the motion detector is made afresh when its settings change or detection comes
          back on (its background would be stale); a clip in progress runs on through its
          post-roll meanwhile, and motion that goes on re-triggers within a few analyses;
        * privacy zones: detection and snapshots use the new ones at once. The recorder
          is bound to its mask (and copy or re-encode follows from it), so it is rebuilt:
          when zones were added or changed, now, the clip in progress finished and kept
          (returned) and a new one begun with the next sample if motion goes on; when
          zones were only removed, once the clip in progress has ended, which keeps it
          whole and hides no less than before.
        """
        old, self.camera, self.detector = self.camera, camera, detector
        if camera.motion != old.motion or (detection_enabled and not self.detection_enabled):
            self.motion = MotionDetector(camera.motion, *self._analysed_size)
        self.detection_enabled = detection_enabled
        if not detection_enabled:
            self._set_motion(False)
        self.recorder.record = camera.record
        if camera.privacy_zones == old.privacy_zones:
            return None
        self.mask = _mask(camera, self.info)
        self._detect_mask = _mask_sized(camera, *self._analysed_size)
        kept = set(self.recorder.mask.polygons)
        if self.recorder.recording and all(p in kept for p in self.mask.polygons):
            self._rebuild_when_idle = True
            return None
        return self._keep(self._new_recorder())

    def _new_recorder(self) -> FinishedClip | None:
        finished = self.recorder.flush()
        self.recorder = EventRecorder(
            self.camera.name, self.info, self.camera.record, self.mask, self.spool
        )
        self._rebuild_when_idle = False
        if finished is not None and not finished.reencoded:
            # The copied clip holds the packets up to now, but the decoder hands their
            # last frames out with the next few samples: a re-encoded clip that follows
            # must not show them a second time.
            self._written_pts, self._skip_left = set(self._recent_pts), len(self._recent_pts)
        return finished

    def _unwritten(self, sample: Sample) -> Sample:
        """`sample` without the frames the previous (copied) clip already holds."""
        if not self._written_pts:
            return sample
        self._skip_left -= 1
        written = self._written_pts
        if self._skip_left <= 0:
            self._written_pts = set()
        keep = [i for i, f in enumerate(sample.frames) if f.pts is None or f.pts not in written]
        if len(keep) == len(sample.frames):
            return sample
        times = sample.frame_times
        return dataclasses.replace(
            sample,
            frames=[sample.frames[i] for i in keep],
            frame_times=[times[i] for i in keep] if len(times) == len(sample.frames) else [],
        )

    def _set_motion(self, active: bool) -> None:
        if active == self._state.motion:
            return
        self._state.motion = active
        if not active:
            self._set_person(False)  # a person is looked for while there is motion
        if self.observers is not None:
            self.observers.motion(self.camera.name, active)

    def _set_person(self, active: bool) -> None:
        if active == self._state.person:
            return
        self._state.person = active
        if self.observers is not None:
            self.observers.person(self.camera.name, active)

    def trigger(self, reason: str) -> None:
        """Record a clip now, labelled `reason` (EventRecorder.trigger)."""
        self.recorder.trigger(reason)

    def _keep(self, clip: FinishedClip | None) -> FinishedClip | None:
        """Apply the alert mode: person_only drops clips in which nobody was seen."""
        if clip is None or self.camera.detect.alert != "person_only":
            return clip
        if {"person", FORCED_LABEL} & set(clip.metadata.get("labels", [])):
            return clip  # a doorbell press is kept whoever was seen
        self.spool.remove(clip.entry)
        return None

    def run(self, samples: Iterator[Sample]) -> Iterator[FinishedClip]:
        for sample in samples:
            clip = self.push(sample)
            if clip is not None:
                yield clip
        clip = self.flush()
        if clip is not None:
            yield clip


class CameraJob:
    """A camera's pipeline as `CameraRunner` drives it: built when the source opens,
    rebuilt when the source reconnects to a different stream (an RTSP camera that
    rebooted may come back with other codec parameters, and stream copy needs the
    stream it copies from), flushed when the source ends, fails or the agent stops, so
    the clip in progress is kept.

    The detector is made once per camera, not per stream: loading a model is slow (and
    again only when `reconfigure` changes what to detect).
    """

    def __init__(
        self,
        camera: CameraConfig,
        spool: Spool,
        on_clip: Callable[[FinishedClip], None] | None = None,
        switches: CameraSwitches | None = None,
        *,
        observers: Observers | None = None,
        detection_enabled: bool = True,
    ) -> None:
        one_opencv_thread()  # see there: CPU, not wall time, is what a camera box lacks
        self.camera = camera
        self.spool = spool
        self.on_clip = on_clip
        self.switches = switches if switches is not None else CameraSwitches()
        self.observers = observers
        self.detection_enabled = detection_enabled
        self.detector = make_detector(camera.detect)
        # The newest decoded frame, for snapshots: a reference replaced per sample (the
        # decoder allocates a new frame for each), never a copy.
        self.latest_frame: av.VideoFrame | None = None
        # (config, detection_enabled, detector) from `reconfigure`, for the next sample.
        self._pending: tuple[CameraConfig, bool, Detector | None] | None = None
        self.clips: list[FinishedClip] = []
        self.media_time = 0.0  # of the last sample handled: for progress display
        self._source: VideoSource | None = None
        self._info: StreamInfo | None = None
        self._pipeline: CameraPipeline | None = None
        self._lock = threading.Lock()  # on_close may come from another thread than samples
        self._trigger: tuple[str, float] | None = None  # (reason, monotonic time)
        self._trigger_lock = threading.Lock()  # never held while a sample is processed
        # The sub-stream (substream.py), read from the main stream's open to its close.
        self.feed: SubstreamFeed | None = None

    def opened(self, source: VideoSource) -> None:
        with self._lock:
            self._source = source
            self._take_settings()
            if self.camera.substream is not None:
                # The main stream's decoder is switched as the sub-stream comes and goes:
                # samples decoded ahead would carry the old choice (read_ahead.py).
                source.reads_ahead = False
            if self.camera.substream is not None and self.feed is None:
                self.feed = SubstreamFeed(
                    self.camera.substream, camera=self.camera.name, decode=self.camera.decode
                )
                self.feed.start()
            self._rebuild(source.info)

    def reconfigure(self, camera: CameraConfig, *, detection_enabled: bool = True) -> None:
        """Run with `camera` from the next sample on (any thread; returns at once). A new
        detector, when what to detect changed, is made here, off the camera's thread;
        DetectorError (nothing changed) when it cannot be."""
        with self._trigger_lock:
            current = self._pending or (self.camera, self.detection_enabled, self.detector)
        detector = (
            current[2] if camera.detect == current[0].detect else make_detector(camera.detect)
        )
        with self._trigger_lock:
            self._pending = (camera, detection_enabled, detector)

    @property
    def newest_config(self) -> CameraConfig:
        """The configuration asked for last (taken at the next sample): what a snapshot
        taken now must hide."""
        pending = self._pending
        return pending[0] if pending is not None else self.camera

    def handle(self, sample: Sample) -> None:
        with self._lock:
            source = self._source
            if source is None or self._pipeline is None:
                raise RuntimeError("CameraJob.handle before opened")
            if source.info is not self._info:
                self._rebuild(source.info)
            self._take_settings()
            with self._trigger_lock:
                pending, self._trigger = self._trigger, None
            if pending is not None and time.monotonic() - pending[1] <= TRIGGER_TTL_S:
                self._pipeline.trigger(pending[0])
            analysis = None
            if self.feed is not None:
                self.feed.need_main_frames(self._pipeline.main_frames_needed)
                analysis = self.feed.analysis(sample)
            self._keep(self._pipeline.push(sample, analysis))
            if sample.frames:
                self.latest_frame = sample.frames[-1]
            elif analysis:
                self.latest_frame = analysis[-1][1]  # the main stream is not decoded
            self.media_time = sample.time

    def trigger(self, reason: str) -> None:
        """Record a clip from the next sample, labelled `reason` (a doorbell press), with
        pre-roll, whatever the mode; from any thread, without waiting for detection. A
        camera whose stream is down takes it when it comes back within TRIGGER_TTL_S."""
        with self._trigger_lock:
            self._trigger = (reason, time.monotonic())

    def closed(self) -> None:
        with self._lock:
            if self._pipeline is not None:
                pipeline, self._pipeline = self._pipeline, None
                self._keep(pipeline.flush())
            if self.feed is not None:
                feed, self.feed = self.feed, None
                feed.stop()
            self._source = None
            self.latest_frame = None  # a snapshot of a camera that is down is refused

    def _take_settings(self) -> None:
        with self._trigger_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        self.camera, self.detection_enabled, self.detector = pending
        if self._pipeline is not None:
            self._keep(
                self._pipeline.reconfigure(
                    self.camera, self.detector, detection_enabled=self.detection_enabled
                )
            )

    def _rebuild(self, info: StreamInfo) -> None:
        if self._pipeline is not None:
            self._keep(self._pipeline.flush())
        self._info = info
        self._pipeline = CameraPipeline(
            self.camera, info, self.spool, detector=self.detector, switches=self.switches,
            observers=self.observers, detection_enabled=self.detection_enabled,
        )  # fmt: skip
        if self.feed is not None:  # a new decoder: off unless its frames are needed
            self.feed.attach(info, main_frames_needed=self._pipeline.main_frames_needed)

    def _keep(self, clip: FinishedClip | None) -> None:
        if clip is None:
            return
        self.clips.append(clip)
        if self.observers:
            self.observers.clip(_finished(clip))
        if self.on_clip is not None:
            self.on_clip(clip)


def _finished(clip: FinishedClip) -> ClipFinished:
    """What the observers hear of a kept clip (its thumbnail is privacy-masked)."""
    meta, thumb = clip.metadata, clip.entry.thumbnail
    try:
        thumbnail = thumb.read_bytes() if thumb is not None else None
    except OSError:
        thumbnail = None
    return ClipFinished(
        camera=meta["camera"], clip_id=clip.entry.id,
        started_at=datetime.fromisoformat(meta["start_utc"]),
        ended_at=datetime.fromisoformat(meta["end_utc"]),
        labels=tuple(meta.get("labels", ())), thumbnail=thumbnail,
    )  # fmt: skip


def _mask(camera: CameraConfig, info: StreamInfo) -> PrivacyMask:
    return _mask_sized(camera, info.width, info.height)


def _mask_sized(camera: CameraConfig, width: int, height: int) -> PrivacyMask:
    if not camera.privacy_zones:
        return PrivacyMask.none()
    return PrivacyMask(camera.privacy_zones, width, height)


def _corners(d: Detection) -> tuple[float, float, float, float]:
    """Our (x, y, w, h) as the recorder's normalised (x0, y0, x1, y1)."""
    x, y, w, h = d.box
    return (x, y, x + w, y + h)
