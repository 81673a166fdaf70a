"""Clips API: the camera's upload protocol (docs/clip-pipeline.md), and the household's
list of verified clips and integrity alerts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.clips import ingest, upload
from doorwarden.clips.models import Clip, ClipStatus, IntegrityAlert
from doorwarden.clips.schemas import AlertOut, ClipOut, UploadState
from doorwarden.crypto.keys import RecipientKey
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    DeviceDep,
    SessionDep,
    SettingsDep,
    StagingDep,
    StoreDep,
    authorize,
    household_resource,
)
from doorwarden.devices.keys import household_private_key, household_public_key, member_keys
from doorwarden.policy import Action, Principal

router = APIRouter(tags=["clips"])
Sequence = Annotated[int, Path(ge=0, le=2**53, description="The clip's sequence number.")]
UPLOAD = "/api/v1/device/clips/{sequence}"


@asynccontextmanager
async def _alerts_kept(db: AsyncSession) -> AsyncIterator[None]:
    """A refusal the owner must hear about: its integrity alert is committed before the
    refusal is answered (the error then rolls back nothing of it)."""
    try:
        yield
    except ingest.AlertRaised as alerted:
        await db.commit()
        raise alerted.error from None


def _state(clip: Clip, received: int) -> UploadState:
    return UploadState(
        status=str(clip.status),
        received=received,
        ciphertext_size=clip.ciphertext_size,
        clip_id=clip.id,
    )


@router.put(UPLOAD, response_model=UploadState)
async def offer_manifest(
    sequence: Sequence,
    request: Request,
    response: Response,
    _p: Annotated[Principal, authorize(Action.clip_upload)],
    device: DeviceDep,
    db: SessionDep,
    staging: StagingDep,
    settings: SettingsDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> UploadState:
    """Body: the signed manifest. 201 for a new clip, 200 with the resume offset for one
    already offered (idempotent by camera and sequence number)."""
    household_key = await household_public_key(
        db, settings.secret_key.get_secret_value(), device.household_id, clock.now()
    )
    async with _alerts_kept(db):
        offer = await ingest.offer_manifest(
            db,
            device=device,
            sequence=sequence,
            body=await request.body(),
            household_key=household_key,
            member_keys=await member_keys(db, device.household_id),
            staging=staging,
            ctx=ctx,
            now=clock.now(),
            ring_clips_per_hour=settings.live_only_ring_clips_per_hour,
        )
    response.status_code = status.HTTP_201_CREATED if offer.created else status.HTTP_200_OK
    return _state(offer.clip, offer.received)


@router.put(UPLOAD + "/data", response_model=UploadState)
async def upload_data(
    sequence: Sequence,
    request: Request,
    _p: Annotated[Principal, authorize(Action.clip_upload)],
    device: DeviceDep,
    db: SessionDep,
    staging: StagingDep,
    settings: SettingsDep,
) -> UploadState:
    """Body: bytes START..END of the sealed clip (header Content-Range), in order."""

    async def household() -> RecipientKey | None:
        # Read once per upload (its first part), to check the parts as they arrive.
        secret = settings.secret_key.get_secret_value()
        return await household_private_key(db, secret, device.household_id)

    clip, received = await upload.receive_data(
        db,
        device=device,
        sequence=sequence,
        content_range=request.headers.get("content-range"),
        body=await request.body(),
        staging=staging,
        household=household,
    )
    return _state(clip, received)


@router.put(UPLOAD + "/thumbnail", status_code=status.HTTP_204_NO_CONTENT)
async def upload_thumbnail(
    sequence: Sequence,
    request: Request,
    _p: Annotated[Principal, authorize(Action.clip_upload)],
    device: DeviceDep,
    db: SessionDep,
    staging: StagingDep,
) -> None:
    """Body: the whole sealed thumbnail."""
    await upload.receive_thumbnail(
        db, device=device, sequence=sequence, body=await request.body(), staging=staging
    )


@router.post(UPLOAD + "/complete", response_model=UploadState)
async def complete_upload(
    sequence: Sequence,
    _p: Annotated[Principal, authorize(Action.clip_upload)],
    device: DeviceDep,
    db: SessionDep,
    staging: StagingDep,
    store: StoreDep,
    settings: SettingsDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> UploadState:
    """Verify every byte against the manifest, store the clip, make it visible. The
    server's own storage failing answers 507 `storage_full` or 503 `storage_unavailable`
    (Retry-After) and alerts nobody; data that does not match its manifest answers 422
    and alerts the owner."""
    household = await household_private_key(
        db, settings.secret_key.get_secret_value(), device.household_id
    )
    async with _alerts_kept(db):
        clip = await upload.complete(
            db,
            device=device,
            sequence=sequence,
            household=household,
            staging=staging,
            store=store,
            ctx=ctx,
            now=clock.now(),
        )
    # Committed before the staged copy goes: a crash in between leaves a verified clip
    # and a stray file, never a clip that is neither staged nor stored. The clip is safe
    # now, so a staging that cannot be removed is logged and left to the sweep.
    await db.commit()
    await staging.remove_quietly(device.id, sequence)
    return _state(clip, clip.ciphertext_size)


@router.get("/api/v1/households/{household_id}/clips", response_model=list[ClipOut])
async def list_clips(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_view, household_resource)],
    db: SessionDep,
    device_id: uuid.UUID | None = None,
    day: date | None = Query(None, description="Clips that started on this UTC day."),
    label: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ClipOut]:
    """Verified clips, newest first. Clips still arriving are never listed."""
    query = select(Clip).where(
        Clip.household_id == household_id, Clip.status == ClipStatus.verified
    )
    if device_id is not None:
        query = query.where(Clip.device_id == device_id)
    if day is not None:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        query = query.where(Clip.start_at >= start, Clip.start_at < start + timedelta(days=1))
    if label is not None:
        query = query.where(Clip.label_set.contains(f",{label},", autoescape=True))
    query = query.order_by(Clip.start_at.desc(), Clip.sequence.desc())
    rows = (await db.scalars(query.limit(limit))).all()
    return [ClipOut.model_validate(r) for r in rows]


@router.get("/api/v1/households/{household_id}/integrity-alerts", response_model=list[AlertOut])
async def list_alerts(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.integrity_alert_read, household_resource)],
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertOut]:
    """Gaps, forks and refused data from this household's cameras, newest first."""
    query = (
        select(IntegrityAlert)
        .where(IntegrityAlert.household_id == household_id)
        .order_by(IntegrityAlert.created_at.desc())
        .limit(limit)
    )
    return [AlertOut.model_validate(a) for a in (await db.scalars(query)).all()]
