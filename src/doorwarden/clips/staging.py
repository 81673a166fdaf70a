"""Where a clip's bytes wait while they arrive: one file per clip under the data
directory, appended in order, so an upload resumes after either side restarts. The
file's size is the resume offset (the database could lag a crash).

Parts are not fsynced one by one: if a crash loses or tears the tail of a staging file,
the camera resends from the smaller size the server then reports, and anything torn is
caught by the hash check at completion (the camera keeps its copy until the clip is
verified). Durability is paid once, when the verified clip is stored."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

READ_BLOCK = 1024 * 1024


class Staging:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[tuple[uuid.UUID, int], asyncio.Lock] = {}

    def lock(self, device_id: uuid.UUID, sequence: int) -> asyncio.Lock:
        """One writer per clip at a time (a retried request racing its original)."""
        return self._locks.setdefault((device_id, sequence), asyncio.Lock())

    def clip_path(self, device_id: uuid.UUID, sequence: int) -> Path:
        return self.root / str(device_id) / f"{sequence:012d}.clip.part"

    def thumb_path(self, device_id: uuid.UUID, sequence: int) -> Path:
        return self.root / str(device_id) / f"{sequence:012d}.thumb.part"

    def received(self, device_id: uuid.UUID, sequence: int) -> int:
        try:
            return self.clip_path(device_id, sequence).stat().st_size
        except FileNotFoundError:
            return 0

    async def append(self, path: Path, data: bytes) -> int:
        return await asyncio.to_thread(_append, path, data)

    async def write(self, path: Path, data: bytes) -> None:
        await asyncio.to_thread(_write, path, data)

    def discard(self, device_id: uuid.UUID, sequence: int) -> None:
        thumb = self.thumb_path(device_id, sequence)
        leftovers = list(thumb.parent.glob(f"{thumb.name}.*.tmp"))  # from a crash mid-write
        for path in (self.clip_path(device_id, sequence), thumb, *leftovers):
            path.unlink(missing_ok=True)
        self._locks.pop((device_id, sequence), None)


def _mkdir(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def _append(path: Path, data: bytes) -> int:
    _mkdir(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    _mkdir(path)
    # A name of its own per write: two concurrent uploads of one thumbnail must not
    # share (and rename away) each other's temporary file.
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
