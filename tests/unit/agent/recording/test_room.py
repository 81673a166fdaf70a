"""Room on a real filesystem that fills (a small tmpfs; tests/tmpfs.py): the oldest
clips go, the newest stay, every eviction is recorded, and a commit that meets a real
ENOSPC makes room and goes through."""

from __future__ import annotations

import os
from pathlib import Path

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.config.models import RecordConfig
from doorwarden.agent.recording.recorder import EventRecorder
from doorwarden.agent.recording.room import SpoolRoom, read_room
from doorwarden.agent.recording.spool import Spool
from tests.tmpfs import fill, free_bytes, release, small_tmpfs
from tests.unit.agent.samples import make_video, read_samples

KIB = 1024


def _commit(spool: Spool, size: int, n: int) -> str:
    path = spool.tmp_path()
    path.write_bytes(os.urandom(size))
    return spool.commit(path, os.urandom(2 * KIB), {"n": n}).id


def test_make_room_evicts_the_oldest_until_the_reserve_is_free(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", 2048 * KIB) as disk:
        spool = Spool(disk / "spool")
        room = SpoolRoom(spool, min_free_bytes=256 * KIB, state_dir=tmp_path / "state")
        ids = [_commit(spool, 100 * KIB, n) for n in range(6)]
        fill(disk, leave_bytes=64 * KIB)
        assert room.make_room()
        kept = [e.id for e in spool.entries()]
        assert kept == ids[-len(kept) :] and 0 < len(kept) < 6  # the newest, in order
        assert free_bytes(disk) >= 256 * KIB
        assert room.disk_full  # clips were lost for room: the owner must know
        [eviction] = room.evictions
        assert (eviction.first, eviction.last, eviction.reason) == (None, None, "disk_full")
        assert eviction.count == 6 - len(kept)
        saved = read_room(tmp_path / "state")
        assert saved["disk_full"] is True and saved["evictions"] == [eviction.to_state()]
        # Room again (the filler goes): the next successful write ends the state.
        release(disk)
        _commit(spool, 10 * KIB, 7)
        assert not room.disk_full and read_room(tmp_path / "state")["disk_full"] is False


def test_a_commit_that_meets_a_full_disk_evicts_and_goes_through(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", 1024 * KIB) as disk:
        spool = Spool(disk / "spool")
        room = SpoolRoom(spool, min_free_bytes=0, state_dir=None)  # only reacts to ENOSPC
        ids = [_commit(spool, 120 * KIB, n) for n in range(3)]
        clip = spool.tmp_path()
        clip.write_bytes(os.urandom(120 * KIB))  # recorded before the disk filled
        fill(disk, leave_bytes=0)
        entry = spool.commit(clip, os.urandom(8 * KIB), {"n": 3})  # a real ENOSPC inside
        assert [e.id for e in spool.entries()] == [*ids[1:], entry.id]
        assert [(e.count, e.reason) for e in room.evictions] == [(1, "disk_full")]
        assert list(spool.tmp.iterdir()) == []
        assert Spool(disk / "spool").recover().removed == []


def test_a_reserve_larger_than_the_disk_does_not_evict_everything(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", 1024 * KIB) as disk:
        spool = Spool(disk / "spool")
        room = SpoolRoom(spool, min_free_bytes=64 * 1024 * KIB, state_dir=None)
        ids = [_commit(spool, 50 * KIB, n) for n in range(4)]
        assert room.reserve() == 256 * KIB  # a quarter of the disk
        assert room.make_room()
        assert [e.id for e in spool.entries()] == ids  # 800 KiB free already: nothing goes
        assert list(room.evictions) == []


def test_a_recording_that_finds_no_room_is_discarded_cleanly_and_counted(
    tmp_path: Path,
) -> None:
    video = make_video(tmp_path / "src.mp4", seconds=6)
    with small_tmpfs(tmp_path / "disk", 512 * KIB) as disk:
        spool = Spool(disk / "spool")
        room = SpoolRoom(spool, min_free_bytes=0, state_dir=tmp_path / "state")
        fill(disk, leave_bytes=0)  # nothing to evict, no room: the clip cannot be written
        record = RecordConfig(pre_roll_s=0, post_roll_s=0, min_clip_s=0, max_clip_s=60)
        with read_samples(video) as src:
            recorder = EventRecorder("door", src.info, record, PrivacyMask.none(), spool)
            finished = [recorder.push(s, motion=1.0 <= s.time < 4.0) for s in src.samples] + [
                recorder.flush()
            ]
        assert [c for c in finished if c is not None] == []
        assert list(spool.tmp.iterdir()) == []  # its temporary file went with it
        assert spool.entries() == []
        # Each try while the motion lasts is a recording lost, and counted; together they
        # are one record of the episode.
        assert room.discarded >= 1 and room.disk_full
        [eviction] = room.evictions
        assert (eviction.first, eviction.last) == (None, None)
        assert eviction.count == room.discarded
        assert read_room(tmp_path / "state")["discarded"] == room.discarded


def test_an_episode_keeps_its_start_so_the_server_alerts_it_once(tmp_path: Path) -> None:
    """Evictions that carry on one another grow one record whose `at` (the server's key
    for the episode) stays when it began; a later, separate one is a new record."""
    room = SpoolRoom(Spool(tmp_path / "spool"), min_free_bytes=0, state_dir=tmp_path / "state")
    room.note_sealed_evicted([3, 4], "disk_full")
    began = room.evictions[0].at
    room.note_sealed_evicted([5, 6, 7], "disk_full")
    [episode] = room.evictions
    assert (episode.first, episode.last, episode.count, episode.at) == (3, 7, 5, began)
    assert episode.to_json() == {
        "first": 3, "last": 7, "count": 5, "reason": "disk_full", "at": began,
    }  # fmt: skip
    room.note_sealed_evicted([20], "spool_limit")  # another reason: another record
    assert [(e.first, e.reason) for e in room.evictions] == [(3, "disk_full"), (20, "spool_limit")]
    # The saved state keeps when the episode last grew, to merge across a restart.
    reloaded = SpoolRoom(Spool(tmp_path / "spool"), min_free_bytes=0, state_dir=tmp_path / "state")
    assert reloaded.evictions == room.evictions
