"""Upload staging on a failing disk: every write checked, failures mapped to the server's
fault (507 for a full disk, 503 otherwise), the resume offset always the end of a whole
received part, and the journal of what was received telling a damaged staged copy from
data the camera really sent."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import uuid
from pathlib import Path

import pytest

from doorwarden import errors
from doorwarden.clips.staged_check import StagedDamaged, check_received
from doorwarden.clips.staging import RECORD, Staging, WrongOffset
from tests.unit.storage.faults import Faults

DEVICE = uuid.UUID("00000000-0000-4000-8000-000000000001")
DATA = os.urandom(250_000)
PARTS = [(0, 100_000), (100_000, 200_000), (200_000, 250_000)]
THUMB = os.urandom(3000)


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path / "staging")


async def _send(staging: Staging, parts: list[tuple[int, int]] = PARTS) -> None:
    for start, end in parts:
        assert await staging.append(DEVICE, 0, start, DATA[start:end]) == end


def _check(staging: Staging, size: int = len(DATA)) -> None:
    check_received(
        staging,
        DEVICE,
        0,
        ciphertext_size=size,
        thumbnail_size=len(THUMB),
        thumbnail_sha256=hashlib.sha256(THUMB).hexdigest(),
    )


async def test_parts_and_journal(staging: Staging) -> None:
    assert staging.received(DEVICE, 0) == 0
    await _send(staging)
    await staging.write_thumbnail(DEVICE, 0, THUMB)
    assert staging.received(DEVICE, 0) == len(DATA)
    assert staging.clip_path(DEVICE, 0).read_bytes() == DATA
    journal = staging.journal_path(DEVICE, 0).read_bytes()
    assert len(journal) == 3 * RECORD.size
    assert RECORD.unpack_from(journal, RECORD.size) == (
        100_000,
        100_000,
        hashlib.sha256(DATA[100_000:200_000]).digest(),
    )
    _check(staging)
    with pytest.raises(WrongOffset) as wrong:
        await staging.append(DEVICE, 0, 100_000, DATA[100_000:])
    assert wrong.value.received == len(DATA)
    staging.discard(DEVICE, 0)
    assert not list(staging.root.rglob("*.*"))


async def test_short_writes_land_whole(
    staging: Staging, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(monkeypatch, tmp_path)
    faults.reset(short=999)
    await _send(staging)
    await staging.write_thumbnail(DEVICE, 0, THUMB)
    assert faults.writes > len(DATA) // 999
    assert staging.clip_path(DEVICE, 0).read_bytes() == DATA
    assert staging.thumb_path(DEVICE, 0).read_bytes() == THUMB
    _check(staging)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (errno.ENOSPC, errors.StorageFull),
        (errno.EDQUOT, errors.StorageFull),
        (errno.EIO, errors.StorageUnavailable),
    ],
)
async def test_a_failed_append_stays_at_the_part_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type[errors.DomainError]
) -> None:
    """The last part in writes of 30 000 bytes (so a failure comes part-way through the
    data), then its journal record: a failure at each write."""
    faults = Faults(monkeypatch, tmp_path)
    last_start, last_end = PARTS[-1]
    writes = -(-(last_end - last_start) // 30_000) + 1  # the data's writes, then the record
    for n in range(1, writes + 1):
        staging = Staging(tmp_path / f"write-{n}")
        faults.reset()
        await _send(staging, PARTS[:-1])
        faults.reset(short=30_000, code=code)
        faults.fail_write_at = n
        with pytest.raises(error) as raised:
            await staging.append(DEVICE, 0, last_start, DATA[last_start:last_end])
        assert raised.value.status_code == (507 if error is errors.StorageFull else 503)
        assert raised.value.headers and "Retry-After" in raised.value.headers
        assert faults.writes == n  # it failed where it was told to, and went no further
        # Back to the boundary: the data and the journal both, so nothing half-written
        # remains and the camera resumes at the right offset.
        assert staging.received(DEVICE, 0) == last_start
        assert staging.clip_path(DEVICE, 0).stat().st_size == last_start
        assert staging.journal_path(DEVICE, 0).stat().st_size == 2 * RECORD.size
        faults.reset()
        assert await staging.append(DEVICE, 0, last_start, DATA[last_start:]) == len(DATA)
        assert staging.clip_path(DEVICE, 0).read_bytes() == DATA
        await staging.write_thumbnail(DEVICE, 0, THUMB)
        _check(staging)


@pytest.mark.parametrize(
    ("code", "error"), [(errno.ENOSPC, errors.StorageFull), (errno.EIO, errors.StorageUnavailable)]
)
@pytest.mark.parametrize("call", ["write", "fsync"])
async def test_a_failed_thumbnail_write_leaves_nothing(
    staging: Staging,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: type[errors.DomainError],
    call: str,
) -> None:
    faults = Faults(monkeypatch, tmp_path)
    for n in (1, 2) if call == "write" else (1,):
        faults.reset(short=2000, code=code)
        setattr(faults, f"fail_{call}_at", n)
        with pytest.raises(error):
            await staging.write_thumbnail(DEVICE, 0, THUMB)
        assert not staging.thumb_path(DEVICE, 0).exists()
        assert not list(staging.root.rglob("*.tmp"))  # no temporary file left behind
    faults.reset(short=2000)
    await staging.write_thumbnail(DEVICE, 0, THUMB)
    assert staging.thumb_path(DEVICE, 0).read_bytes() == THUMB


async def test_a_crash_between_data_and_journal_resumes_at_the_boundary(
    staging: Staging,
) -> None:
    await _send(staging, PARTS[:1])
    # The next part's data reached the file, its record did not (kill -9 in between).
    with staging.clip_path(DEVICE, 0).open("ab") as f:
        f.write(DATA[100_000:150_000])
    assert staging.received(DEVICE, 0) == 100_000
    # A torn record at the journal's end is ignored too.
    with staging.journal_path(DEVICE, 0).open("ab") as f:
        f.write(b"\x00" * 20)
    assert staging.received(DEVICE, 0) == 100_000
    await _send(staging, PARTS[1:])  # the tail and the torn record are dropped first
    assert staging.clip_path(DEVICE, 0).read_bytes() == DATA
    assert staging.journal_path(DEVICE, 0).stat().st_size == 3 * RECORD.size
    await staging.write_thumbnail(DEVICE, 0, THUMB)
    _check(staging)


async def test_a_lost_data_tail_lowers_the_offset(staging: Staging) -> None:
    """Power lost: the journal survived, the data file's tail did not."""
    await _send(staging)
    os.truncate(staging.clip_path(DEVICE, 0), 150_000)
    assert staging.received(DEVICE, 0) == 100_000  # the last part wholly held
    await _send(staging, PARTS[1:])
    assert staging.clip_path(DEVICE, 0).read_bytes() == DATA


