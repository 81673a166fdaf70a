"""Upload staging in the clip store's S3 bucket, so that the parts of one clip may reach
different server instances (docs/clip-pipeline.md, "Staging on S3").

Per clip, under `staging/<device>/<seq>/` in the bucket:

- `part-<offset>-<length>-<sha256>`: one object per received part (offset and length as
  16 decimal digits). The object's name is its journal record: the resume offset and the
  final check need nothing but one listing, and no local file.
- `thumb`: the sealed thumbnail, checked against the manifest on receipt.

Why objects and not an S3 multipart upload: obstore 0.12 (the S3 client used) exposes no
multipart API across processes: its `put` runs a multipart upload inside one call, with
no upload id to hand to another instance, and no part-copy. So each part is an object,
and the completing instance composes them into the final object once.

A PUT makes an object visible whole or not at all, so a part is either there entirely
or absent; the resume offset is the end of the chain of parts from offset 0 whose sizes
match their names. Appends and completion of one clip are serialised across instances
by its database row's lock (`upload.py`), in this process by `lock()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import datetime

import structlog

from doorwarden import errors
from doorwarden.clips.staged_check import StagedDamaged
from doorwarden.clips.staging import Appended, Part, WrongOffset, storage_failure
from doorwarden.clips.verifiers import Verifiers
from doorwarden.storage.base import ObjectNotFound, StorageError
from doorwarden.storage.s3 import ObjectInfo, S3ClipStore

log = structlog.get_logger("doorwarden.clips.staging_s3")

PREFIX = "staging"
THUMB = "thumb"
_PART = re.compile(r"^part-(\d{16})-(\d{16})-([0-9a-f]{64})$")


def clip_prefix(device_id: uuid.UUID, sequence: int) -> str:
    return f"{PREFIX}/{device_id}/{sequence:012d}"


def part_key(device_id: uuid.UUID, sequence: int, offset: int, length: int, sha: bytes) -> str:
    return f"{clip_prefix(device_id, sequence)}/part-{offset:016d}-{length:016d}-{sha.hex()}"


def chain(objects: list[ObjectInfo]) -> list[Part]:
    """The parts that chain from offset 0, each object whole (its size its length).
    Where two parts start at one offset (never, while appends hold the row lock), the
    first by name is taken, so every instance reads the same chain."""
    starting: dict[int, list[Part]] = {}
    for info in objects:
        match = _PART.match(info.key.rsplit("/", 1)[-1])
        if match is None:
            continue
        offset, length = int(match[1]), int(match[2])
        if length == 0 or info.size != length:
            continue
        starting.setdefault(offset, []).append(Part(offset, length, bytes.fromhex(match[3])))
    parts: list[Part] = []
    end = 0
    while end in starting:
        part = starting[end][0]
        parts.append(part)
        end += part.length
    return parts


class S3Staging:
    shared = True

    def __init__(self, store: S3ClipStore, verifiers: Verifiers | None = None) -> None:
        self.store = store
        self.verifiers = verifiers or Verifiers()
        self._locks: weakref.WeakValueDictionary[tuple[uuid.UUID, int], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def __repr__(self) -> str:
        return f"S3Staging({self.store!r}, prefix={PREFIX!r})"

    def lock(self, device_id: uuid.UUID, sequence: int) -> asyncio.Lock:
        """One writer per clip in this process; across instances, the clip row's lock."""
        return self._locks.setdefault((device_id, sequence), asyncio.Lock())

    async def _objects(self, device_id: uuid.UUID, sequence: int) -> list[ObjectInfo]:
        try:
            return await self.store.list_objects(clip_prefix(device_id, sequence))
        except StorageError as exc:
            raise storage_failure(exc, "read the staged clip", sequence=sequence) from None

    async def records(self, device_id: uuid.UUID, sequence: int) -> list[Part]:
        return chain(await self._objects(device_id, sequence))

    async def offset(self, device_id: uuid.UUID, sequence: int) -> int:
        parts = await self.records(device_id, sequence)
        return parts[-1].offset + parts[-1].length if parts else 0

    async def append_part(
        self, device_id: uuid.UUID, sequence: int, start: int, data: bytes, *, last: bool = False
    ) -> Appended:
        received = await self.offset(device_id, sequence)
        if start != received:
            raise WrongOffset(received)
        digest = await asyncio.to_thread(_sha256, data)
        key = part_key(device_id, sequence, start, len(data), digest)
        try:
            await self.store.put(key, data)
        except StorageError as exc:
            raise storage_failure(exc, "stage the clip's data", sequence=sequence) from None
        return Appended(start + len(data), digest)

    async def append(self, device_id: uuid.UUID, sequence: int, start: int, data: bytes) -> int:
        return (await self.append_part(device_id, sequence, start, data)).end

    async def write_thumbnail(self, device_id: uuid.UUID, sequence: int, data: bytes) -> None:
        try:
            await self.store.put(f"{clip_prefix(device_id, sequence)}/{THUMB}", data)
        except StorageError as exc:
            raise storage_failure(exc, "stage the thumbnail", sequence=sequence) from None

    async def thumbnail(self, device_id: uuid.UUID, sequence: int) -> bytes | None:
        key = f"{clip_prefix(device_id, sequence)}/{THUMB}"
        try:
            size = await self.store.size(key)
            return await self.store.get_range(key, 0, size)
        except ObjectNotFound:
            return None
        except StorageError as exc:
            raise storage_failure(exc, "read the staged thumbnail", sequence=sequence) from None

    async def unchanged(
        self, device_id: uuid.UUID, sequence: int, fingerprint: tuple[int, ...] | None
    ) -> bool:
        """Parts are immutable objects named by their hash: the records say it all."""
        return True

    async def read_part(self, device_id: uuid.UUID, sequence: int, part: Part) -> bytes:
        key = part_key(device_id, sequence, part.offset, part.length, part.sha256)
        return await self.store.get_range(key, 0, part.length)

    async def parts_checked(
        self, device_id: uuid.UUID, sequence: int, parts: list[Part]
    ) -> AsyncIterator[bytes]:
        """The parts in order, each read once and checked against its record first
        (`StagedDamaged` if it no longer holds what was received)."""
        for part in parts:
            data = await self.read_part(device_id, sequence, part)
            if await asyncio.to_thread(_sha256, data) != part.sha256:
                raise StagedDamaged(f"the staged part at offset {part.offset} changed")
            yield data

    async def store_parts(
        self, key: str, device_id: uuid.UUID, sequence: int, parts: list[Part]
    ) -> None:
        """The final object from the parts: one part is copied by the bucket itself (no
        bytes through this instance); several are read once and sent as one object."""
        if len(parts) == 1:
            part = parts[0]
            source = part_key(device_id, sequence, part.offset, part.length, part.sha256)
            await self.store.copy(source, key)
            return
        await self.store.put(key, self.parts_checked(device_id, sequence, parts))

    async def store_thumbnail(self, key: str, device_id: uuid.UUID, sequence: int) -> None:
        await self.store.copy(f"{clip_prefix(device_id, sequence)}/{THUMB}", key)

    async def remove(self, device_id: uuid.UUID, sequence: int) -> None:
        """Remove the clip's staging; `StorageUnavailable` if it could not be removed."""
        self.verifiers.drop(device_id, sequence)
        try:
            for info in await self.store.list_objects(clip_prefix(device_id, sequence)):
                await self.store.delete(info.key)
        except StorageError as exc:
            raise storage_failure(exc, "discard the staged clip", sequence=sequence) from None

    async def remove_quietly(self, device_id: uuid.UUID, sequence: int) -> bool:
        try:
            await self.remove(device_id, sequence)
        except errors.DomainError:
            return False
        return True

    async def staged(self) -> dict[tuple[uuid.UUID, int], datetime]:
        """Every clip with staging in the bucket, and when its newest object was written
        (for the sweep). Keys that are not ours are left out."""
        newest: dict[tuple[uuid.UUID, int], datetime] = {}
        for info in await self.store.list_objects(PREFIX):
            segments = info.key.split("/")
            try:
                clip = (uuid.UUID(segments[-3]), int(segments[-2]))
            except (IndexError, ValueError):
                continue
            if clip not in newest or info.modified > newest[clip]:
                newest[clip] = info.modified
        return newest


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
