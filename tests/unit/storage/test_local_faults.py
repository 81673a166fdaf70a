"""The local store on a failing disk: short writes still store whole objects, and a full
disk (StorageFull) or an I/O error (StorageError) at any write or fsync leaves no temporary
file and no partial object, only the previous one, if any."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from doorwarden.storage import LocalClipStore, StorageError, StorageFull
from tests.unit.storage.faults import Faults
from tests.unit.storage.helpers import chunked

KEY = "households/h1/devices/d1/2026/11/25/000000000001.clip.dws"
OLD = b"the previous object"
NEW = os.urandom(300_000)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_short_writes_store_the_whole_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(monkeypatch, tmp_path)
    faults.reset(short=777)
    store = LocalClipStore(tmp_path / "clips")
    assert await store.put(KEY, chunked(NEW, 64 * 1024)) == len(NEW)
    assert await store.put("a/thumb.dws", NEW[:5000]) == 5000
    assert faults.writes > len(NEW) // 777  # the writer really was short
    assert await store.get_range(KEY, 0, len(NEW)) == NEW
    assert await store.get_range("a/thumb.dws", 0, 5000) == NEW[:5000]


async def _calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """How many writes and fsyncs one put of NEW over OLD makes (short writes)."""
    faults = Faults(monkeypatch, tmp_path / "count")
    store = LocalClipStore(tmp_path / "count")
    await store.put(KEY, OLD)
    faults.reset(short=100_000)
    await store.put(KEY, chunked(NEW, 128 * 1024))
    return faults.writes, faults.fsyncs


@pytest.mark.parametrize(
    ("code", "error"),
    [(errno.ENOSPC, StorageFull), (errno.EDQUOT, StorageFull), (errno.EIO, StorageError)],
)
@pytest.mark.parametrize("call", ["write", "fsync"])
async def test_a_failure_at_any_write_or_fsync_leaves_the_previous_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type[Exception], call: str
) -> None:
    writes, fsyncs = await _calls(tmp_path, monkeypatch)
    assert writes >= 3 and fsyncs == 2  # the file, then its directory after the rename
    for n in range(1, (writes if call == "write" else fsyncs) + 1):
        root = tmp_path / f"{call}-{n}"
        faults = Faults(monkeypatch, root)
        store = LocalClipStore(root)
        await store.put(KEY, OLD)
        faults.reset(short=100_000, code=code)
        setattr(faults, f"fail_{call}_at", n)
        with pytest.raises(error) as raised:
            await store.put(KEY, chunked(NEW, 128 * 1024))
        assert isinstance(raised.value, StorageFull) == (error is StorageFull)
        assert os.strerror(code) in str(raised.value)
        # No temporary file, and the object is one whole version: the old one, or the new
        # one when only the directory's fsync after the rename failed.
        assert _files(root) == [KEY]
        stored = await store.get_range(KEY, 0, await store.size(KEY))
        renamed = call == "fsync" and n == fsyncs
        assert stored == (NEW if renamed else OLD), (call, n)


async def test_a_failure_creating_directories_is_storage_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first put into a new day's directory fsyncs the directories it creates."""
    faults = Faults(monkeypatch, tmp_path)
    faults.reset()
    faults.fail_fsync_at = 1
    store = LocalClipStore(tmp_path / "clips")
    with pytest.raises(StorageFull):
        await store.put(KEY, b"x")
    assert not [p for p in (tmp_path / "clips").rglob("*") if p.is_file()]
