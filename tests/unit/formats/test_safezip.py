"""formats/safezip.py: opening reads only the central directory; `read` and `unpack` touch
only the entries asked for, each within its limit; bad entries are listed, never used."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from doorwarden.formats.safezip import NotAZip, open_archive


def make(path: Path, entries: dict[str, bytes], *, deflate: bool = False) -> Path:
    kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", kind) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def files_under(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()
    }


def test_opening_writes_nothing_and_lists_bad_entries(tmp_path: Path) -> None:
    path = make(tmp_path / "a.zip", {"ok.txt": b"fine", "../up.txt": b"x"})
    with zipfile.ZipFile(path, "a") as archive:
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with open_archive(path) as archive:
        assert archive.names == ["ok.txt", "../up.txt", "link"]
        assert set(archive.usable) == {"ok.txt"}
        assert [p.split(":")[1].strip() for p in archive.problems] == [
            "a name a package never holds (refused, not unpacked)",
            "a symbolic link (refused)",
        ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_too_many_entries_refuses_every_read(tmp_path: Path) -> None:
    path = make(tmp_path / "a.zip", {"a": b"1", "b": b"2", "c": b"3"})
    with open_archive(path, max_entries=2) as archive:
        assert archive.refused and archive.problems == ["refused: 3 entries, more than 2"]
        assert not archive.usable and archive.read("a", 10).data is None


def test_read_stays_within_its_limit(tmp_path: Path) -> None:
    path = make(tmp_path / "a.zip", {"small": b"x" * 10, "big": bytes(10_000_000)}, deflate=True)
    with open_archive(path) as archive:
        assert archive.read("small", 10).data == b"x" * 10
        assert archive.read("small", 9).too_large
        big = archive.read("big", 1000)
        assert big.too_large and big.data is None
        assert archive.read("absent", 10).data is None and not archive.read("absent", 10).too_large


def test_unpack_writes_only_the_named_entries_each_within_its_limit(tmp_path: Path) -> None:
    path = make(
        tmp_path / "a.zip",
        {"a.txt": b"a" * 100, "b.txt": b"b" * 100, "bomb": bytes(50_000_000), "c/d": b"dd"},
        deflate=True,
    )
    assert path.stat().st_size < 200_000
    with open_archive(path) as archive:
        out = archive.unpack(
            tmp_path / "out", {"a.txt": 100, "b.txt": 99, "c/d": 2, "gone": 5}, what="listed"
        )
    assert files_under(tmp_path / "out") == {"a.txt": 100, "c/d": 2}  # the bomb never read
    assert set(out.entries) == {"a.txt", "c/d"} and out.too_large == {"b.txt"}
    assert out.problems == [
        "entry 'b.txt': larger than the 99 bytes listed (refused, not unpacked)"
    ]
    assert out.entries["a.txt"].size == 100


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "t.zip").write_text("text")
    with pytest.raises(NotAZip, match="not a ZIP file"):
        open_archive(tmp_path / "t.zip")
    with pytest.raises(NotAZip, match="does not exist"):
        open_archive(tmp_path / "none.zip")
