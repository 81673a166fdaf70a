"""The spool under ENOSPC and EIO at each write, fsync and rename of a commit (issue
23): a failed commit leaves nothing of itself in the spool and the caller's clip where
it was; with a room keeper a full disk evicts the oldest clip and the commit goes
through; and recovery afterwards finds a consistent spool."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from doorwarden.agent.recording.room import SpoolRoom
from doorwarden.agent.recording.spool import Spool, SpoolEntry
from tests.unit.agent.faults import Faults, count


def _clip(spool: Spool, content: bytes) -> Path:
    path = spool.tmp_path()
    path.write_bytes(content)
    return path


def _names(spool: Spool) -> set[str]:
    return {p.name for p in spool.directory.iterdir() if p != spool.tmp}


def _entry_names(entries: list[SpoolEntry]) -> set[str]:
    names = set()
    for e in entries:
        names |= {e.clip.name, e.sidecar.name} | ({e.thumbnail.name} if e.thumbnail else set())
    return names


def _commit_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    spool = Spool(tmp_path / "dry")
    clip = _clip(spool, b"dry")
    return count(monkeypatch, lambda: spool.commit(clip, b"jpg", {"n": 0}))


def test_a_commit_makes_the_calls_these_tests_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fsync clip, write+fsync thumb, rename clip and thumb, fsync dir, write+fsync
    # sidecar, rename sidecar (the commit point), fsync dir.
    assert _commit_calls(tmp_path, monkeypatch) == [
        "fsync", "write", "fsync", "replace", "replace", "fsync",
        "write", "fsync", "replace", "fsync",
    ]  # fmt: skip


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("fail_at", range(1, 11))
def test_a_failed_commit_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int, err: int
) -> None:
    spool = Spool(tmp_path / "spool")
    kept = [spool.commit(_clip(spool, f"old-{i}".encode()), b"jpg", {"n": i}) for i in range(2)]
    clip = _clip(spool, b"new")
    with Faults(fail_at, err).active(monkeypatch) as faults:
        if fail_at < 10:
            with pytest.raises(OSError, match="injected") as raised:
                spool.commit(clip, b"new-jpg", {"n": 2})
            assert raised.value.errno == err
        else:  # the last fsync of the directory: committed all the same (a warning)
            spool.commit(clip, b"new-jpg", {"n": 2})
    assert set(faults.calls[fail_at:]) <= {"replace"}  # after the fault: only the undo
    entries = spool.entries()
    if fail_at < 10:
        assert [e.id for e in entries] == [e.id for e in kept]
        assert _names(spool) == _entry_names(kept)  # no uncommitted media left taking room
        assert clip.read_bytes() == b"new"  # back where the caller put it, to remove
        assert list(spool.tmp.iterdir()) == [clip]
        clip.unlink()  # as the recorder does
    else:
        assert [e.clip.read_bytes() for e in entries] == [b"old-0", b"old-1", b"new"]
    # What a restart finds: nothing to repair, nothing lost.
    recovery = Spool(tmp_path / "spool").recover()
    assert recovery.removed == []
    assert recovery.kept == len(entries)


@pytest.mark.parametrize("fail_at", range(1, 10))
def test_a_full_disk_evicts_the_oldest_and_commits_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    spool = Spool(tmp_path / "spool")
    room = SpoolRoom(spool, min_free_bytes=0, state_dir=tmp_path / "state")
    old = [spool.commit(_clip(spool, f"old-{i}".encode()), b"jpg", {"n": i}) for i in range(3)]
    clip = _clip(spool, b"new")
    with Faults(fail_at, errno.ENOSPC).active(monkeypatch):
        entry = spool.commit(clip, b"new-jpg", {"n": 3})
    # The oldest clip made room for the newest; the others are untouched.
    assert [e.id for e in spool.entries()] == [old[1].id, old[2].id, entry.id]
    assert entry.clip.read_bytes() == b"new"
    # This disk has room again after the eviction: the state ends with the write that
    # succeeded (on a disk that stays full it lasts: tests/functional/agent).
    assert not room.disk_full
    [eviction] = room.evictions
    assert (eviction.first, eviction.last, eviction.count, eviction.reason) == (
        None,
        None,
        1,
        "disk_full",
    )
    assert list(spool.tmp.iterdir()) == []
    assert Spool(tmp_path / "spool").recover().removed == []
    # Saved for `agent status`, which may run while the agent does.
    again = SpoolRoom(Spool(tmp_path / "spool"), min_free_bytes=0, state_dir=tmp_path / "state")
    assert list(again.evictions) == [eviction]


def test_a_fault_that_is_not_a_full_disk_evicts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    room = SpoolRoom(spool, min_free_bytes=0, state_dir=None)
    old = spool.commit(_clip(spool, b"old"), None, {})
    clip = _clip(spool, b"new")
    with Faults(2, errno.EIO).active(monkeypatch), pytest.raises(OSError, match="injected"):
        spool.commit(clip, b"jpg", {})
    assert [e.id for e in spool.entries()] == [old.id]
    assert list(room.evictions) == [] and not room.disk_full


def test_a_full_disk_with_nothing_to_evict_fails_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    room = SpoolRoom(spool, min_free_bytes=0, state_dir=None)
    clip = _clip(spool, b"new")

    # Every write fails: the retry fails too, and the error reaches the recorder.
    class Always(Faults):
        def tick(self, kind: str) -> None:
            self.calls.append(kind)
            if kind == "write":
                raise OSError(errno.ENOSPC, "full")

    with Always().active(monkeypatch), pytest.raises(OSError, match="full"):
        spool.commit(clip, b"jpg", {})
    assert spool.entries() == [] and room.disk_full
    assert list(spool.tmp.iterdir()) == [clip]
