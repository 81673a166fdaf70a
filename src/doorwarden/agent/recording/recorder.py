"""The event recorder: turns motion into clips with pre-roll, post-roll and limits.

The pipeline pushes every sample in order with the current motion state. While idle the
recorder keeps a ring of recent samples: for a stream copy it always starts at a keyframe,
so a clip can begin before the trigger and still be decodable from its first packet; when
re-encoding (privacy zones) it holds decoded frames and any frame can open a clip, so the
pre-roll is exact. Clips are written
to the spool's tmp/ while the event runs (memory stays bounded however long it lasts) and
committed to the spool when it ends.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import structlog

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.media import Sample, StreamInfo
from doorwarden.agent.config.models import RecordConfig
from doorwarden.agent.recording.clip_writer import (
    ClipWriter,
    ReencodeWriter,
    StreamCopyWriter,
    can_stream_copy,
)
from doorwarden.agent.recording.spool import Spool, SpoolEntry
from doorwarden.fileio import is_disk_full

log = structlog.get_logger("doorwarden.agent.recording.recorder")

Box = Sequence[float]  # normalised (x0, y0, x1, y1)


@dataclass(frozen=True)
class LabelledBox:
    """Something a detector found: what, how sure, and where."""

    label: str
    confidence: float
    box: Box


THUMB_MAX_WIDTH = 640
MAX_GOP_S = 30.0  # longer keyframe intervals than this get no pre-roll
MAX_BOXES = 200  # per clip: enough to show where things were, bounded sidecar size


@dataclass(frozen=True)
class FinishedClip:
    entry: SpoolEntry
    start: float  # source seconds
    end: float
    reencoded: bool

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def metadata(self) -> dict[str, Any]:
        return self.entry.metadata


@dataclass
class _Clip:
    writer: ClipWriter
    event: int
    part: int
    trigger: float
    start: float
    wall_offset: float  # wall-clock epoch seconds minus source seconds, taken at the trigger
    last_time: float = 0.0
    started: bool = False  # start/last_time are real once a frame is in the file
    labels: set[str] = field(default_factory=set)
    boxes: list[dict[str, Any]] = field(default_factory=list)
    peak_score: float = 0.0
    thumb: av.VideoFrame | None = None


class EventRecorder:
    def __init__(
        self,
        camera: str,
        info: StreamInfo,
        record: RecordConfig,
        mask: PrivacyMask,
        spool: Spool,
    ) -> None:
        self.camera = camera
        self.info = info
        self.record = record
        self.mask = mask
        self.spool = spool
        self._frame_s = 1 / info.fps if info.fps > 0 else 0.1
        # The camera's packets carry the masked pixels, so any zone forces a re-encode.
        self._copy = not mask and can_stream_copy(info.stream, info.codec)
        self._gops: deque[list[Sample]] = deque()
        self._clip: _Clip | None = None
        self._events = 0
        self._last_motion = float("-inf")
        self._cooldown_until = float("-inf")
        self._forced: str | None = None  # trigger(reason): a clip at the next sample

    @property
    def recording(self) -> bool:
        return self._clip is not None

    def push(
        self,
        sample: Sample,
        *,
        motion: bool,
        labels: Iterable[str] = (),
        boxes: Sequence[LabelledBox] = (),
        score: float = 0.0,
    ) -> FinishedClip | None:
        """Feed the next sample; returns a clip when this sample finished one."""
        t = sample.time
        forced, self._forced = self._forced, None
        if forced is not None:
            labels = [*labels, forced]
        clip = self._clip
        if clip is None:
            self._remember(sample)
            if (motion and t >= self._cooldown_until) or forced is not None:
                self._start_event(sample)
                self._note(sample, labels, boxes, score)
            return None

        if motion or forced is not None:
            self._last_motion = t
        r = self.record
        if (
            not motion
            and t >= self._last_motion + r.post_roll_s
            and t - clip.start >= r.min_clip_s
            and clip.writer.clean_cut(sample)
        ):
            finished = self._finish(clip)
            self._cooldown_until = t + r.cooldown_s
            self._remember(sample)  # the ring restarts after the clip: no overlap
            return finished
        if t - clip.start >= r.max_clip_s and (sample.keyframe or clip.writer.reencoded):
            # Split: the next part starts exactly here, so nothing is lost between them.
            finished = self._finish(clip)
            self._open(clip.event, clip.part + 1, trigger=t, first=[sample])
            self._note(sample, labels, boxes, score)
            return finished
        self._write(clip, sample)
        self._note(sample, labels, boxes, score)
        return None

    def trigger(self, reason: str) -> None:
        """Record a clip from the next sample, labelled `reason` (a doorbell press: "ring"),
        with pre-roll and post-roll as for motion, ignoring the cool-down and whatever
        decides the motion flag (a mode that records nothing); a clip in progress gets
        the label and runs on for post_roll_s. Any thread: taken by the next push."""
        self._forced = reason

    def flush(self) -> FinishedClip | None:
        """End of stream: finish the clip in progress, however short."""
        clip, self._clip = self._clip, None
        self._gops.clear()
        return self._finish(clip) if clip else None

    # -- pre-roll ring ------------------------------------------------------------------

    def _remember(self, sample: Sample) -> None:
        if self._copy:
            # A stream copy needs only the packets; dropping the frames saves memory.
            sample = Sample(sample.packet, [], sample.time, sample.keyframe, sample.audio)
        # Groups start where a clip may start: at keyframes for a copy, but anywhere when
        # re-encoding decoded frames, so a long-GOP camera costs pre_roll_s of frames only.
        if sample.keyframe or not self._copy:
            self._gops.append([sample])
        elif self._gops:
            self._gops[-1].append(sample)
        else:
            return  # nothing before the first keyframe can be decoded
        cutoff = sample.time - self.record.pre_roll_s
        while len(self._gops) > 1 and self._gops[1][0].time <= cutoff:
            self._gops.popleft()
        if sample.time - self._gops[0][0].time > self.record.pre_roll_s + MAX_GOP_S:
            # A stream without regular keyframes (intra refresh) would grow the ring
            # without bound: give up this pre-roll rather than the agent's memory.
            self._gops.clear()

    # -- clips --------------------------------------------------------------------------

    def _start_event(self, trigger: Sample) -> None:
        self._events += 1
        self._last_motion = trigger.time
        # An empty ring (no keyframe seen yet) still hands over the trigger's own frames.
        first = [s for gop in self._gops for s in gop] or [trigger]
        self._gops.clear()
        self._open(self._events, 0, trigger=trigger.time, first=first)

    def _open(self, event: int, part: int, *, trigger: float, first: list[Sample]) -> None:
        room = self.spool.room
        if room is not None:
            # Before a clip starts: the oldest clips go if the disk is short of its
            # reserve, so this one (the newest) has room (room.py).
            try:
                room.make_room()
            except OSError as exc:
                log.warning("spool.make_room_failed", camera=self.camera, error=str(exc))
        path = self.spool.tmp_path()
        writer: ClipWriter
        try:
            if self._copy:
                assert self.info.stream is not None  # noqa: S101 - can_stream_copy checked it
                writer = StreamCopyWriter(path, self.info.stream, self.info.fps, self.info.audio)
            else:
                info = self.info
                writer = ReencodeWriter(
                    path, info.width, info.height, info.fps, self.mask, info.audio
                )
        except Exception:
            log.exception("clip_open_failed", camera=self.camera, event=event)
            path.unlink(missing_ok=True)
            return
        clip = _Clip(writer, event, part, trigger, trigger, time.time() - trigger)
        self._clip = clip
        for s in first:
            self._write(clip, s)

    def _write(self, clip: _Clip, sample: Sample) -> None:
        if self._clip is not clip:
            return  # this clip already failed
        try:
            clip.writer.write(sample)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback by _failed
            # One bad packet or a full disk costs this clip, not the camera's pipeline.
            self._failed(clip, exc)
            self._clip = None
            return
        if not clip.started and clip.writer.frames:
            clip.started = True
            clip.start = sample.time
        clip.last_time = sample.time

    def _note(
        self, sample: Sample, labels: Iterable[str], boxes: Sequence[LabelledBox], score: float
    ) -> None:
        clip = self._clip
        if clip is None:
            return
        clip.labels.update(labels)
        for box in boxes:
            if len(clip.boxes) < MAX_BOXES:
                clip.boxes.append(
                    {
                        "t": round(sample.time - clip.start, 3),
                        "label": box.label,
                        "confidence": round(box.confidence, 3),
                        "box": [round(v, 4) for v in box.box],
                    }
                )
        if sample.frames and (clip.thumb is None or score > clip.peak_score):
            clip.thumb = sample.frames[-1]
        clip.peak_score = max(clip.peak_score, score)

    def _finish(self, clip: _Clip) -> FinishedClip | None:
        self._clip = None
        end = clip.last_time + self._frame_s
        try:
            clip.writer.close()
        except Exception as exc:  # noqa: BLE001 - logged with its traceback by _failed
            self._failed(clip, exc)
            return None
        if clip.writer.frames == 0:
            clip.writer.abort()
            return None
        metadata = {
            "camera": self.camera,
            "event": clip.event,
            "part": clip.part,
            "trigger": clip.trigger,
            "start": clip.start,
            "end": end,
            "start_utc": _iso(clip.wall_offset + clip.start),
            "end_utc": _iso(clip.wall_offset + end),
            "duration_s": round(end - clip.start, 3),
            "labels": sorted(clip.labels),
            "boxes": clip.boxes,
            "peak_score": clip.peak_score,
            "codec": "h264",
            "width": clip.writer.width,
            "height": clip.writer.height,
            "frames": clip.writer.frames,
            "reencoded": clip.writer.reencoded,
            # The clip has the camera's sound (its `audio` is on and the camera has some).
            "audio": clip.writer.audio is not None,
            "sha256": _sha256(clip.writer.path),
        }
        try:
            entry = self.spool.commit(clip.writer.path, self._thumbnail(clip), metadata)
        except OSError as exc:
            # A full or failing disk loses this clip (the commit already made room and
            # tried again); the camera keeps running and the next event may find space.
            clip.writer.path.unlink(missing_ok=True)
            self._lost(clip, exc, "clip_spool_failed")
            return None
        log.info(
            "clip_finished",
            camera=self.camera,
            clip=entry.id,
            duration_s=metadata["duration_s"],
            reencoded=clip.writer.reencoded,
        )
        return FinishedClip(entry, clip.start, end, clip.writer.reencoded)

    def _failed(self, clip: _Clip, exc: Exception) -> None:
        """Writing the clip failed: its temporary file goes, and room is made for the
        next one when the disk was full."""
        clip.writer.abort()
        self._lost(clip, exc, "clip_write_failed")
        room = self.spool.room
        if room is not None and is_disk_full(exc):
            try:
                room.make_room()
            except OSError as error:
                log.warning("spool.make_room_failed", camera=self.camera, error=str(error))

    def _lost(self, clip: _Clip, exc: Exception, event: str) -> None:
        room = self.spool.room
        if room is not None and is_disk_full(exc):
            # Expected on a full disk: one warning line and a count, not a traceback.
            room.note_discarded(self.camera, str(exc))
            log.warning(event, camera=self.camera, event_no=clip.event, error=str(exc))
        else:
            log.error(event, camera=self.camera, event_no=clip.event, exc_info=exc)

    def _thumbnail(self, clip: _Clip) -> bytes | None:
        if clip.thumb is None:
            return None
        image = self.mask.apply_rgb(np.asarray(clip.thumb.to_ndarray(format="bgr24"), np.uint8))
        h, w = image.shape[:2]
        if w > THUMB_MAX_WIDTH:  # masked at full size first, so no zone edge blurs open
            size = (THUMB_MAX_WIDTH, max(1, round(h * THUMB_MAX_WIDTH / w)))
            image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return bytes(buf) if ok else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
