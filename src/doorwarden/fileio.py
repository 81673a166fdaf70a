"""Writes that either land whole or fail loudly, for the server and the agent alike.

`os.write` may write fewer bytes than it was given (a nearly full disk, a signal, a pipe):
a caller that ignores the count syncs, renames and answers for a truncated file. Every
raw write here loops until the whole buffer is written; a write that makes no progress,
or an `OSError` such as ENOSPC or EIO, propagates. Buffered Python files
(`open(..., "wb")`) already loop in `write()` and raise on failure; these helpers are for
raw descriptors.

`is_disk_full` tells a full disk (or quota) from other storage failures: the first is
cured by room (answer 507, evict, retry later), the second by a person or by time (503).
"""

from __future__ import annotations

import errno
import os

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_all(fd: int, data: bytes | bytearray | memoryview) -> int:
    """Write every byte of `data` to `fd`; the count written (always len(data))."""
    view = memoryview(data).cast("B")
    written = 0
    while written < len(view):
        count = os.write(fd, view[written:])
        if count <= 0:  # POSIX says a regular file never does this; be sure anyway
            raise OSError(errno.EIO, "the write made no progress")
        written += count
    return written


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
    """`write_all` at an offset, without moving the file position."""
    view = memoryview(data).cast("B")
    written = 0
    while written < len(view):
        count = os.pwrite(fd, view[written:], offset + written)
        if count <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        written += count
    return written


def is_disk_full(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is an OSError for a full disk or quota."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
    return False
