"""Where a clip's bytes wait while they arrive: per clip, under `<root>/<device>/`,

- `<seq>.clip.part`: the ciphertext received so far, appended in order;
- `<seq>.clip.parts`: the journal, one fixed-size record per appended part (its offset,
  length and SHA-256, `RECORD`), written after the part's data;
- `<seq>.thumb.part`: the sealed thumbnail, checked against the manifest on receipt and
  written whole (temporary file `<seq>.thumb.part.<random>.tmp`, fsync, rename).

The journal records what the camera sent, not what reached the disk. The resume offset
is the length its records cover (and the data file holds): a crash between a part's
data and its record leaves data past the journal's end, which the next append truncates
away, so the offset the server reports is always the end of a whole recorded part. At
completion the staged bytes are checked against the journal before anything is checked
against the manifest (`staged_check.py`): what the disk lost or mangled is then the
server's fault (503, no alert), and only bytes that match what was received and still
fail the manifest are the camera's (docs/clip-pipeline.md).

Parts are not fsynced one by one: if a crash loses or tears a staging file's tail, the
camera resends from the smaller offset the server then reports, and anything damaged is
caught by the journal check (the camera keeps its copy until the clip is verified).
Durability is paid once, when the verified clip is stored.

Every write checks its count (`fileio.write_all`); an `OSError` becomes `StorageFull`
(507) when the disk or quota is full, else `StorageUnavailable` (503), with one warning
line. A failed append is rolled back to the previous part boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import struct
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import structlog

from doorwarden import errors, fileio
from doorwarden.clips.verifiers import Verifiers
from doorwarden.formats.clip_files import READ_BLOCK
from doorwarden.storage.base import ClipStore, StorageError
from doorwarden.storage.base import StorageFull as BackendFull
from doorwarden.storage.local import LocalClipStore

log = structlog.get_logger("doorwarden.clips.staging")

# offset (u64), length (u64), SHA-256 of the part (32 bytes): 48 bytes, big-endian.
RECORD = struct.Struct(">QQ32s")

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Part:
    offset: int
    length: int
    sha256: bytes


@dataclass(frozen=True)
class Appended:
    """A part staged: the new resume offset, the part's SHA-256, and (local staging) the
    data file's identity after it (`verifiers.Tracked.fingerprint`)."""

    end: int
    sha256: bytes
    fingerprint: tuple[int, ...] | None = None


class WrongOffset(Exception):
    """The part does not start where the received bytes end."""

    def __init__(self, received: int) -> None:
        super().__init__(f"expected bytes from offset {received}")
        self.received = received


def storage_failure(
    exc: OSError | StorageError, doing: str, **where: object
) -> errors.StorageFull | errors.StorageUnavailable:
    """The server's own storage failed while it was `doing` something: 507 for a full
    disk or quota, 503 for anything else. Logged here as one warning line (no
    traceback: the cause is the storage, not the code); the answer names no path."""
    full = isinstance(exc, BackendFull) or fileio.is_disk_full(exc)
    reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    event = "clips.storage_full" if full else "clips.storage_unavailable"
    log.warning(event, doing=doing, reason=reason, **where)
    if full:
        return errors.StorageFull(f"The server's disk is full; it could not {doing}. Retry later.")
    return errors.StorageUnavailable(
        f"The server could not {doing}: its storage failed. Retry later."
    )


