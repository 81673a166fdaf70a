"""Reading a ZIP that an attacker may have written, for checking what is inside.

A disclosure package travels by e-mail, USB sticks and case files before someone checks
it, so the verifier assumes the worst, and nothing is unpacked on trust:

* `open_archive` reads only the central directory: the number of entries is capped, names
  are an allow-list (package_files.safe_name: no `..`, no absolute or drive paths, no
  backslashes or control characters), and duplicate names, links and encrypted entries are
  refused, each listed as a problem; nothing is written.
* `Archive.read` reads one entry into memory, up to a limit counted as it is read (a
  header can lie about the size), so a small index can be checked before anything else.
* `Archive.unpack` writes only the entries it is given, each up to its own limit: an entry
  not named is never read, and one that grows past its limit is cut off, deleted and
  refused. Files are created exclusively, never followed, inside the given folder only.

One bad entry never stops the others: every problem is listed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from doorwarden.formats.package_files import safe_name

MAX_ENTRIES = 100_000  # a package of 20,000 clips has ~60,000 entries
MAX_BYTES = 256 * 1024**3  # a ceiling for callers on any one unpacking
BLOCK = 1024 * 1024
_READ_ERRORS = (OSError, EOFError, zlib.error, NotImplementedError, RuntimeError)


class NotAZip(Exception):
    """The file cannot be read as a ZIP at all (the CLI exits 2)."""


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path  # where its bytes were unpacked
    size: int  # bytes actually read, whatever the header says
    sha256: str


@dataclass
class Unpacked:
    root: Path
    names: list[str] = field(default_factory=list)  # every name in the ZIP, as listed
    entries: dict[str, Entry] = field(default_factory=dict)  # those unpacked
    problems: list[str] = field(default_factory=list)  # each fails the verification
    too_large: set[str] = field(default_factory=set)  # past their limit: not unpacked


@dataclass(frozen=True)
class Read:
    """One entry read into memory. `data` is None when the entry is absent, was refused
    when the ZIP was opened, is larger than the limit, or cannot be read."""

    data: bytes | None
    too_large: bool = False
    problem: str | None = None  # damaged or unreadable: an error of the ZIP itself


def shown(name: str) -> str:
    return ascii(name if len(name) <= 120 else name[:120] + "...")


def too_large_problem(name: str, limit: int, what: str) -> str:
    return f"entry {shown(name)}: larger than the {limit} bytes {what} (refused, not unpacked)"


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if info.orig_filename != name:  # zipfile cuts a name at NUL; two readers, two names
        return f"entry {shown(info.orig_filename)}: a name with a NUL character"
    if not safe_name(name):
        return f"entry {shown(name)}: a name a package never holds (refused, not unpacked)"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return f"entry {shown(name)}: a symbolic link (refused)"
    if kind not in (0, stat.S_IFREG):
        return f"entry {shown(name)}: not a regular file (refused)"
    if info.flag_bits & 0x1:
        return f"entry {shown(name)}: encrypted (refused)"
    return None


def _open_zip(path: Path) -> tuple[zipfile.ZipFile, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotAZip(f"{path} does not exist") from None
    except OSError as exc:
        raise NotAZip(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):  # a FIFO would hang us
        raise NotAZip(f"{path} is not a regular file")
    try:
        return zipfile.ZipFile(path), st.st_size
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise NotAZip(f"{path} is not a ZIP file ({exc})") from None
    except OSError as exc:
        raise NotAZip(f"cannot read {path}: {exc.strerror or exc}") from exc


class Archive:
    """An open ZIP, surveyed from its central directory; nothing read or written yet."""

    def __init__(self, archive: zipfile.ZipFile, size: int, max_entries: int) -> None:
        self._zip = archive
        self.size = size  # of the ZIP file: what a stored entry's bytes can add up to
        infos = archive.infolist()
        self.names = [i.filename for i in infos]
        self.problems: list[str] = []  # each fails the verification
        self.warnings: list[str] = []
        self.usable: dict[str, zipfile.ZipInfo] = {}  # entries that may be read
        self.refused = len(infos) > max_entries  # over the cap: nothing may be read
        if self.refused:
            self.problems.append(f"refused: {len(infos)} entries, more than {max_entries}")
            return
        counts = Counter(self.names)
        for name, n in sorted(counts.items()):
            if n > 1:  # which copy is "the" file depends on the unzip tool: neither is
                self.problems.append(f"entry {shown(name)}: {n} entries with this name")
        for info in infos:
            if info.is_dir():
                self.warnings.append(f"ignored folder entry {shown(info.filename)}")
                continue
            problem = _entry_problem(info)
            if problem is not None:
                self.problems.append(problem)
            elif counts[info.filename] == 1:
                self.usable[info.filename] = info

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._zip.close()

    def read(self, name: str, limit: int) -> Read:
        """Entry `name` into memory, if it holds at most `limit` bytes."""
        info, limit = self.usable.get(name), max(0, limit)
        if info is None:
            return Read(None)
        if info.file_size > limit:  # the header admits it: not a byte is read
            return Read(None, too_large=True)
        data = bytearray()
        try:
            with self._zip.open(info) as src:
                while block := src.read(min(BLOCK, limit + 1 - len(data))):
                    data += block
                    if len(data) > limit:
                        return Read(None, too_large=True)
        except zipfile.BadZipFile as exc:  # a bad CRC: the bytes are kept, as unpack keeps them
            return Read(bytes(data), problem=f"entry {shown(name)}: damaged in the ZIP ({exc})")
        except _READ_ERRORS as exc:
            return Read(None, problem=f"entry {shown(name)}: cannot be read ({exc})")
        return Read(bytes(data))

    def unpack(self, into: Path, limits: Mapping[str, int], *, what: str) -> Unpacked:
        """Write the usable entries named in `limits` into the empty folder `into`, each up
        to its limit; `what` says where the limits come from, for the messages. At most
        sum(limits) bytes are written, whatever the ZIP holds."""
        into.mkdir(mode=0o700, parents=True, exist_ok=True)
        out = Unpacked(into.resolve(), list(self.names))
        for name, info in self.usable.items():  # in ZIP order: one pass over the file
            if name not in limits:
                continue  # not asked for: never read, never written
            limit = max(0, limits[name])  # (a negative read size would read it all)
            if info.file_size > limit:
                out.too_large.add(name)
                out.problems.append(too_large_problem(name, limit, what))
                continue
            self._unpack_one(info, out, limit, what)
        return out

    def _unpack_one(self, info: zipfile.ZipInfo, out: Unpacked, limit: int, what: str) -> None:
        name = info.filename
        target = out.root / name
        if not target.resolve().is_relative_to(out.root):  # safe_name should make this moot
            out.problems.append(f"entry {shown(name)}: outside the folder (refused)")
            return
        digest, size, created = hashlib.sha256(), 0, False
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(target, flags, 0o600)
            created = True
            with os.fdopen(fd, "wb") as f, self._zip.open(info) as src:
                # Read one byte past the limit at most, and write none past it.
                while block := src.read(min(BLOCK, limit + 1 - size)):
                    size += len(block)
                    if size > limit:
                        raise _OverLimit
                    digest.update(block)
                    f.write(block)
        except _OverLimit:
            target.unlink()
            out.too_large.add(name)
            out.problems.append(too_large_problem(name, limit, what))
            return
        except zipfile.BadZipFile as exc:
            # A bad CRC is noticed only once every byte was read: keep them, so the checks
            # that follow can also say which file is not what it should be.
            out.problems.append(f"entry {shown(name)}: damaged in the ZIP ({exc})")
        except _READ_ERRORS as exc:
            if created:  # (not a folder another entry's name made, say)
                target.unlink(missing_ok=True)
            out.problems.append(f"entry {shown(name)}: cannot be unpacked ({exc})")
            return
        out.entries[name] = Entry(name, target, size, digest.hexdigest())


def open_archive(path: Path, *, max_entries: int = MAX_ENTRIES) -> Archive:
    """The ZIP at `path`, surveyed; NotAZip if it cannot be read as one."""
    archive, size = _open_zip(path)
    try:
        return Archive(archive, size, max_entries)
    except BaseException:
        archive.close()
        raise


class _OverLimit(Exception):
    pass
