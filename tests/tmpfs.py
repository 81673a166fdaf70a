"""A real filesystem that fills up: a small tmpfs mounted for one test.

Mounting needs root (the test command runs as root on the project's machines and in CI).
Elsewhere the test is skipped with the reason printed, except in CI, where it must run.
`fill(directory, leave_bytes)` takes the room with a filler file, so a test can leave a
few KiB free and top the filler up while uploads run, then `release` it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI") == "true"
FILLER = ".filler"
MOUNT, UMOUNT = shutil.which("mount"), shutil.which("umount")


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if MOUNT is None or UMOUNT is None:
        return "mount/umount are not installed"
    return None


@contextlib.contextmanager
def small_tmpfs(path: Path, size_bytes: int) -> Iterator[Path]:
    """Mount a tmpfs of `size_bytes` at `path` (created) for the block; skip if impossible."""
    reason = _unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI must run the disk-full tests: {reason}")
        pytest.skip(f"no small filesystem to fill: {reason}")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        [str(MOUNT), "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        message = f"mount -t tmpfs failed: {mounted.stderr.strip() or mounted.returncode}"
        if IN_CI:
            pytest.fail(f"CI must run the disk-full tests: {message}")
        pytest.skip(f"no small filesystem to fill: {message}")
    try:
        yield path
    finally:
        subprocess.run([str(UMOUNT), "-l", str(path)], capture_output=True, check=False)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(directory: Path, leave_bytes: int = 0) -> int:
    """Grow `directory`/.filler until at most `leave_bytes` are free (tmpfs has no
    reserved blocks); the filler's size afterwards."""
    filler = directory / FILLER
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        block = b"\0" * 4096
        while free_bytes(directory) > leave_bytes:
            want = min(len(block), free_bytes(directory) - leave_bytes)
            try:
                os.write(fd, block[: max(1, want)])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def release(directory: Path, keep_bytes: int = 0) -> None:
    """Shrink the filler to `keep_bytes` (0: remove it)."""
    filler = directory / FILLER
    if keep_bytes <= 0:
        filler.unlink(missing_ok=True)
    elif filler.exists():
        os.truncate(filler, keep_bytes)
