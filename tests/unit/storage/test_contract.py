"""The `ClipStore` contract, run unchanged against the local directory and a real S3
endpoint (see conftest.py): what the server may rely on whichever backend it has."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import date

import pytest

from doorwarden.storage import (
    ClipStore,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    StorageError,
    object_key,
)
from tests.unit.storage.helpers import Parked, SourceFailed, Untouchable, chunked, failing

MIB = 1024 * 1024
KEY = object_key(uuid.uuid4(), uuid.uuid4(), date(2026, 11, 25), "000000000001.clip.dws")


async def read_all(store: ClipStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.stream(key, start, end, chunk_size=64 * 1024)])


async def test_multi_mib_round_trip_streamed_in_chunks(store: ClipStore) -> None:
    # 12 MiB in odd-sized chunks: on S3 a multipart upload of several parts, whose
    # boundaries do not line up with the source's chunks.
    data = os.urandom(12 * MIB + 12345)
    assert await store.put(KEY, chunked(data, 300_001)) == len(data)

    assert await store.size(KEY) == len(data)
    assert await store.exists(KEY)
    streamed = [chunk async for chunk in store.stream(KEY, chunk_size=MIB)]
    assert b"".join(streamed) == data
    assert len(streamed) > 1  # it streamed, rather than reading the object in one piece
    assert await store.get_range(KEY, 0, len(data)) == data


async def test_put_bytes_and_the_empty_object(store: ClipStore) -> None:
    assert await store.put("a/thumb.dws", b"jpeg bytes") == 10
    assert await store.get_range("a/thumb.dws", 0, 10) == b"jpeg bytes"

    assert await store.put("a/empty.dws", b"") == 0
    assert await store.put("a/empty-stream.dws", chunked(b"", 10)) == 0
    for key in ("a/empty.dws", "a/empty-stream.dws"):
        assert await store.exists(key)
        assert await store.size(key) == 0
        assert await read_all(store, key) == b""
        assert await store.get_range(key, 0, 0) == b""


DATA = bytes(range(256)) * 4  # 1024 bytes, each offset recognisable


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (400, 600), (1023, 1024), (0, 1024), (512, 512), (1024, 1024)],
    ids=["first-byte", "middle", "last-byte", "whole", "empty-middle", "empty-at-end"],
)
async def test_ranges(store: ClipStore, start: int, end: int) -> None:
    await store.put(KEY, DATA)
    assert await store.get_range(KEY, start, end) == DATA[start:end]
    assert await read_all(store, KEY, start, end) == DATA[start:end]


@pytest.mark.parametrize("start", [0, 1, 1000, 1023, 1024])
async def test_stream_from_an_offset_to_the_end(store: ClipStore, start: int) -> None:
    await store.put(KEY, DATA)
    assert await read_all(store, KEY, start) == DATA[start:]


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1025), (1023, 1025), (1024, 1025), (2000, 3000), (-1, 5), (5, 4)],
    ids=["past-end", "straddling-end", "at-end", "beyond", "negative", "backwards"],
)
async def test_out_of_range_is_an_error(store: ClipStore, start: int, end: int) -> None:
    await store.put(KEY, DATA)
    with pytest.raises(InvalidRange):
        await store.get_range(KEY, start, end)
    with pytest.raises(InvalidRange):
        await read_all(store, KEY, start, end)


async def test_stream_starting_past_the_end_is_an_error(store: ClipStore) -> None:
    await store.put(KEY, DATA)
    with pytest.raises(InvalidRange, match="1025"):
        await read_all(store, KEY, 1025)


async def test_missing_object(store: ClipStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get_range(KEY, 0, 1)
    with pytest.raises(ObjectNotFound):
        await store.get_range(KEY, 0, 0)
    with pytest.raises(ObjectNotFound):
        await store.size(KEY)
    with pytest.raises(ObjectNotFound):
        await read_all(store, KEY)
    with pytest.raises(ObjectNotFound):
        await read_all(store, KEY, 5)
    assert not await store.exists(KEY)
    await store.delete(KEY)  # idempotent: nothing to delete is fine
    await store.delete(KEY)
    assert await store.list() == []


async def test_a_prefix_of_keys_is_not_an_object(store: ClipStore) -> None:
    await store.put("households/h1/devices/d1/x", b"1")
    assert not await store.exists("households/h1")
    with pytest.raises(ObjectNotFound):
        await store.size("households/h1")
    await store.delete("households/h1")  # nothing there; does not touch what is under it
    assert await store.list() == ["households/h1/devices/d1/x"]


async def test_delete(store: ClipStore) -> None:
    await store.put(KEY, b"clip")
    await store.put("other/key", b"keep")
    await store.delete(KEY)
    assert not await store.exists(KEY)
    assert await store.list() == ["other/key"]
    await store.delete(KEY)


async def test_overwrite_replaces(store: ClipStore) -> None:
    await store.put(KEY, b"a much longer first version")
    await store.put(KEY, chunked(b"second", 2))
    assert await store.size(KEY) == 6
    assert await read_all(store, KEY) == b"second"
    assert await store.list() == [KEY]


@pytest.mark.parametrize(
    "fail_after",
    [0, 64 * 1024, 7 * MIB],
    ids=["before-any-data", "small", "after-a-multipart-part"],
)
async def test_a_failed_put_leaves_nothing(store: ClipStore, fail_after: int) -> None:
    data = os.urandom(8 * MIB)
    with pytest.raises(SourceFailed):  # the source's own error, not a storage error
        await store.put(KEY, failing(data, 256 * 1024, fail_after))
    assert not await store.exists(KEY)
    with pytest.raises(ObjectNotFound):
        await store.get_range(KEY, 0, 1)
    assert await store.list() == []


async def test_a_failed_overwrite_keeps_the_old_object(store: ClipStore) -> None:
    await store.put(KEY, b"old version")
    with pytest.raises(SourceFailed):
        await store.put(KEY, failing(os.urandom(MIB), 64 * 1024, 512 * 1024))
    assert await read_all(store, KEY) == b"old version"


async def test_a_cancelled_put_leaves_nothing(store: ClipStore) -> None:
    source = Parked(b"first chunk", b"never sent")
    task = asyncio.create_task(store.put(KEY, source))
    await asyncio.wait_for(source.started.wait(), timeout=10)
    assert not await store.exists(KEY)  # in flight: not visible yet
    assert await store.list() == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await store.exists(KEY)
    assert await store.list() == []


async def test_a_put_in_flight_is_invisible_until_complete(store: ClipStore) -> None:
    await store.put(KEY, b"old")
    source = Parked(b"new ", b"version")
    task = asyncio.create_task(store.put(KEY, source))
    await asyncio.wait_for(source.started.wait(), timeout=10)
    assert await read_all(store, KEY) == b"old"
    source.release.set()
    assert await task == 11
    assert await read_all(store, KEY) == b"new version"


async def test_a_stream_reads_one_version(store: ClipStore) -> None:
    first, second = b"A" * (2 * MIB), b"B" * (2 * MIB)
    await store.put(KEY, first)
    stream = store.stream(KEY, chunk_size=256 * 1024)
    head = await anext(stream)
    await store.put(KEY, second)  # replaced while the reader is mid-way
    rest = [chunk async for chunk in stream]
    assert head + b"".join(rest) == first
    assert await read_all(store, KEY) == second


async def test_list_by_prefix(store: ClipStore) -> None:
    keys = [
        "households/h1/devices/d1/2026/11/25/000000000001.clip.dws",
        "households/h1/devices/d1/2026/11/25/000000000001.thumb.dws",
        "households/h1/devices/d2/2026/11/26/000000000001.clip.dws",
        "households/h10/devices/d3/2026/11/25/000000000001.clip.dws",
        "packages/p1.zip",
    ]
    for key in reversed(keys):
        await store.put(key, key.encode())

    assert await store.list() == keys
    assert await store.list("") == keys
    assert await store.list("households/h1") == keys[:3]
    assert await store.list("households/h1/") == keys[:3]
    assert await store.list("households/h1/devices/d1/2026/11/25") == keys[:2]
    assert await store.list("households") == keys[:4]
    # Whole segments only: "households/h1" is not a prefix of "households/h10/...".
    assert await store.list("households/h") == []
    assert await store.list("households/h2") == []
    assert await store.list("packages/p1.zip") == []  # an object, not a folder


MALICIOUS_KEYS = [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "a//b",
    "a\\b",
    "a\x00b",
    "x" * 2000,
    "",
    ".",
    "a/./b",
    "a/",
    ".tmp-0123",
    "a/.hidden",
    "a b",
    "caf\u00e9",
]


def _ids(key: str) -> str:
    return repr(key if len(key) < 20 else key[:10] + "...")


@pytest.mark.parametrize("key", MALICIOUS_KEYS, ids=_ids)
async def test_malicious_keys_are_refused_before_storage_is_touched(
    unreachable_store: ClipStore, key: str
) -> None:
    # Any I/O on this store fails with another error, so InvalidKey proves none happened.
    store = unreachable_store
    with pytest.raises(InvalidKey):
        await store.put(key, b"x")
    with pytest.raises(InvalidKey):
        await store.put(key, Untouchable())
    with pytest.raises(InvalidKey):
        await store.get_range(key, 0, 1)
    with pytest.raises(InvalidKey):
        store.stream(key)  # refused on the call, before the first read
    with pytest.raises(InvalidKey):
        await store.size(key)
    with pytest.raises(InvalidKey):
        await store.exists(key)
    with pytest.raises(InvalidKey):
        await store.delete(key)


@pytest.mark.parametrize(
    "prefix", ["../", "..", "/etc", "a//b", "a\\b", "a\x00", "x" * 2000, ".tmp-"], ids=_ids
)
async def test_malicious_list_prefixes_are_refused(
    unreachable_store: ClipStore, prefix: str
) -> None:
    with pytest.raises(InvalidKey):
        await unreachable_store.list(prefix)


async def test_a_refused_key_stores_nothing(store: ClipStore) -> None:
    for key in MALICIOUS_KEYS:
        with pytest.raises(InvalidKey):
            await store.put(key, b"x")
    assert await store.list() == []


async def test_the_unreachable_store_really_is(unreachable_store: ClipStore) -> None:
    # The premise of the two tests above: a valid key on this store does fail.
    with pytest.raises(StorageError) as caught:
        await unreachable_store.put(KEY, b"x")
    assert not isinstance(caught.value, InvalidKey)


async def test_concurrent_puts_of_different_keys(store: ClipStore) -> None:
    objects = {f"concurrent/{i:02d}.clip.dws": os.urandom(96 * 1024 + i) for i in range(20)}
    sizes = await asyncio.gather(
        *(store.put(key, chunked(data, 8 * 1024, interleave=True)) for key, data in objects.items())
    )
    assert sizes == [len(data) for data in objects.values()]
    assert await store.list("concurrent") == sorted(objects)
    for key, data in objects.items():
        assert await read_all(store, key) == data


async def test_concurrent_puts_of_one_key_leave_one_whole_object(store: ClipStore) -> None:
    size = 256 * 1024
    versions = [bytes([i]) * size for i in range(20)]
    writing = True
    seen: list[bytes] = []

    async def reader() -> None:
        # Every read while the writers race sees one complete version, or nothing yet.
        while writing:
            try:
                content = await read_all(store, KEY)
            except ObjectNotFound:
                content = None
            if content is not None:
                assert len(content) == size
                assert content == content[:1] * size, "a mix of two versions was read"
                seen.append(content[:1])
            await asyncio.sleep(0)

    watcher = asyncio.create_task(reader())
    await asyncio.gather(
        *(store.put(KEY, chunked(data, 16 * 1024, interleave=True)) for data in versions)
    )
    writing = False
    await watcher

    final = await read_all(store, KEY)
    assert final in versions
    assert await store.list() == [KEY]
