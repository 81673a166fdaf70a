"""OS faults injected at the system-call boundary: `os.write` returning short counts, and
an `OSError` (ENOSPC, EIO) at the n-th `os.write` or `os.fsync`. Only descriptors of
files under `root` are touched (resolved through /proc/self/fd), so the test runner's
own writes and the event loop are left alone. Our code runs unchanged above it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest


class Faults:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        if not Path("/proc/self/fd").is_dir():
            pytest.skip("needs /proc/self/fd to tell the test's files from the runner's")
        self.root = str(root.resolve())
        self.writes = 0
        self.fsyncs = 0
        self.short: int | None = None  # at most this many bytes per write
        self.fail_write_at: int | None = None  # the n-th write (from 1) raises
        self.fail_fsync_at: int | None = None
        self.errno = errno.ENOSPC
        real_write, real_fsync = os.write, os.fsync

        def write(fd: int, data: bytes | memoryview) -> int:
            if not self._ours(fd):
                return real_write(fd, data)
            self.writes += 1
            if self.writes == self.fail_write_at:
                raise OSError(self.errno, os.strerror(self.errno))
            view = memoryview(data)
            return real_write(fd, view[: self.short] if self.short else view)

        def fsync(fd: int) -> None:
            if not self._ours(fd):
                real_fsync(fd)
                return
            self.fsyncs += 1
            if self.fsyncs == self.fail_fsync_at:
                raise OSError(self.errno, os.strerror(self.errno))
            real_fsync(fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)

    def _ours(self, fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(self.root)
        except OSError:
            return False

    def reset(self, *, short: int | None = None, code: int = errno.ENOSPC) -> None:
        self.writes = self.fsyncs = 0
        self.short = short
        self.fail_write_at = self.fail_fsync_at = None
        self.errno = code
