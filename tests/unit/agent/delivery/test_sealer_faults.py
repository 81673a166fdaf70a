"""The sealed spool under ENOSPC and EIO at each write, fsync, rename and link of a seal
(issue 23): before the commit point nothing is left of the clip in sealed/ and its plain
entry waits; after it the clip is committed; either way a restart finds no debris, the
chain head is right and sealing goes on without a gap or a fork. With a full disk the
delivery loop evicts the oldest sealed clip, records it, and seals once more."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from doorwarden.agent.delivery.upload_status import STATUS_FILE, UploadStatus
from doorwarden.agent.recording.room import SpoolRoom
from doorwarden.crypto.manifest import check_chain
from doorwarden.formats.clip_files import committed, read_manifest
from tests.unit.agent.delivery.paired import FakeServer, error, paired
from tests.unit.agent.faults import Faults, count


def _seal_calls(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    agent = paired(root)
    sealed = agent.seal(1)
    agent.record(1)
    return count(monkeypatch, lambda: sealed.seal_pending(agent.spool))


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_a_fault_at_any_step_of_a_seal_leaves_a_consistent_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    calls = _seal_calls(tmp_path / "dry", monkeypatch)
    assert {"write", "fsync", "replace", "link"} <= set(calls) and len(calls) >= 20
    for fail_at in range(1, len(calls) + 1):
        agent = paired(tmp_path / f"{err}-{fail_at}")
        sealed = agent.seal(1)
        agent.record(1)
        with Faults(fail_at, err).active(monkeypatch):
            try:
                sealed.seal_pending(agent.spool)
            except OSError as exc:
                assert exc.errno == err  # noqa: PT017 - a fault after the commit raises nothing
        # A restart: recover, then seal whatever still waits, with the disk fine again.
        again = agent.sealed()
        recovery = again.recover(agent.spool)
        assert recovery.removed == [], (fail_at, calls[fail_at - 1])
        waiting = len(agent.spool.entries())
        assert [p.sequence for p in committed(again.directory)] == [0, 1][: 2 - waiting]
        assert recovery.head.next_sequence == 2 - waiting
        again.seal_pending(agent.spool)
        assert agent.spool.entries() == []
        manifests = [read_manifest(p.manifest).verify(agent.store.signing_key().public)
                     for p in committed(again.directory)]  # fmt: skip
        assert [m.sequence for m in manifests] == [0, 1]
        assert check_chain(manifests, from_start=True) == [], (fail_at, calls[fail_at - 1])


def test_a_full_disk_while_sealing_evicts_the_oldest_and_seals_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = paired(tmp_path)
    agent.seal(2)
    agent.record(1)
    server = FakeServer(agent.identity, {n: error(503, "storage_unavailable") for n in range(3)})
    room = SpoolRoom(agent.spool, min_free_bytes=0, state_dir=agent.store.state_dir)
    with server.client() as client:
        delivery = agent.delivery(client, room=room)
        delivery.recover()
        with Faults(1, errno.ENOSPC).active(monkeypatch):  # the sealed clip's first write
            delivery.step()
        delivery.stop()
    assert [p.sequence for p in delivery.sealed.pending()] == [1, 2]  # 0 made room for 2
    assert agent.spool.entries() == []
    [eviction] = room.evictions
    assert (eviction.first, eviction.last, eviction.count, eviction.reason) == (
        0,
        0,
        1,
        "disk_full",
    )
    # Told to the owner: the health report carries it.
    assert server.health and server.health[-1]["evicted"] == [eviction.to_json()]


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_a_status_file_that_cannot_be_written_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    agent = paired(tmp_path)
    state = agent.store.state_dir
    status = UploadStatus(agent.identity.device_id, held={3: {"code": "x", "message": "m"}})
    status.save(state)
    before = (state / STATUS_FILE).read_bytes()
    status.held[4] = {"code": "y", "message": "n"}
    calls = count(monkeypatch, lambda: status.save(tmp_path))  # elsewhere: a dry run
    after = (tmp_path / STATUS_FILE).read_bytes()
    assert calls[-2:] == ["replace", "fsync"]
    for fail_at in range(1, len(calls) + 1):
        with Faults(fail_at, err).active(monkeypatch), pytest.raises(OSError, match="injected"):
            status.save(state)
        # Whole or not at all: only the directory's fsync after the rename leaves the new
        # file (complete; the failure is still reported to the caller, which logs it).
        expected = after if fail_at == len(calls) else before
        assert (state / STATUS_FILE).read_bytes() == expected
        assert [p.name for p in state.iterdir() if p.name.startswith(".tmp-")] == []
    assert sorted(UploadStatus.load(state, agent.identity.device_id).held) == [3, 4]
