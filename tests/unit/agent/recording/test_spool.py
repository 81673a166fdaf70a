"""The spool: commit, listing, and recovery after a crash at every step of a commit."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from doorwarden.agent.recording import spool as spool_module
from doorwarden.agent.recording.spool import Spool, new_id


class Crash(BaseException):
    """Stands for the process dying: nothing in the code under test may catch it."""


def _clip(spool: Spool, content: bytes) -> Path:
    path = spool.tmp_path()
    path.write_bytes(content)
    return path


def _files(spool: Spool) -> set[str]:
    return {p.name for p in spool.directory.iterdir() if p != spool.tmp}


def test_commit_and_entries(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    first = spool.commit(_clip(spool, b"clip-1"), b"jpeg-1", {"camera": "door", "n": 1})
    second = spool.commit(_clip(spool, b"clip-2"), None, {"camera": "door", "n": 2})

    entries = spool.entries()
    assert [e.id for e in entries] == [first.id, second.id]
    assert entries[0].clip.read_bytes() == b"clip-1"
    assert entries[0].thumbnail is not None and entries[0].thumbnail.read_bytes() == b"jpeg-1"
    assert entries[1].thumbnail is None
    sidecar = json.loads(first.sidecar.read_text())
    assert sidecar["camera"] == "door" and sidecar["clip"] == f"{first.id}.mp4"
    assert sidecar["clip_bytes"] == len(b"clip-1")
    assert list(spool.tmp.iterdir()) == []
    assert _files(spool) == {
        f"{first.id}.mp4", f"{first.id}.jpg", f"{first.id}.json",
        f"{second.id}.mp4", f"{second.id}.json",
    }  # fmt: skip


def test_commit_copies_a_clip_written_elsewhere(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    outside = tmp_path / "clip.mp4"
    outside.write_bytes(b"outside")
    entry = spool.commit(outside, None, {})
    assert entry.clip.read_bytes() == b"outside"
    assert not outside.exists()
    assert list(spool.tmp.iterdir()) == []


def test_ids_are_unique_and_sort_by_creation() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert sorted(ids) == ids


def test_remove(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.commit(_clip(spool, b"x"), b"t", {})
    spool.remove(entry)
    assert spool.entries() == []
    assert _files(spool) == set()


# Each commit makes these calls, in this order: fsync clip, fsync thumb, replace clip,
# replace thumb, fsync dir, fsync sidecar, replace sidecar, fsync dir. Crash before each.
CRASH_POINTS = range(1, 9)


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_recover_after_a_crash_at_each_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    spool = Spool(tmp_path / "spool")
    kept = [spool.commit(_clip(spool, f"old-{i}".encode()), b"jpg", {"n": i}) for i in range(2)]

    calls = 0
    real_fsync, real_replace = os.fsync, os.replace

    def counting(real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object) -> object:
            nonlocal calls
            calls += 1
            if calls == crash_at:
                raise Crash
            return real(*args)

        return call

    monkeypatch.setattr(spool_module.os, "fsync", counting(real_fsync))
    monkeypatch.setattr(spool_module.os, "replace", counting(real_replace))
    with pytest.raises(Crash):
        spool.commit(_clip(spool, b"new"), b"new-jpg", {"n": 2})
    monkeypatch.undo()
    assert calls == crash_at

    # Start-up after the crash: a fresh Spool on the same directory.
    restarted = Spool(tmp_path / "spool")
    restarted.recover()
    entries = restarted.entries()
    assert [e.id for e in entries[:2]] == [e.id for e in kept]
    assert [e.clip.read_bytes() for e in entries[:2]] == [b"old-0", b"old-1"]
    # The sidecar rename is the commit point (call 7): before it, no trace; after it, whole.
    if crash_at <= 7:
        assert len(entries) == 2
    else:
        assert len(entries) == 3
        assert entries[2].clip.read_bytes() == b"new"
        assert entries[2].thumbnail is not None
        assert entries[2].thumbnail.read_bytes() == b"new-jpg"
    expected = {
        name
        for e in entries
        for name in (e.clip.name, e.sidecar.name, e.thumbnail.name if e.thumbnail else "")
    } - {""}
    assert _files(restarted) == expected
    assert list(restarted.tmp.iterdir()) == []
    # Recovery is idempotent: a second start-up changes nothing.
    assert restarted.recover().removed == []
    assert [e.id for e in restarted.entries()] == [e.id for e in entries]


def test_recover_removes_orphans_and_keeps_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.commit(_clip(spool, b"keep"), b"t", {})
    (tmp_path / "20200101T000000000000Z-dead.mp4").write_bytes(b"orphan")
    (tmp_path / "20200101T000000000000Z-dead.jpg").write_bytes(b"orphan")
    (spool.tmp / "half-written.mp4.part").write_bytes(b"partial")
    (spool.tmp / "stale-dir").mkdir()

    result = spool.recover()
    assert result.kept == 1
    assert len(result.removed) == 4
    assert [e.id for e in spool.entries()] == [entry.id]
    assert entry.thumbnail is not None
    assert _files(spool) == {entry.clip.name, entry.thumbnail.name, entry.sidecar.name}
    assert list(spool.tmp.iterdir()) == []


def test_concurrent_commits_do_not_collide(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            for i in range(25):
                body = f"{name}-{i}".encode()
                spool.commit(_clip(spool, body), body, {"body": body.decode()})
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = spool.entries()
    assert len(entries) == 50
    assert len({e.id for e in entries}) == 50
    for e in entries:
        assert e.clip.read_bytes().decode() == e.metadata["body"]
        assert e.thumbnail is not None and e.thumbnail.read_bytes() == e.clip.read_bytes()
    assert {e.metadata["body"] for e in entries} == {f"{n}-{i}" for n in "ab" for i in range(25)}


def test_a_bounded_spool_deletes_the_oldest_clips_with_a_warning(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=350 * 1024)
    ids = []
    with capture_logs() as logs:
        for n in range(5):
            ids.append(spool.commit(_clip(spool, bytes([n]) * 100 * 1024), None, {"n": n}).id)
    # 100 KiB clips (and their sidecars) under 350 KiB: the newest three stay.
    assert [e.id for e in spool.entries()] == ids[2:]
    evicted = [i for e in logs if e["event"] == "spool.plain_evicted" for i in e["clips"]]
    assert evicted == ids[:2]
    assert all(e["log_level"] == "warning" for e in logs if e["event"] == "spool.plain_evicted")


def test_the_clip_just_recorded_is_kept_even_alone_over_the_bound(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=10 * 1024)
    spool.commit(_clip(spool, b"a" * 4096), None, {})
    newest = spool.commit(_clip(spool, b"b" * 64 * 1024), None, {})
    assert [e.id for e in spool.entries()] == [newest.id]


def test_an_unbounded_spool_keeps_everything(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for _ in range(3):
        spool.commit(_clip(spool, b"x" * 100 * 1024), None, {})
    assert len(spool.entries()) == 3
    assert spool.enforce_limit() == []
