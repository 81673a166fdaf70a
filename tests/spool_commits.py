"""Counting an agent's spool commits from outside its code: inotify on the spool
directory sees each sidecar renamed into place (the commit marker, recording/spool.py),
so a test or a benchmark knows every clip a camera recorded even when the agent is
killed a millisecond later."""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

IN_MOVED_TO = 0x80
IN_Q_OVERFLOW = 0x4000
_EVENT = struct.Struct("iIII")


class Commits:
    """Names of the sidecars renamed into a directory (its spool entries' commits)."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self.fd, os.fsencode(directory), IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.names: set[str] = set()

    def read(self) -> set[str]:
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return self.names
            offset = 0
            while offset < len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length]
                offset += _EVENT.size + length
                assert not mask & IN_Q_OVERFLOW, "inotify dropped events"
                if name.rstrip(b"\0").endswith(b".json"):
                    self.names.add(name.rstrip(b"\0").decode())

    def close(self) -> None:
        os.close(self.fd)
