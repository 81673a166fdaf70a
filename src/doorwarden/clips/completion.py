"""Completing an upload: every byte checked against the signed manifest, then stored,
by the cheapest path that keeps the verdict sound (docs/clip-pipeline.md).

- Streamed: this process fed every part, in order, to the upload's verifier as it
  arrived (`verifiers.py`), and the staging's records are exactly the parts it was fed
  (for a local staging file, also unchanged on disk since): the verifier's result is the
  verdict, and nothing is read again to check it.
- Full pass otherwise (parts went to other instances, this process restarted, the
  verifier was dropped): local staging is checked against its journal and then the
  manifest (`staged_check.py`); S3 staging is read once, part by part, each part checked
  against its record, fed to a fresh verifier and streamed into the final object, whose
  upload is aborted (nothing visible) if the last check fails.

Storing: a local store adopts the staged file (fsync + hard link, no second copy); S3
copies a single part server-side or composes the parts into one object.

Fault attribution is unchanged: bytes that differ from what was received are the
server's (`StagedDamaged`, 503, no alert); received bytes that fail the manifest are the
camera's (`SealError`, refusal and alert).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import anyio

from doorwarden.clips.staged_check import StagedDamaged, verify_staged
from doorwarden.clips.staging import Part, Staging
from doorwarden.clips.staging_s3 import S3Staging
from doorwarden.crypto.keys import RecipientKey
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.seal import ClipVerifier, clip_key, open_thumbnail
from doorwarden.storage.base import ClipStore

AnyStaging = Staging | S3Staging


def _check_thumbnail(
    signed: SignedManifest,
    device_public: bytes,
    household: RecipientKey | None,
    thumb: bytes | None,
) -> None:
    manifest = signed.manifest
    if not manifest.thumbnail_size:
        return
    if (
        thumb is None
        or len(thumb) != manifest.thumbnail_size
        or hashlib.sha256(thumb).hexdigest() != manifest.thumbnail_sha256
    ):
        raise StagedDamaged("the staged thumbnail changed")
    if household is not None:
        open_thumbnail(signed, device_public, thumb, household)


async def streamed(
    staging: AnyStaging,
    device_id: uuid.UUID,
    signed: SignedManifest,
    parts: list[Part],
) -> ClipVerifier | None:
    """The upload's verifier if it saw exactly the staged parts, else None."""
    sequence = signed.manifest.sequence
    tracked = staging.verifiers.take(device_id, sequence)
    if tracked is None:
        return None
    if tracked.records != [(p.offset, p.length, p.sha256) for p in parts]:
        return None
    if not await staging.unchanged(device_id, sequence, tracked.fingerprint):
        return None
    return tracked.verifier


async def verify_and_store(
    *,
    signed: SignedManifest,
    device_public: bytes,
    household: RecipientKey | None,
    staging: AnyStaging,
    store: ClipStore,
    device_id: uuid.UUID,
    parts: list[Part],
    thumb: bytes | None,
    object_key: str,
    thumbnail_key: str | None,
) -> bool:
    """Check and store; True if the streamed verdict was used. Raises `StagedDamaged`,
    `SealError`, `OSError` (local staging unreadable) or `StorageError` (the store)."""
    sequence = signed.manifest.sequence
    verifier = await streamed(staging, device_id, signed, parts)
    if verifier is not None:
        _check_thumbnail(signed, device_public, household, thumb)
        verifier.finish()
        if isinstance(staging, S3Staging):
            await staging.store_parts(object_key, device_id, sequence, parts)
        else:
            await staging.store_data(store, object_key, device_id, sequence)
    elif isinstance(staging, S3Staging):
        _check_thumbnail(signed, device_public, household, thumb)
        key = clip_key(signed, device_public, household) if household is not None else None
        fresh = ClipVerifier(signed.manifest, key)
        await store.put(object_key, _verified(staging, device_id, sequence, parts, fresh))
    else:
        await anyio.to_thread.run_sync(
            verify_staged, signed, device_public, household, staging, device_id
        )
        await staging.store_data(store, object_key, device_id, sequence)
    if thumbnail_key is not None and thumb is not None:
        if isinstance(staging, S3Staging):
            await staging.store_thumbnail(thumbnail_key, device_id, sequence)
        else:
            await staging.store_thumbnail(store, thumbnail_key, device_id, sequence, thumb)
    return verifier is not None


async def _verified(
    staging: S3Staging,
    device_id: uuid.UUID,
    sequence: int,
    parts: list[Part],
    verifier: ClipVerifier,
) -> AsyncIterator[bytes]:
    """The staged parts into the final object, checked on the way; the last check fails
    the source before its end, so the store aborts the object (nothing visible)."""
    async for data in staging.parts_checked(device_id, sequence, parts):
        await anyio.to_thread.run_sync(verifier.update, data)
        if verifier.error is not None:
            raise verifier.error
        yield data
    verifier.finish()
