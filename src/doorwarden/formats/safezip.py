"""Unpacking a ZIP that an attacker may have written, for checking what is inside.

A disclosure package travels by e-mail, USB sticks and case files before someone checks
it, so the verifier assumes the worst: the number of entries and the bytes unpacked are
capped (counted as they are read, not as the headers claim), names are an allow-list
(packagefiles.safe_name: no `..`, no absolute or drive paths, no backslashes or control
characters), duplicate names, links and encrypted entries are refused, and nothing is
written outside the given empty folder (files are created exclusively, never followed).
One bad entry never stops the others from being unpacked: every problem is listed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from doorwarden.formats.package_files import safe_name

MAX_ENTRIES = 100_000  # a package of 20,000 clips has ~60,000 entries
MAX_BYTES = 256 * 1024**3  # 256 GiB: a large warrant's clips, and a ceiling on a bomb
BLOCK = 1024 * 1024


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
    warnings: list[str] = field(default_factory=list)
    refused: bool = False  # over a cap: nothing was unpacked


def _shown(name: str) -> str:
    return ascii(name if len(name) <= 120 else name[:120] + "...")


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if info.orig_filename != name:  # zipfile cuts a name at NUL; two readers, two names
        return f"entry {_shown(info.orig_filename)}: a name with a NUL character"
    if not safe_name(name):
        return f"entry {_shown(name)}: a name a package never holds (refused, not unpacked)"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return f"entry {_shown(name)}: a symbolic link (refused)"
    if kind not in (0, stat.S_IFREG):
        return f"entry {_shown(name)}: not a regular file (refused)"
    if info.flag_bits & 0x1:
        return f"entry {_shown(name)}: encrypted (refused)"
    return None


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotAZip(f"{path} does not exist") from None
    except OSError as exc:
        raise NotAZip(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):  # a FIFO would hang us
        raise NotAZip(f"{path} is not a regular file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise NotAZip(f"{path} is not a ZIP file ({exc})") from None
    except OSError as exc:
        raise NotAZip(f"cannot read {path}: {exc.strerror or exc}") from exc


def unpack(
    path: Path, into: Path, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES
) -> Unpacked:
    """Unpack the acceptable entries of the ZIP at `path` into the empty folder `into`."""
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _open_zip(path) as archive:
        infos = archive.infolist()
        out = Unpacked(into.resolve(), [i.filename for i in infos])
        if len(infos) > max_entries:
            out.refused = True
            out.problems.append(f"refused: {len(infos)} entries, more than {max_entries}")
            return out
        declared = sum(i.file_size for i in infos)
        if declared > max_bytes:
            out.refused = True
            out.problems.append(f"refused: {declared} bytes unpacked, more than {max_bytes}")
            return out
        counts = Counter(i.filename for i in infos)
        for name, n in sorted(counts.items()):
            if n > 1:  # which copy is "the" file depends on the unzip tool: neither is
                out.problems.append(f"entry {_shown(name)}: {n} entries with this name")
        budget = [max_bytes]
        for info in infos:
            if info.is_dir():
                out.warnings.append(f"ignored folder entry {_shown(info.filename)}")
                continue
            problem = _entry_problem(info)
            if problem is None and counts[info.filename] > 1:
                continue  # reported above
            if problem is not None:
                out.problems.append(problem)
                continue
            _unpack_one(archive, info, out, budget)
    return out


def _unpack_one(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, out: Unpacked, budget: list[int]
) -> None:
    name = info.filename
    target = out.root / name
    if not target.resolve().is_relative_to(out.root):  # safe_name should make this moot
        out.problems.append(f"entry {_shown(name)}: outside the folder (refused)")
        return
    digest, size, created = hashlib.sha256(), 0, False
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o600)
        created = True
        with os.fdopen(fd, "wb") as f, archive.open(info) as src:
            while block := src.read(BLOCK):
                size += len(block)
                if size > budget[0]:
                    raise _OverBudget
                digest.update(block)
                f.write(block)
    except _OverBudget:
        target.unlink()
        budget[0] = 0
        out.problems.append(f"entry {_shown(name)}: unpacking past the limit of bytes (refused)")
        return
    except zipfile.BadZipFile as exc:
        # A bad CRC is noticed only once every byte was read: keep them, so the checks
        # that follow can also say which file is not what it should be.
        out.problems.append(f"entry {_shown(name)}: damaged in the ZIP ({exc})")
    except (OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
        if created:  # (not a folder another entry's name made, say)
            target.unlink(missing_ok=True)
        out.problems.append(f"entry {_shown(name)}: cannot be unpacked ({exc})")
        return
    budget[0] -= size
    out.entries[name] = Entry(name, target, size, digest.hexdigest())


class _OverBudget(Exception):
    pass
