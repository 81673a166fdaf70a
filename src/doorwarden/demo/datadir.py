"""The demo's data directory: everything one demo instance keeps between runs.

.doorwarden-demo   marks the directory as the demo's (--fresh removes nothing else)
demo.lock          held while a demo runs on it (a second one is refused)
secret_key         the instance secret, 0600: sessions, TOTP secrets and the household
                   keys clips are sealed to hang on it, so it must survive restarts
doorwarden.db      SQLite (WAL)          clips/  the clip store (local files)
agents/<home>/     each camera agent's state (device key, pairing) and spool
footage/           the synthetic camera's scene, rendered once
packages/          disclosure packages the scenario downloaded, as an agency would
scenario.json      what the last --scenario did (ids and URLs), for scripts and tests
demo.log           the server's and the agents' logs
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

MARKER = ".doorwarden-demo"
SECRET_FILE = "secret_key"
LOCK_FILE = "demo.lock"
# What a demo data directory made before the marker existed may hold.
OLD_DEMO_ENTRIES = {"doorwarden.db", "doorwarden.db-wal", "doorwarden.db-shm", "clips", "staging"}
VTEST = Path("shared/data/vtest.avi")
DEBIAN_VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


class DataDirError(Exception):
    """The data directory cannot be used; the message says why and what to do."""


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def _names(directory: Path) -> set[str]:
    """What the directory holds, but the lock (which only says a demo may be running)."""
    return set(_entries(directory)) - {LOCK_FILE}


def check(directory: Path, *, fresh: bool) -> None:
    """Refuse a directory the demo must not use (or, with --fresh, empty): one that holds
    something other than a demo's data. Nothing is written before this check."""
    names = _names(directory)
    if not names or MARKER in names:
        return
    if set(names) <= OLD_DEMO_ENTRIES:
        if fresh:
            return
        raise DataDirError(
            f"{directory} was made by an older doorwarden demo, which did not keep its "
            "secret key (its clips cannot be opened any more): start over with --fresh"
        )
    what = "--fresh removes nothing there" if fresh else "the demo would add its accounts"
    raise DataDirError(
        f"{directory} is not empty and is not a doorwarden demo data directory (no {MARKER} "
        f"in it): {what}. Pick another --data-dir."
    )


def wipe(directory: Path) -> list[str]:
    """--fresh: remove a demo data directory's contents, but its lock (held by the caller:
    no other demo is using it); what was removed, one line each."""
    check(directory, fresh=True)
    removed = []
    for name in sorted(_names(directory)):
        path = directory / name
        size = _size(path)
        folder = path.is_dir() and not path.is_symlink()
        if folder:
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(f"{name}{'/' if folder else ''} ({size / 1e6:.1f} MB)")
    return removed


class DataDir:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.database = self.root / "doorwarden.db"
        self.agents = self.root / "agents"
        self.footage = self.root / "footage"
        self.packages = self.root / "packages"
        self.scenario = self.root / "scenario.json"
        self.log = self.root / "demo.log"

    def prepare(self) -> bool:
        """Make or check the directory; True if it was made just now (a first run)."""
        check(self.root, fresh=False)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        marker = self.root / MARKER
        first = not marker.exists()
        if first:
            marker.write_text("A doorwarden demo instance: `doorwarden demo --fresh` empties it.\n")
        return first

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Held while this demo runs, so two demos never share one database and spool."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataDirError(
                    f"another doorwarden demo is running on {self.root}; stop it first "
                    "(Ctrl-C), or give this one another --data-dir"
                ) from None
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def secret_key(self) -> str:
        """The instance secret: made once (0600, never readable by others), then kept."""
        path = self.root / SECRET_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return _read_secret(path)
        secret = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(secret + "\n")
            f.flush()
            os.fsync(f.fileno())
        return secret


def _read_secret(path: Path) -> str:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise DataDirError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise DataDirError(
            f"{path} is readable by other users; it holds the instance secret. If nobody "
            f"else could have read it: chmod 600 {path}"
        )
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise DataDirError(f"{path} is damaged (too short); start over with --fresh")
    return secret


def find_vtest(explicit: Path | None, repository: Path) -> Path | None:
    """OpenCV's vtest.avi: as given, next to the repository (../shared/data), next to
    the working directory, or from Debian's opencv-doc; None when nowhere."""
    candidates = [explicit] if explicit is not None else []
    candidates += [repository.parent / VTEST, Path.cwd().parent / VTEST, Path.cwd() / VTEST]
    candidates.append(DEBIAN_VTEST)
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate.resolve()
    return None
