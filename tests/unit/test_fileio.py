"""Writes that land whole or fail: short writes are continued, a stuck or failing write
raises, and a full disk is told from other I/O errors."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from doorwarden import fileio


def _short_writer(monkeypatch: pytest.MonkeyPatch, most: int) -> list[int]:
    """os.write that writes at most `most` bytes per call, as a nearly full disk may."""
    calls: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        count = real_write(fd, bytes(data[:most]))
        calls.append(count)
        return count

    monkeypatch.setattr(os, "write", write)
    return calls


def test_write_all_continues_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(10_000)
    calls = _short_writer(monkeypatch, 3_000)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert fileio.write_all(fd, data) == len(data)
    finally:
        os.close(fd)
    assert calls == [3_000, 3_000, 3_000, 1_000]
    assert (tmp_path / "f").read_bytes() == data


def test_pwrite_all_continues_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, d, off: real_pwrite(fd, bytes(d[:7]), off))
    path = tmp_path / "f"
    path.write_bytes(b"x" * 40)
    fd = os.open(path, os.O_WRONLY)
    try:
        fileio.pwrite_all(fd, b"abcdefghijklmnopqrst", 10)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * 10 + b"abcdefghijklmnopqrst" + b"x" * 10


def test_a_write_without_progress_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="no progress") as caught:
            fileio.write_all(fd, b"data")
    finally:
        os.close(fd)
    assert caught.value.errno == errno.EIO


def test_enospc_propagates_and_is_disk_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space") as caught:
            fileio.write_all(fd, b"data")
    finally:
        os.close(fd)
    assert fileio.is_disk_full(caught.value)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_is_disk_full_follows_the_cause_chain(code: int) -> None:
    def store() -> None:
        try:
            raise OSError(code, os.strerror(code))
        except OSError as exc:
            raise RuntimeError("store failed") from exc

    with pytest.raises(RuntimeError, match="store failed") as wrapped:
        store()
    assert fileio.is_disk_full(wrapped.value)


@pytest.mark.parametrize("exc", [OSError(errno.EIO, "I/O error"), ValueError("no"), OSError()])
def test_other_errors_are_not_disk_full(exc: BaseException) -> None:
    assert not fileio.is_disk_full(exc)