class Staging:
    """Upload staging in a local directory: one machine (`staging_s3.S3Staging` is the
    one instances share)."""

    shared = False

    def __init__(self, root: Path, verifiers: Verifiers | None = None) -> None:
        self.root = root
        self.verifiers = verifiers or Verifiers()
        # Weak: a lock lives while a request holds or waits for it, and no longer. Removing
        # it by hand (at discard) let a waiter and a newcomer hold two locks for one clip.
        self._locks: weakref.WeakValueDictionary[tuple[uuid.UUID, int], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def lock(self, device_id: uuid.UUID, sequence: int) -> asyncio.Lock:
        """One writer per clip at a time in this process (a retried request racing its
        original); across processes the journal's flock serialises appends."""
        return self._locks.setdefault((device_id, sequence), asyncio.Lock())

    def clip_path(self, device_id: uuid.UUID, sequence: int) -> Path:
        return self.root / str(device_id) / f"{sequence:012d}.clip.part"

    def journal_path(self, device_id: uuid.UUID, sequence: int) -> Path:
        return self.root / str(device_id) / f"{sequence:012d}.clip.parts"

    def thumb_path(self, device_id: uuid.UUID, sequence: int) -> Path:
        return self.root / str(device_id) / f"{sequence:012d}.thumb.part"

    def parts(self, device_id: uuid.UUID, sequence: int) -> list[Part]:
        """The recorded parts the data file holds (blocking; OSError propagates)."""
        journal, data = self.journal_path(device_id, sequence), self.clip_path(device_id, sequence)
        return _recorded(_read_or_empty(journal), _size_or_zero(data))

    def received(self, device_id: uuid.UUID, sequence: int) -> int:
        """The resume offset: the end of the last recorded part the data file holds."""
        try:
            parts = self.parts(device_id, sequence)
        except OSError as exc:
            raise storage_failure(exc, "read the staged clip", sequence=sequence) from None
        return parts[-1].offset + parts[-1].length if parts else 0

    async def append(self, device_id: uuid.UUID, sequence: int, start: int, data: bytes) -> int:
        """Append the part that starts at `start`; the new resume offset. `WrongOffset`
        if the received bytes end elsewhere."""
        return (await self.append_part(device_id, sequence, start, data)).end

    async def append_part(
        self, device_id: uuid.UUID, sequence: int, start: int, data: bytes, *, last: bool = False
    ) -> Appended:
        """As `append`; `last`: the part completes the clip, so the data file is fsynced
        now, in the worker thread beside the part's verification, rather than at
        completion (the store adopts this very file: its durability is paid once)."""
        return await self._io(
            "stage the clip's data",
            sequence,
            _append,
            self.clip_path(device_id, sequence),
            self.journal_path(device_id, sequence),
            start,
            data,
            last,
        )

    # The interface the upload services use (shared with staging_s3.S3Staging).

    async def offset(self, device_id: uuid.UUID, sequence: int) -> int:
        return await asyncio.to_thread(self.received, device_id, sequence)

    async def records(self, device_id: uuid.UUID, sequence: int) -> list[Part]:
        return await self._io("read the staged clip", sequence, self.parts, device_id, sequence)

    async def thumbnail(self, device_id: uuid.UUID, sequence: int) -> bytes | None:
        path = self.thumb_path(device_id, sequence)
        return await self._io("read the staged thumbnail", sequence, _read_or_none, path)

    async def unchanged(
        self, device_id: uuid.UUID, sequence: int, fingerprint: tuple[int, ...] | None
    ) -> bool:
        """Whether the data file is still the one the verifier saw written."""
        path = self.clip_path(device_id, sequence)
        return await asyncio.to_thread(_fingerprint_of, path) == fingerprint

    async def store_data(
        self, store: ClipStore, key: str, device_id: uuid.UUID, sequence: int
    ) -> None:
        """Store the staged data (verified) under `key`: a local store adopts the file
        (fsync + link, no second copy); any other store gets a copy."""
        path = self.clip_path(device_id, sequence)
        if isinstance(store, LocalClipStore):
            await store.adopt(key, path)
        else:
            await store.put(key, _async_blocks(path))

    async def store_thumbnail(
        self, store: ClipStore, key: str, device_id: uuid.UUID, sequence: int, data: bytes
    ) -> None:
        if isinstance(store, LocalClipStore):
            await store.adopt(key, self.thumb_path(device_id, sequence))
        else:
            await store.put(key, data)

    async def remove(self, device_id: uuid.UUID, sequence: int) -> None:
        self.verifiers.drop(device_id, sequence)
        await asyncio.to_thread(self.discard, device_id, sequence)

    async def remove_quietly(self, device_id: uuid.UUID, sequence: int) -> bool:
        self.verifiers.drop(device_id, sequence)
        return await asyncio.to_thread(self.discard_quietly, device_id, sequence)

    async def write_thumbnail(self, device_id: uuid.UUID, sequence: int, data: bytes) -> None:
        await self._io(
            "stage the thumbnail", sequence, _write, self.thumb_path(device_id, sequence), data
        )

    async def _io(
        self, doing: str, sequence: int, fn: Callable[_P, _T], /, *a: _P.args, **k: _P.kwargs
    ) -> _T:
        try:
            return await asyncio.to_thread(fn, *a, **k)
        except OSError as exc:
            raise storage_failure(exc, doing, sequence=sequence) from None

    def files(self, device_id: uuid.UUID, sequence: int) -> list[Path]:
        """Every file staged for the clip, temporary thumbnails of a crash included."""
        thumb = self.thumb_path(device_id, sequence)
        leftovers = list(thumb.parent.glob(f"{thumb.name}.*.tmp"))
        return [
            self.clip_path(device_id, sequence),
            self.journal_path(device_id, sequence),
            thumb,
            *leftovers,
        ]

    def discard(self, device_id: uuid.UUID, sequence: int) -> None:
        """Remove the clip's staging; `StorageUnavailable` if it could not be removed."""
        try:
            for path in self.files(device_id, sequence):
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise storage_failure(exc, "discard the staged clip", sequence=sequence) from None

    def discard_quietly(self, device_id: uuid.UUID, sequence: int) -> bool:
        """`discard` when the clip is safe elsewhere (verified): a failure is logged and
        left to the sweep (clips/sweep.py), not answered to the camera."""
        try:
            self.discard(device_id, sequence)
        except errors.DomainError:
            return False
        return True


# Blocking helpers, run in worker threads.


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _fingerprint(info: os.stat_result) -> tuple[int, ...]:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _fingerprint_of(path: Path) -> tuple[int, ...] | None:
    try:
        return _fingerprint(path.stat())
    except FileNotFoundError:
        return None


async def _async_blocks(path: Path) -> AsyncIterator[bytes]:
    """The staged file in blocks, read in a worker thread (the event loop never blocks)."""
    with path.open("rb") as f:
        while block := await asyncio.to_thread(f.read, READ_BLOCK):
            yield block


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _recorded(journal: bytes, data_size: int) -> list[Part]:
    """The journal's records that chain from offset 0 and lie within the data file. A
    torn last record (a crash mid-write), a record out of order or one past the data's
    end (a crash lost the data's tail) ends the list: what follows is received again."""
    parts: list[Part] = []
    end = 0
    for at in range(0, len(journal) - RECORD.size + 1, RECORD.size):
        offset, length, digest = RECORD.unpack_from(journal, at)
        if offset != end or length == 0 or end + length > data_size:
            break
        parts.append(Part(offset, length, digest))
        end += length
    return parts


def _mkdir(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def _append(
    data_path: Path, journal_path: Path, start: int, data: bytes, last: bool = False
) -> Appended:
    _mkdir(data_path)
    digest = hashlib.sha256(data).digest()
    jfd = os.open(journal_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(jfd, fcntl.LOCK_EX)  # released when jfd is closed
        dfd = os.open(data_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if os.fstat(dfd).st_nlink > 1:
            # The file was adopted by the clip store (a completion whose commit did not
            # happen): never change the stored object in place. Start the clip afresh.
            os.close(dfd)
            os.unlink(data_path)
            os.ftruncate(jfd, 0)
            dfd = os.open(data_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            journal = os.pread(jfd, os.fstat(jfd).st_size, 0)
            parts = _recorded(journal, os.fstat(dfd).st_size)
            received = parts[-1].offset + parts[-1].length if parts else 0
            if start != received:
                raise WrongOffset(received)
            recorded = len(parts) * RECORD.size
            # Anything past the last recorded part (data written before a crash, a torn
            # record) is dropped, so the part lands exactly at the reported offset.
            if os.fstat(dfd).st_size != received:
                os.ftruncate(dfd, received)
            if len(journal) != recorded:
                os.ftruncate(jfd, recorded)
            try:
                os.lseek(dfd, received, os.SEEK_SET)
                fileio.write_all(dfd, data)
                os.lseek(jfd, recorded, os.SEEK_SET)
                fileio.write_all(jfd, RECORD.pack(received, len(data), digest))
                if last:
                    os.fsync(dfd)
            except OSError:
                # Back to the part boundary: the space is freed and the offset stays right
                # (the journal would ignore the tail anyway; this keeps the disk clean).
                _truncate_quietly(jfd, recorded)
                _truncate_quietly(dfd, received)
                raise
            return Appended(received + len(data), digest, _fingerprint(os.fstat(dfd)))
        finally:
            os.close(dfd)
    finally:
        os.close(jfd)


def _truncate_quietly(fd: int, size: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, size)


def _write(path: Path, data: bytes) -> None:
    _mkdir(path)
    # A name of its own per write: two concurrent uploads of one thumbnail must not
    # share (and rename away) each other's temporary file.
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            fileio.write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
