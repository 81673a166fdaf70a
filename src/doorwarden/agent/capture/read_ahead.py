"""Decoding ahead of the camera's thread, for a file processed as fast as it decodes.

Why: the camera's thread alternates between decoding a packet (FFmpeg's frame threads
busy, Python idle) and the pipeline's work on it (motion, now and then a person
detector call of 25-200 ms, with the decoder idle). For a live camera that is fine: the
stream arrives at its frame rate and both fit between two frames. For a file run with
`--once` it leaves cores idle: measured on a 20 s 1080p30 file, 2 cores, the whole agent
took 1.35x the wall time of a plain decode with the pipeline on the decoding thread, and
1.09x with the decode running up to `DEPTH` samples ahead on a thread of its own (the same
CPU time: the work overlaps, it does not shrink). BENCHMARKS.md has the figures.

Where it is used, and why only there (`VideoSource.reads_ahead`): an unpaced file that
does not loop. Its `info` never changes while it is read, and every packet's frames are
decoded, so a sample handed over late is exactly the sample handed over at once, and
the pipeline's output is the same. A paced or live source gains nothing (the camera's
thread keeps up), an RTSP source's `info` is replaced on a reconnect (the pipeline
compares it as each sample is handled), and a camera with a sub-stream switches the main
stream's decoder on and off as it goes (substream.py): `CameraJob.opened` turns reading
ahead off for those.

Memory: at most `DEPTH` samples wait, with their decoded frames (about 3 MB each at
1080p), only while the pipeline is behind the decoder.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator

from doorwarden.agent.capture.media import Sample
from doorwarden.agent.capture.source import VideoSource

DEPTH = 16  # samples decoded ahead at most: enough to cover a detector call at 30 fps
_POLL_S = 0.1  # how often a blocked reader looks whether the camera's thread gave up


def samples_of(source: VideoSource) -> Generator[Sample, None, None]:
    """The source's samples as the camera's thread should take them. Close the iterator
    (`contextlib.closing`) before closing the source: reading ahead stops and its thread
    is joined first, so the container is never closed under it."""
    if source.reads_ahead:
        return read_ahead(source)
    return _in_turn(source)


def _in_turn(source: VideoSource) -> Generator[Sample, None, None]:
    yield from source.samples()


def read_ahead(source: VideoSource, depth: int = DEPTH) -> Generator[Sample, None, None]:
    """`source.samples()` read on a thread of its own, up to `depth` samples ahead, in
    order; an exception the source raises is raised here, after the samples before it."""
    waiting: queue.Queue[Sample | BaseException | None] = queue.Queue(maxsize=depth)
    given_up = threading.Event()

    def put(item: Sample | BaseException | None) -> bool:
        while not given_up.is_set():
            try:
                waiting.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for sample in source.samples():
                if not put(sample):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the camera's thread, raised there
            put(exc)
            return
        put(None)

    reader = threading.Thread(target=read, name=f"read-ahead-{source.camera}", daemon=True)
    reader.start()
    try:
        while True:
            item = waiting.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # The camera's thread is done (the end, an error, or the agent stopping): stop
        # the source between packets and wait for the reader, so that closing the source
        # afterwards never pulls the container from under a decode in progress.
        given_up.set()
        source.stop()
        reader.join()
