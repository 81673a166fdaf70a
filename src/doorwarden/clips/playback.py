"""Serving a verified clip to its household: decrypted chunk by chunk with the household
key (standard mode), so a browser's Range requests (seeking) fetch and decrypt only the
chunks they cover, and nothing is ever written to disk in the clear."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import Clip
from doorwarden.crypto import stream
from doorwarden.crypto.errors import NotARecipientError
from doorwarden.crypto.keys import RecipientKey, b64d
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.seal import clip_key
from doorwarden.errors import DomainError, NotFound
from doorwarden.storage.base import ClipStore, ObjectNotFound

# Footage is never cached by a proxy or the browser's disk cache, nor sniffed as HTML.
PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


class NotReadableHere(DomainError):
    """End-to-end clips: the server holds ciphertext it cannot open, by design."""

    status_code = 409
    code = "end_to_end"


class RangeNotSatisfiable(DomainError):
    status_code = 416
    code = "range_not_satisfiable"


@dataclass(frozen=True)
class OpenedClip:
    key: bytes
    header: bytes
    size: int  # plaintext bytes
    chunk_size: int
    object_key: str
    store: ClipStore

    async def read(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Plaintext bytes [start, end), decrypted from the chunks that hold them."""
        if start >= end:
            return
        count = stream.chunk_count(self.size, self.chunk_size)
        first, last = start // self.chunk_size, (end - 1) // self.chunk_size
        for index in range(first, last + 1):
            lo, hi = stream.sealed_span(index, self.size, self.chunk_size)
            sealed = await self.store.get_range(self.object_key, lo, hi)
            plain = await anyio.to_thread.run_sync(
                stream.decrypt_chunk, self.key, self.header, index, index == count - 1, sealed
            )
            base = index * self.chunk_size
            yield plain[max(0, start - base) : end - base]


async def open_clip_for_playback(
    clip: Clip, device_public_key: str, household: RecipientKey | None, store: ClipStore
) -> OpenedClip:
    signed = SignedManifest.parse(json.loads(clip.manifest))
    if household is None:
        raise NotReadableHere("This household has no server-held key.")
    try:
        key = clip_key(signed, b64d(device_public_key, what="device key", length=32), household)
    except NotARecipientError:
        raise NotReadableHere(
            "This clip is end-to-end encrypted: only the household members' own keys open it."
        ) from None
    try:
        header = await store.get_range(clip.object_key, 0, stream.HEADER_BYTES)
    except ObjectNotFound:
        # Listed but not stored: only if storage lost it. Said plainly, not a crash.
        raise NotFound("This clip's video is missing from storage.") from None
    return OpenedClip(
        key=key,
        header=header,
        size=signed.manifest.size,
        chunk_size=stream.read_header(header),
        object_key=clip.object_key,
        store=store,
    )


async def thumbnail_jpeg(
    clip: Clip, device_public_key: str, household: RecipientKey | None, store: ClipStore
) -> bytes | None:
    if clip.thumbnail_key is None:
        return None
    opened = await open_clip_for_playback(clip, device_public_key, household, store)
    try:
        sealed = await store.get_range(clip.thumbnail_key, 0, clip.thumbnail_size)
    except ObjectNotFound:
        return None
    return b"".join(
        await anyio.to_thread.run_sync(lambda: list(stream.decrypt(opened.key, [sealed])))
    )


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) for a single `Range: bytes=...`, None for the whole body.

    Several ranges at once are answered with the whole body (allowed by RFC 9110);
    a range that cannot be satisfied raises RangeNotSatisfiable.
    """
    if header is None or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None  # not a byte range we understand: ignored, as RFC 9110 allows
    first, last = match.groups()
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable("An empty suffix range.", details={"size": size})
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeNotSatisfiable(
            f"The clip has {size} bytes.",
            details={"size": size},
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def audit_clip_access(
    db: AsyncSession,
    tag: Tag,
    user: User,
    clip: Clip,
    ctx: RequestContext,
    occurred_at: datetime | None = None,
    **extra: object,
) -> None:
    """One footage access in the log (a view, a thumbnail, a download), however served."""
    record(
        db,
        tag=tag,
        actor=actor_of(user),
        ctx=ctx,
        household_id=clip.household_id,
        target_type="clip",
        target_id=clip.id,
        extra={"device": str(clip.device_id), "sequence": clip.sequence, **extra},
        occurred_at=occurred_at,
    )
