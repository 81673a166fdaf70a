"""One camera's processing chain: sample -> motion -> detection -> recorder -> spool.

Motion runs on the luma plane of frames due at the analysis rate (no colour conversion
on the hot path). Detection costs ~100x more, so it runs only while there is motion and
at most every `detect_interval_s`, on an RGB copy with the privacy zones already black:
what the owner masked is never classified either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from doorwarden.agent.analysis.detect import Detection, Detector, make_detector
from doorwarden.agent.analysis.motion import MotionDetector, luma
from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.media import Sample, StreamInfo
from doorwarden.agent.capture.source import VideoSource
from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.live.mode import CameraSwitches
from doorwarden.agent.recording.recorder import EventRecorder, FinishedClip, LabelledBox
from doorwarden.agent.recording.spool import Spool

FORCED_LABEL = "ring"  # a clip a doorbell press asked for: never dropped by person_only
TRIGGER_TTL_S = 10.0  # a press older than this when the stream returns records nothing


@dataclass
class _State:
    motion: bool = False
    score: float = 0.0
    next_detect: float = float("-inf")


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
    ) -> None:
        self.camera = camera
        # The household's mode (agent/live/mode.py), read on every sample.
        self.switches = switches if switches is not None else CameraSwitches()
        self.spool = spool
        self.mask = (
            PrivacyMask(camera.privacy_zones, info.width, info.height)
            if camera.privacy_zones
            else PrivacyMask.none()
        )
        self.motion = MotionDetector(camera.motion, info.width, info.height)
        self.recorder = EventRecorder(camera.name, info, camera.record, self.mask, spool)
        self.detector = detector if detector is not None else make_detector(camera.detect)
        self.detect_interval_s = detect_interval_s
        self._state = _State()

    def push(self, sample: Sample) -> FinishedClip | None:
        state = self._state
        labels: list[str] = []
        boxes: list[LabelledBox] = []
        for frame in sample.frames:
            t = sample.time
            if not self.motion.should_analyse(t):
                continue
            result = self.motion.update(luma(frame), t)
            state.motion, state.score = result.motion, result.score
            detect = self.switches.detection_enabled and self.detector is not None
            if state.motion and detect and self.detector is not None and t >= state.next_detect:
                state.next_detect = t + self.detect_interval_s
                rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                rgb = self.mask.apply_rgb(rgb)
                found = self.detector.detect(rgb)
                labels += [d.label for d in found]
                boxes += [LabelledBox(d.label, d.confidence, _corners(d)) for d in found]
        if state.motion:
            labels.append("motion")
        # A mode that records nothing: motion starts no clip (a ring's trigger still does).
        record = state.motion and self.switches.recording_enabled
        finished = self.recorder.push(
            sample, motion=record, labels=labels, boxes=boxes, score=state.score
        )
        return self._keep(finished)

    def flush(self) -> FinishedClip | None:
        return self._keep(self.recorder.flush())

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

    The detector is made once per camera, not per stream: loading a model is slow.
    """

    def __init__(
        self,
        camera: CameraConfig,
        spool: Spool,
        on_clip: Callable[[FinishedClip], None] | None = None,
        switches: CameraSwitches | None = None,
    ) -> None:
        self.camera = camera
        self.spool = spool
        self.on_clip = on_clip
        self.switches = switches if switches is not None else CameraSwitches()
        self.detector = make_detector(camera.detect)
        self.clips: list[FinishedClip] = []
        self.media_time = 0.0  # of the last sample handled: for progress display
        self._source: VideoSource | None = None
        self._info: StreamInfo | None = None
        self._pipeline: CameraPipeline | None = None
        self._lock = threading.Lock()  # on_close may come from another thread than samples
        self._trigger: tuple[str, float] | None = None  # (reason, monotonic time)
        self._trigger_lock = threading.Lock()  # never held while a sample is processed

    def opened(self, source: VideoSource) -> None:
        with self._lock:
            self._source = source
            self._rebuild(source.info)

    def handle(self, sample: Sample) -> None:
        with self._lock:
            source = self._source
            if source is None or self._pipeline is None:
                raise RuntimeError("CameraJob.handle before opened")
            if source.info is not self._info:
                self._rebuild(source.info)
            with self._trigger_lock:
                pending, self._trigger = self._trigger, None
            if pending is not None and time.monotonic() - pending[1] <= TRIGGER_TTL_S:
                self._pipeline.trigger(pending[0])
            self._keep(self._pipeline.push(sample))
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
            self._source = None

    def _rebuild(self, info: StreamInfo) -> None:
        if self._pipeline is not None:
            self._keep(self._pipeline.flush())
        self._info = info
        self._pipeline = CameraPipeline(
            self.camera, info, self.spool, detector=self.detector, switches=self.switches
        )

    def _keep(self, clip: FinishedClip | None) -> None:
        if clip is None:
            return
        self.clips.append(clip)
        if self.on_clip is not None:
            self.on_clip(clip)


def _corners(d: Detection) -> tuple[float, float, float, float]:
    """Our (x, y, w, h) as the recorder's normalised (x0, y0, x1, y1)."""
    x, y, w, h = d.box
    return (x, y, x + w, y + h)
