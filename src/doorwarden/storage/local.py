"""`LocalClipStore`: objects as files under one root directory (the single-machine default).

An object is written to a temporary file in its final directory (`.tmp-<random>`, mode
0600), flushed and fsynced, then renamed over the key's path and the directory fsynced:
the rename is atomic, so a reader sees the old object or the new one, whole, and after a
power cut the store holds one of them, never a torn file. Temporary files left by a
crash are never listed or served (their names cannot be keys) and `cleanup_partial()`
removes them.

Directories are created 0700 and files 0600 explicitly, whatever the process umask:
clips are ciphertext, but who recorded what and when is in the key, and the store is
nobody else's business.

Every write checks its count (`fileio.write_all`: a nearly full disk writes short), and
an `OSError` becomes `StorageFull` when the disk or quota is full (ENOSPC, EDQUOT, EFBIG),
else `StorageError`: the server answers 507 or 503, never blames the client.

File I/O blocks, so it runs in worker threads (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import os
import secrets
import stat
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from doorwarden import fileio
from doorwarden.storage.base import (
    DEFAULT_CHUNK_SIZE,
    ObjectNotFound,
    StorageError,
    StorageFull,
    check_chunk_size,
    check_range_arguments,
    resolve_range,
)
from doorwarden.storage.keys import validate_key, validate_prefix

TEMP_PREFIX = ".tmp-"  # starts with "." so no valid key can name it (keys.py)
DIR_MODE = 0o700
FILE_MODE = 0o600

_P = ParamSpec("_P")
_T = TypeVar("_T")


class LocalClipStore:
    """A `ClipStore` in a directory. The root is created (0700) on the first put."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        # Temporary files of puts in progress in this process, which cleanup_partial()
        # must leave alone even when asked to remove everything.
        self._writing: set[Path] = set()

    def __repr__(self) -> str:
        return f"LocalClipStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    async def _run(
        self, op: str, key: str, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run blocking file I/O in a thread; an OSError becomes a StorageError
        (StorageFull for a full disk or quota)."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            error = StorageFull if fileio.is_disk_full(exc) else StorageError
            raise error(f"local store: {op} of {key!r} failed: {reason}") from exc

    async def put(self, key: str, chunks: AsyncIterable[bytes] | bytes) -> int:
        target = self._path(key)
        tmp, file = await self._run("put", key, self._create_temp, target.parent)
        self._writing.add(tmp)
        committed = False
        try:
            try:
                written = 0
                if isinstance(chunks, bytes | bytearray | memoryview):
                    written = await self._run("put", key, file.write, chunks)
                else:
                    # The source's own exceptions propagate unchanged: only our I/O is
                    # wrapped (in _run), so a failing upload is not mistaken for a disk error.
                    async for chunk in chunks:
                        if chunk:
                            written += await self._run("put", key, file.write, chunk)
                await self._run("put", key, file.sync)
            finally:
                file.close()
            await self._run("put", key, _commit, tmp, target)
            committed = True
            return written
        finally:
            if not committed:
                # Synchronous on purpose: this also runs on cancellation, when awaiting a
                # thread is not reliable, and it is one unlink of our own temp file.
                _discard(tmp)
            self._writing.discard(tmp)

    async def adopt(self, key: str, path: Path) -> int:
        """Store the file at `path` under `key` without a second copy of its bytes: fsync
        it, hard-link it under a temporary name in the key's directory, rename that over
        the key, fsync the directory. `path` stays (the caller removes it once the object
        is safely recorded). Where no link can be made (another filesystem, a filesystem
        without hard links) the file is copied by `put`. Returns the object's size.

        The object then shares its data with `path`: the caller must never modify the
        file in place afterwards (staging.py replaces a shared file instead)."""
        target = self._path(key)
        try:
            return await self._run("put", key, _link_in, path, target)
        except _CannotLink:
            return await self.put(key, _read_file(path))

    def _create_temp(self, directory: Path) -> tuple[Path, _TempFile]:
        _make_dirs(directory)
        path = directory / f"{TEMP_PREFIX}{secrets.token_hex(12)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(path, flags, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # exact, whatever the umask took away or left
            return path, _TempFile(fd)
        except BaseException:
            os.close(fd)
            _discard(path)
            raise

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        path = self._path(key)
        check_range_arguments(key, start, end)
        return await self._run("read", key, _read_range, path, key, start, end)

    def stream(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        check_range_arguments(key, start, end)
        check_chunk_size(chunk_size)
        return self._stream(path, key, start, end, chunk_size)

    async def _stream(
        self, path: Path, key: str, start: int, end: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        # One open file for the whole stream: a put that replaces the object meanwhile
        # swaps the directory entry, not this file, so the stream stays one version.
        fd, size = await self._run("read", key, _open_object, path, key)
        try:
            stop = resolve_range(key, start, end, size)
            position = start
            while position < stop:
                count = min(chunk_size, stop - position)
                data = await self._run("read", key, _pread_exactly, fd, count, position)
                position += len(data)
                yield data
        finally:
            os.close(fd)

    async def size(self, key: str) -> int:
        path = self._path(key)
        return await self._run("stat", key, _regular_size, path, key)

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await self._run("delete", key, _delete, path)

    async def list(self, prefix: str = "") -> builtins.list[str]:
        trimmed = validate_prefix(prefix)
        base = self.root.joinpath(*trimmed.split("/")) if trimmed else self.root
        return await self._run("list", prefix, _walk_keys, self.root, base)

    async def cleanup_partial(self, *, older_than_s: float = 0.0) -> int:
        """Remove temporary files left by interrupted puts; return how many.

        Puts in progress in this process are always spared. Another process writing to
        the same root is not known here: there, pass `older_than_s` longer than any put
        can take, or call this at startup before serving.
        """
        cutoff = time.time() - older_than_s
        spared = frozenset(self._writing)
        return await self._run("cleanup", "", _remove_temps, self.root, cutoff, spared)


# Blocking helpers, run in worker threads.


def _make_dirs(directory: Path) -> None:
    """Create `directory` and any missing parents, each 0700, and make the new entries
    durable (a file renamed into a directory whose own entry was lost is lost too)."""
    missing = []
    current = directory
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            continue  # a concurrent put made it; it set the mode
        os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask; be exact
        _fsync_dir(path.parent)


class _TempFile:
    """A put's raw descriptor, written whole (`fileio.write_all`) from worker threads.

    A put cancelled while a write runs in its thread closes the file at once; the lock
    makes that close wait for the write, and the flag stops a write that had not started
    yet, so no thread ever writes to a descriptor number the process has reused since."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, "the put was abandoned")
            return fileio.write_all(self._fd, data)

    def sync(self) -> None:
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, "the put was abandoned")
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                # After fsync, close reports nothing new on a local filesystem; on a
                # failed put the error that matters is already propagating.
                with contextlib.suppress(OSError):
                    os.close(self._fd)


class _CannotLink(Exception):
    """This filesystem (pair) makes no hard link here: copy instead."""


_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def _link_in(source: Path, target: Path) -> int:
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        os.fsync(fd)  # durable before it is named as an object
    finally:
        os.close(fd)
    _make_dirs(target.parent)
    tmp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(12)}"
    try:
        os.link(source, tmp)
    except OSError as exc:
        if exc.errno in _NO_LINK:
            raise _CannotLink from None
        raise
    try:
        os.chmod(tmp, FILE_MODE)
        _commit(tmp, target)
    except BaseException:
        _discard(tmp)
        raise
    return info.st_size


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        while block := await asyncio.to_thread(os.read, fd, DEFAULT_CHUNK_SIZE):
            yield block
    finally:
        os.close(fd)


def _commit(tmp: Path, target: Path) -> None:
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _open_object(path: Path, key: str) -> tuple[int, int]:
    """An open descriptor on the object's file and its size; ObjectNotFound unless the
    key names a regular file (a directory or a symlink is not an object)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        raise ObjectNotFound(key) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise ObjectNotFound(key) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ObjectNotFound(key)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def _pread_exactly(fd: int, count: int, offset: int) -> bytes:
    parts = []
    while count > 0:
        data = os.pread(fd, count, offset)
        if not data:
            # Only if someone truncated the file in place, bypassing the store.
            raise StorageError("the object's file is shorter than its recorded size")
        parts.append(data)
        count -= len(data)
        offset += len(data)
    return b"".join(parts)


def _read_range(path: Path, key: str, start: int, end: int) -> bytes:
    fd, size = _open_object(path, key)
    try:
        stop = resolve_range(key, start, end, size)
        return _pread_exactly(fd, stop - start, start)
    finally:
        os.close(fd)


def _regular_size(path: Path, key: str) -> int:
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ObjectNotFound(key) from None
    if not stat.S_ISREG(info.st_mode):
        raise ObjectNotFound(key)
    return info.st_size


def _delete(path: Path) -> None:
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return  # nothing stored under this key: deleting is idempotent
    _fsync_dir(path.parent)


def _walk_keys(root: Path, base: Path) -> list[str]:
    keys: list[str] = []
    pending = [base]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except (FileNotFoundError, NotADirectoryError):
            continue  # an empty prefix, or one naming an object rather than a folder
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    pending.append(path)
            elif entry.is_file(follow_symlinks=False):
                key = path.relative_to(root).as_posix()
                if _is_key(key):  # skips temp files, and stray files no key could name
                    keys.append(key)
    return sorted(keys)


def _is_key(key: str) -> bool:
    try:
        validate_key(key)
    except ValueError:
        return False
    return True


def _remove_temps(root: Path, cutoff: float, spared: frozenset[Path]) -> int:
    removed = 0
    for directory, _subdirs, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if not name.startswith(TEMP_PREFIX) or path in spared:
                continue
            try:
                if os.lstat(path).st_mtime <= cutoff:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue  # its put finished (renamed it) or failed (removed it) meanwhile
    return removed
