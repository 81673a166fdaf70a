"""OS faults injected at the n-th write, fsync, rename or link (issue 23: ENOSPC and EIO
at each write and fsync of the spool, the sealed spool and the status files).

What is patched is the operating system's side only (`os.fsync`, `os.replace`,
`os.link`, `os.write`, and the `write` of files opened for writing through `io.open`,
which `Path.open` and `os.fdopen` use): the code under test runs unchanged. `Faults`
first counts the calls of a clean run (`record`), then a test fails one of them.
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

KINDS = ("write", "fsync", "replace", "link")


class _Writer:
    """A file opened for writing whose `write` goes through the fault counter."""

    def __init__(self, real: Any, faults: Faults) -> None:
        self._real = real
        self._faults = faults

    def write(self, data: Any) -> Any:
        self._faults.tick("write")
        return self._real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()


class Faults:
    def __init__(self, fail_at: int | None = None, err: int = errno.ENOSPC) -> None:
        self.fail_at = fail_at
        self.err = err
        self.calls: list[str] = []

    def tick(self, kind: str) -> None:
        self.calls.append(kind)
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise OSError(self.err, f"{os.strerror(self.err)} (injected at {kind})")

    @contextmanager
    def active(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
        real_open = io.open

        def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(file, mode, *args, **kwargs)
            return _Writer(handle, self) if any(c in mode for c in "wax+") else handle

        def wrap(kind: str, real: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                self.tick(kind)
                return real(*args, **kwargs)

            return call

        with monkeypatch.context() as patch:
            patch.setattr(io, "open", opener)
            patch.setattr(os, "write", wrap("write", os.write))
            patch.setattr(os, "fsync", wrap("fsync", os.fsync))
            patch.setattr(os, "replace", wrap("replace", os.replace))
            patch.setattr(os, "link", wrap("link", os.link))
            yield self


def count(monkeypatch: pytest.MonkeyPatch, action: Callable[[], object]) -> list[str]:
    """The OS calls `action` makes when nothing fails."""
    faults = Faults()
    with faults.active(monkeypatch):
        action()
    return faults.calls
