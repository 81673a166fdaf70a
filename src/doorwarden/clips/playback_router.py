"""Watching, downloading and deleting a household's clips. Every view and download is an
audit event; the policy keeps every staff and agency role out (policy.FOOTAGE_ACTIONS)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.service import actor_of
from doorwarden.audit.tags import Tag
from doorwarden.clips import export, service
from doorwarden.clips.models import Clip
from doorwarden.clips.playback import (
    PRIVATE,
    OpenedClip,
    audit_clip_access,
    open_clip_for_playback,
    parse_range,
    thumbnail_jpeg,
)
from doorwarden.config import Settings
from doorwarden.crypto.keys import RecipientKey
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    UserDep,
    authorize,
    household_resource,
)
from doorwarden.devices.keys import household_private_key
from doorwarden.devices.models import Device
from doorwarden.errors import NotFound
from doorwarden.policy import Action, Principal
from doorwarden.storage.base import ClipStore

router = APIRouter(prefix="/api/v1/households/{household_id}/clips", tags=["clips"])


async def _device_key(db: AsyncSession, clip: Clip) -> str:
    device = await db.get(Device, clip.device_id)
    if device is None:
        raise NotFound("No such clip.")
    return device.public_key


async def _household_key(
    db: AsyncSession, settings: Settings, household_id: uuid.UUID
) -> RecipientKey | None:
    return await household_private_key(db, settings.secret_key.get_secret_value(), household_id)


async def _open(
    store: ClipStore, db: AsyncSession, settings: Settings, household_id: uuid.UUID,
    clip_id: uuid.UUID,
) -> tuple[Clip, OpenedClip]:  # fmt: skip
    clip = await service.verified_clip(db, household_id, clip_id)
    opened = await open_clip_for_playback(
        clip,
        await _device_key(db, clip),
        await _household_key(db, settings, household_id),
        store,
    )
    return clip, opened


@router.get("/{clip_id}/video", response_class=StreamingResponse)
async def watch_clip(
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    request: Request,
    _p: Annotated[Principal, authorize(Action.clip_view, household_resource)],
    user: UserDep,
    db: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> Response:
    """The clip as MP4, with Range support so a video element can seek. One viewing (this
    user, from this address, within `clip_view_audit_window_minutes`) is one audit event,
    whichever bytes its requests ask for: a player's seeks write no event each, and a
    request that skips byte 0 is no way around the trail."""
    clip, opened = await _open(store, db, settings, household_id, clip_id)
    wanted = parse_range(request.headers.get("range"), opened.size)
    start, end = wanted or (0, opened.size)
    now = clock.now()
    window = timedelta(minutes=settings.clip_view_audit_window_minutes)
    if not await service.viewing_on_record(
        db, clip=clip, user_id=user.id, client_address=ctx.client_address, since=now - window
    ):
        # Committed with the request's session before the response starts (deps.get_db).
        audit_clip_access(db, Tag.clip_view, user, clip, ctx, occurred_at=now)
    headers = {
        **PRIVATE,
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
    }
    if wanted is None:
        return StreamingResponse(
            opened.read(0, opened.size), media_type="video/mp4", headers=headers
        )
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{opened.size}"
    return StreamingResponse(
        opened.read(start, end),
        status_code=status.HTTP_206_PARTIAL_CONTENT,
        media_type="video/mp4",
        headers=headers,
    )


@router.get("/{clip_id}/download", response_class=StreamingResponse)
async def download_clip(
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_download, household_resource)],
    user: UserDep,
    db: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> Response:
    """The original MP4 as recorded by the camera (decrypted, byte for byte), as a file."""
    clip, opened = await _open(store, db, settings, household_id, clip_id)
    audit_clip_access(db, Tag.clip_download, user, clip, ctx)
    name = f"clip-{clip.start_at:%Y%m%dT%H%M%SZ}-{clip.sequence}.mp4"
    headers = {
        **PRIVATE,
        "Content-Length": str(opened.size),
        "Content-Disposition": f'attachment; filename="{name}"',
    }
    return StreamingResponse(opened.read(0, opened.size), media_type="video/mp4", headers=headers)


@router.get("/{clip_id}/thumbnail", response_class=Response)
async def clip_thumbnail(
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_view, household_resource)],
    user: UserDep,
    db: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    ctx: ContextDep,
) -> Response:
    clip = await service.verified_clip(db, household_id, clip_id)
    jpeg = await thumbnail_jpeg(
        clip,
        await _device_key(db, clip),
        await _household_key(db, settings, household_id),
        store,
    )
    if jpeg is None:
        raise NotFound("This clip has no thumbnail.")
    audit_clip_access(db, Tag.clip_thumbnail_view, user, clip, ctx)
    return Response(jpeg, media_type="image/jpeg", headers=PRIVATE)


@router.get("/{clip_id}/sealed", response_class=Response)
async def export_sealed_clip(
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_download, household_resource)],
    user: UserDep,
    db: SessionDep,
    store: StoreDep,
    ctx: ContextDep,
) -> Response:
    """The clip exactly as the camera sealed it, for checking by anyone, offline: a ZIP
    with the signed manifest, the sealed clip and thumbnail and the camera's public key
    (docs/clip-pipeline.md layout; `doorwarden verify DIR` reads it)."""
    clip = await service.verified_clip(db, household_id, clip_id)
    archive = await export.sealed_zip(clip, await _device_key(db, clip), store)
    audit_clip_access(db, Tag.clip_download, user, clip, ctx, form="sealed")
    name = f"clip-{clip.start_at:%Y%m%dT%H%M%SZ}-{clip.sequence}-sealed.zip"
    headers = {**PRIVATE, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(archive, media_type="application/zip", headers=headers)


@router.delete("/{clip_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_clip(
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_delete, household_resource)],
    user: UserDep,
    db: SessionDep,
    store: StoreDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> None:
    """Delete a clip for good (owners only). Refused while a legal hold lasts: `409
    legal_hold`, or `409 not_deletable_now` where the owner may not be told the reason."""
    keys = await service.delete_clip(
        db,
        household_id=household_id,
        clip_id=clip_id,
        actor=actor_of(user),
        ctx=ctx,
        now=clock.now(),
    )
    await db.commit()  # the tombstone and its audit event land before the objects go
    await service.remove_objects(store, keys)
