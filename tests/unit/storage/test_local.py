"""What only the local backend has: file modes, temporary files, and its root."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doorwarden.storage import InvalidKey, LocalClipStore, ObjectNotFound
from doorwarden.storage.local import TEMP_PREFIX
from tests.unit.storage.helpers import Parked, SourceFailed, chunked, failing

KEY = "households/h1/devices/d1/2026/11/25/000000000001.clip.dws"


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """The most permissive umask: any mode the store leaves to the umask shows."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _everything(root: Path) -> tuple[list[Path], list[Path]]:
    directories, files = [root], []
    for directory, subdirs, names in os.walk(root):
        directories += [Path(directory) / name for name in subdirs]
        files += [Path(directory) / name for name in names]
    return directories, files


@pytest.mark.usefixtures("umask_zero")
async def test_modes_are_private_even_with_umask_zero(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet" / "clips"  # parents are created too
    store = LocalClipStore(root)
    await store.put(KEY, chunked(b"x" * 100_000, 4096))
    await store.put("households/h1/devices/d2/thumb.dws", b"y")
    await store.put("top.dws", b"z")
    await store.put(KEY, b"overwritten")  # a replaced file keeps the mode of the new one

    directories, files = _everything(tmp_path / "not")
    assert len(files) == 3
    assert {path: _mode(path) for path in files} == dict.fromkeys(files, 0o600)
    assert {path: _mode(path) for path in directories} == dict.fromkeys(directories, 0o700)


@pytest.mark.usefixtures("umask_zero")
async def test_a_file_being_written_is_private_too(tmp_path: Path) -> None:
    store = LocalClipStore(tmp_path / "clips")
    source = Parked(b"part one", b" part two")
    task = asyncio.create_task(store.put(KEY, source))
    await asyncio.wait_for(source.started.wait(), timeout=10)
    _, files = _everything(tmp_path / "clips")
    assert [path.name[: len(TEMP_PREFIX)] for path in files] == [TEMP_PREFIX]
    assert _mode(files[0]) == 0o600
    source.release.set()
    await task


async def test_a_failed_put_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalClipStore(tmp_path / "clips")
    with pytest.raises(SourceFailed):
        await store.put(KEY, failing(b"x" * 100_000, 1000, 50_000))
    assert _everything(tmp_path / "clips")[1] == []


async def test_leftover_temporary_files_are_never_listed_or_served(tmp_path: Path) -> None:
    store = LocalClipStore(tmp_path / "clips")
    await store.put(KEY, b"clip")
    folder = (tmp_path / "clips" / KEY).parent
    # What a crash mid-put leaves behind.
    (folder / f"{TEMP_PREFIX}crashed").write_bytes(b"half a cl")
    (tmp_path / "clips" / f"{TEMP_PREFIX}also").write_bytes(b"half")

    assert await store.list() == [KEY]
    for leftover in (f"{TEMP_PREFIX}also", str(Path(KEY).parent / f"{TEMP_PREFIX}crashed")):
        with pytest.raises(InvalidKey):
            await store.get_range(leftover, 0, 1)

    assert await store.cleanup_partial() == 2
    assert _everything(tmp_path / "clips")[1] == [tmp_path / "clips" / KEY]
    assert await store.cleanup_partial() == 0


async def test_cleanup_spares_puts_in_progress_and_recent_files(tmp_path: Path) -> None:
    store = LocalClipStore(tmp_path / "clips")
    source = Parked(b"in ", b"progress")
    task = asyncio.create_task(store.put(KEY, source))
    await asyncio.wait_for(source.started.wait(), timeout=10)

    stale = tmp_path / "clips" / f"{TEMP_PREFIX}stale"
    stale.write_bytes(b"old")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    recent = tmp_path / "clips" / f"{TEMP_PREFIX}recent"
    recent.write_bytes(b"maybe another process's put")

    assert await store.cleanup_partial(older_than_s=600) == 1
    assert not stale.exists()
    assert recent.exists()
    assert await store.cleanup_partial() == 1  # the recent one; never our own put's
    source.release.set()
    assert await task == 11
    assert await store.get_range(KEY, 0, 11) == b"in progress"


async def test_stray_files_and_symlinks_are_not_objects(tmp_path: Path) -> None:
    store = LocalClipStore(tmp_path / "clips")
    await store.put("a/real.dws", b"real")
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"not in the store")
    (tmp_path / "clips" / "a" / "link.dws").symlink_to(secret)
    (tmp_path / "clips" / "a" / "stray name~").write_bytes(b"no key names this")

    assert await store.list() == ["a/real.dws"]
    assert not await store.exists("a/link.dws")
    with pytest.raises(ObjectNotFound):
        await store.get_range("a/link.dws", 0, 1)
    with pytest.raises(ObjectNotFound):
        await store.get_range("a", 0, 1)  # a directory


async def test_missing_root(tmp_path: Path) -> None:
    store = LocalClipStore(tmp_path / "never-created")
    assert await store.list() == []
    assert not await store.exists(KEY)
    assert not (tmp_path / "never-created").exists()  # reading creates nothing


def test_root_is_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalClipStore("clips")
    assert store.root == tmp_path / "clips"
    assert repr(store) == f"LocalClipStore({str(tmp_path / 'clips')!r})"
