"""Receiving a clip's bytes after its manifest (`ingest.offer_manifest`): the data parts
in order, the thumbnail, and the completion that verifies and stores the clip
(docs/clip-pipeline.md). These services never commit (DESIGN.md convention 1).

Appends and the completion of one clip hold the clip's lock in this process and its
row's lock in the database (SELECT ... FOR UPDATE where the database has it): with
staging shared between instances (S3), two instances receiving parts of one clip, or a
part racing the completion, are serialised by the database, not by luck.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.completion import AnyStaging, verify_and_store
from doorwarden.clips.ingest import DataRefused, _alert_and_refuse, _refusal, clip_at
from doorwarden.clips.models import AlertKind, Clip, ClipStatus
from doorwarden.clips.staged_check import StagedDamaged
from doorwarden.clips.staging import Appended, WrongOffset, storage_failure
from doorwarden.clips.verifiers import Tracked
from doorwarden.crypto import errors as seal_errors
from doorwarden.crypto.keys import RecipientKey, b64d
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.seal import ClipVerifier, clip_key
from doorwarden.devices.models import Device
from doorwarden.errors import Conflict, InvalidInput, NotFound, StorageUnavailable
from doorwarden.storage.base import ClipStore, StorageError

log = structlog.get_logger("doorwarden.clips.upload")

HouseholdKey = Callable[[], Awaitable[RecipientKey | None]]
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


async def _locked(db: AsyncSession, device: Device, sequence: int) -> Clip:
    """The clip's row, read afresh and locked until the transaction ends."""
    clip = await db.scalar(
        select(Clip)
        .where(Clip.device_id == device.id, Clip.sequence == sequence)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if clip is None:
        raise NotFound(f"Send the manifest of clip {sequence} first.")
    return clip


async def _new_verifier(clip: Clip, device: Device, household: HouseholdKey) -> ClipVerifier:
    signed = SignedManifest.parse(json.loads(clip.manifest))
    key = None
    if signed.manifest.mode != "e2e":
        recipient = await household()
        if recipient is not None:
            device_public = b64d(device.public_key, what="device key", length=32)
            # A manifest this key cannot open is refused at completion, by the full
            # pass and with its alert; here it only means no early check.
            key = clip_key(signed, device_public, recipient)
    return ClipVerifier(signed.manifest, key)


async def receive_data(
    db: AsyncSession,
    *,
    device: Device,
    sequence: int,
    content_range: str | None,
    body: bytes,
    staging: AnyStaging,
    household: HouseholdKey | None = None,
) -> tuple[Clip, int]:
    """Stage the part; the new resume offset. With `household` (how to get the
    household's key), the part is also fed to the upload's verifier, beside its write."""
    async with staging.lock(device.id, sequence):
        clip = await _locked(db, device, sequence)
        if clip.status is ClipStatus.verified:
            return clip, clip.ciphertext_size
        match = _RANGE.match(content_range or "")
        if match is None:
            raise InvalidInput("Send Content-Range: bytes START-END/TOTAL with each part.")
        start, end, total = (int(g) for g in match.groups())
        size = clip.ciphertext_size
        if total != size or end < start or end >= total or end - start + 1 != len(body):
            raise InvalidInput(
                "The range does not fit the body or the clip's size.",
                details={"ciphertext_size": size, "body_bytes": len(body)},
            )
        tracked: Tracked | None = None
        verifier: ClipVerifier | None = None
        if household is not None:
            if start == 0:
                try:
                    verifier = await _new_verifier(clip, device, household)
                except seal_errors.SealError:
                    verifier = None
            else:
                tracked = staging.verifiers.following(device.id, sequence, start)
                verifier = tracked.verifier if tracked is not None else None
        try:
            appended = await _append_and_feed(
                staging, device, sequence, start, body, verifier,
                registered=tracked is not None, last=end + 1 == total,
            )  # fmt: skip
        except WrongOffset as wrong:
            error = Conflict(
                f"Expected bytes from offset {wrong.received}.",
                details={"received": wrong.received},
            )
            error.code = "wrong_offset"
            raise error from None
        if verifier is not None:
            if tracked is None:
                tracked = staging.verifiers.start(device.id, sequence, verifier)
            tracked.fingerprint = appended.fingerprint
            record = (start, len(body), appended.sha256)
            staging.verifiers.fed(device.id, sequence, tracked, record)
        return clip, appended.end


async def _append_and_feed(
    staging: AnyStaging,
    device: Device,
    sequence: int,
    start: int,
    body: bytes,
    verifier: ClipVerifier | None,
    *,
    registered: bool,
    last: bool,
) -> Appended:
    """The write and the check side by side (both release the GIL: file or network I/O,
    and hashing and AES-GCM). A failed write drops the verifier: it saw a part the
    staging does not hold (a new one, for a part at 0, was never registered)."""
    if verifier is None:
        return await staging.append_part(device.id, sequence, start, body, last=last)
    appended: Appended | None = None

    async def write() -> None:
        nonlocal appended
        appended = await staging.append_part(device.id, sequence, start, body, last=last)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(write)
            group.start_soon(anyio.to_thread.run_sync, verifier.update, body)
    except BaseExceptionGroup as group_error:
        if registered:
            staging.verifiers.drop(device.id, sequence)
        raise group_error.exceptions[0] from None
    assert appended is not None  # noqa: S101 - set by write(), which did not raise
    return appended


async def receive_thumbnail(
    db: AsyncSession, *, device: Device, sequence: int, body: bytes, staging: AnyStaging
) -> None:
    clip = await clip_at(db, device, sequence)
    if clip is None:
        raise NotFound(f"Send the manifest of clip {sequence} first.")
    if clip.status is ClipStatus.verified:
        return
    signed = SignedManifest.parse(json.loads(clip.manifest))
    if (
        len(body) != signed.manifest.thumbnail_size
        or hashlib.sha256(body).hexdigest() != signed.manifest.thumbnail_sha256
    ):
        raise _refusal(DataRefused, "hash_mismatch", "The thumbnail does not match the manifest.")
    await staging.write_thumbnail(device.id, sequence, body)


_FAILURES = {
    seal_errors.HashMismatchError: AlertKind.hash_mismatch,
    seal_errors.ChunkError: AlertKind.chunk_tampered,
    seal_errors.TruncatedError: AlertKind.truncated,
    seal_errors.MalformedError: AlertKind.chunk_tampered,
}


async def complete(
    db: AsyncSession,
    *,
    device: Device,
    sequence: int,
    household: RecipientKey | None,
    staging: AnyStaging,
    store: ClipStore,
    ctx: RequestContext,
    now: datetime,
) -> Clip:
    """Verifies and stores the clip and marks it verified. The caller commits, then
    discards the staged copy (`staging.remove_quietly`): a crash in between leaves a
    verified clip and stray staging, never a clip that is neither staged nor stored.

    Holds the clip's lock and its row's lock (module docstring): a concurrent completion
    of the same clip, here or on another instance, waits until this one's transaction
    ends and then finds it verified, rather than verifying staging already discarded."""
    async with staging.lock(device.id, sequence):
        clip = await _locked(db, device, sequence)
        if clip.status is ClipStatus.verified:
            return clip
        await _verify_and_store(
            db, clip=clip, device=device, household=household, staging=staging, store=store,
            ctx=ctx,
        )  # fmt: skip
        clip.status = ClipStatus.verified
        clip.verified_at = now
        if device.last_sequence is None or sequence > device.last_sequence:
            device.last_sequence, device.last_digest = sequence, clip.digest
        record(
            db,
            tag=Tag.clip_receive,
            actor=Actor(user_id=None, role="device"),
            ctx=ctx,
            household_id=device.household_id,
            target_type="clip",
            target_id=clip.id,
            extra={"device": str(device.id), "sequence": sequence, "bytes": clip.ciphertext_size},
        )
    return clip


async def _verify_and_store(
    db: AsyncSession,
    *,
    clip: Clip,
    device: Device,
    household: RecipientKey | None,
    staging: AnyStaging,
    store: ClipStore,
    ctx: RequestContext,
) -> None:
    sequence = clip.sequence
    parts = await staging.records(device.id, sequence)
    received = parts[-1].offset + parts[-1].length if parts else 0
    thumb = await staging.thumbnail(device.id, sequence) if clip.thumbnail_size else None
    if received != clip.ciphertext_size or (clip.thumbnail_size and thumb is None):
        error = Conflict(
            "The clip is not complete yet.",
            details={"received": received, "ciphertext_size": clip.ciphertext_size},
        )
        error.code = "incomplete"
        raise error
    signed = SignedManifest.parse(json.loads(clip.manifest))
    if signed.manifest.mode == "e2e":
        household = None  # the server cannot open it, by design: the ciphertext is checked
    try:
        streamed = await verify_and_store(
            signed=signed,
            device_public=b64d(device.public_key, what="device key", length=32),
            household=household,
            staging=staging,
            store=store,
            device_id=device.id,
            parts=parts,
            thumb=thumb,
            object_key=clip.object_key,
            thumbnail_key=clip.thumbnail_key,
        )
    except StagedDamaged as exc:
        # The server's storage lost or changed what the camera sent: not the camera's fault.
        log.warning(
            "clips.staged_damaged", device=str(device.id), sequence=sequence, reason=str(exc)
        )
        await staging.remove(device.id, sequence)  # the camera sends it again from the start
        raise StorageUnavailable(
            f"The server's staged copy of clip {sequence} was damaged; send it again.",
            details={"received": 0},
        ) from None
    except seal_errors.SealError as exc:
        await staging.remove(device.id, sequence)  # the camera sends it again from the start
        kind = _FAILURES.get(type(exc), AlertKind.hash_mismatch)
        refused = _refusal(DataRefused, str(kind), f"Clip {sequence} was refused: {exc}")
        raise _alert_and_refuse(db, device, sequence, kind, refused, ctx) from None
    except (OSError, StorageError) as exc:
        # The staging stays until the clip is verified and committed: if the store fails
        # (507/503), the camera's retry completes the clip from it.
        raise storage_failure(exc, "store the clip", sequence=sequence) from None
    log.debug("clips.completed", device=str(device.id), sequence=sequence, streamed=streamed)