@pytest.mark.parametrize("where", ["data", "thumbnail", "journal"])
async def test_a_staged_copy_damaged_on_disk_is_told_apart(staging: Staging, where: str) -> None:
    await _send(staging)
    await staging.write_thumbnail(DEVICE, 0, THUMB)
    path = {
        "data": staging.clip_path(DEVICE, 0),
        "thumbnail": staging.thumb_path(DEVICE, 0),
        "journal": staging.journal_path(DEVICE, 0),
    }[where]
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) - 20] ^= 0x01  # in the last part; in its hash, for the journal
    path.write_bytes(bytes(damaged))
    with pytest.raises(StagedDamaged):
        _check(staging)


async def test_unreadable_staging_is_storage_unavailable(staging: Staging) -> None:
    staging.journal_path(DEVICE, 0).mkdir(parents=True)  # reads fail (EISDIR), as on EIO
    with pytest.raises(errors.StorageUnavailable):
        staging.received(DEVICE, 0)
    with pytest.raises(errors.StorageUnavailable):
        await staging.append(DEVICE, 0, 0, b"x")
    with pytest.raises(errors.StorageUnavailable):
        staging.discard(DEVICE, 0)
    assert staging.discard_quietly(DEVICE, 0) is False


async def test_one_lock_per_clip_while_anyone_holds_or_waits_for_it(staging: Staging) -> None:
    """A completion discards the staging while holding the clip's lock, and a duplicate
    request waits for it: a third request must still queue behind the same lock, never
    get a fresh one and run beside the waiter."""

    order: list[str] = []
    holder = staging.lock(DEVICE, 0)
    await holder.acquire()

    async def request(name: str) -> None:
        async with staging.lock(DEVICE, 0):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    waiter = asyncio.create_task(request("waiter"))
    await asyncio.sleep(0)
    staging.discard(DEVICE, 0)  # the completion's discard, under the lock
    newcomer = asyncio.create_task(request("newcomer"))
    await asyncio.sleep(0)
    holder.release()
    await asyncio.gather(waiter, newcomer)
    assert order == ["waiter in", "waiter out", "newcomer in", "newcomer out"]
