"""What a member's browser needs to open an end-to-end clip itself (static/e2e/clips.js):
the signed manifest, the camera's public key, the manifest of the clip before it in the
camera's chain, and the sealed bytes as the camera uploaded them.

The server cannot open these clips; it hands over ciphertext and the page checks
everything `doorwarden verify` checks. The predecessor is handed over whole (its signed
manifest, not just a hash the server states), so the page hashes and verifies it itself;
only a deleted predecessor is known by the hash its tombstone kept. Fetching the sealed
clip is a viewing, audited exactly as the plaintext route's (one event per viewing).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.tags import Tag
from doorwarden.clips import service
from doorwarden.clips.models import Clip, ClipStatus
from doorwarden.clips.playback import PRIVATE, audit_clip_access, parse_range
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
from doorwarden.devices.models import Device
from doorwarden.errors import DomainError, NotFound
from doorwarden.policy import Action, Principal
from doorwarden.storage.base import ObjectNotFound

router = APIRouter(prefix="/api/v1/households/{household_id}/clips", tags=["clips"])


class NotEndToEnd(DomainError):
    """A standard clip plays from /video; its sealed form is the /sealed archive."""

    status_code = 409
    code = "not_end_to_end"


def _mode(clip: Clip) -> str | None:
    try:
        mode = json.loads(clip.manifest)["manifest"]["mode"]
    except (ValueError, KeyError, TypeError):
        return None
    return mode if isinstance(mode, str) else None


async def _e2e_clip(db: AsyncSession, household_id: uuid.UUID, clip_id: uuid.UUID) -> Clip:
    clip = await service.verified_clip(db, household_id, clip_id)
    if _mode(clip) != "e2e":
        raise NotEndToEnd("This clip is not end-to-end encrypted: play it from /video.")
    return clip


async def _predecessor(db: AsyncSession, clip: Clip) -> dict[str, Any] | None:
    """The clip before this one in its camera's chain, in this household: its signed
    manifest while it is stored, only its hash once deleted (a tombstone); None when the
    server has no record of it (a gap) or the clip starts the chain."""
    if clip.sequence == 0:
        return None
    before = await db.scalar(
        select(Clip).where(
            Clip.device_id == clip.device_id,
            Clip.household_id == clip.household_id,
            Clip.sequence == clip.sequence - 1,
        )
    )
    if before is None or before.status is ClipStatus.receiving:
        return None
    deleted = before.status is ClipStatus.deleted
    return {
        "sequence": before.sequence,
        "deleted": deleted,
        "signed_manifest": None if deleted else before.manifest,
        "digest": before.digest,
    }


@router.get("/{clip_id}/e2e")
async def e2e_clip_facts(
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_view, household_resource)],
    db: SessionDep,
) -> Response:
    """Everything but the bytes: the page verifies all of it before it trusts any."""
    clip = await _e2e_clip(db, household_id, clip_id)
    device = await db.get(Device, clip.device_id)
    if device is None:
        raise NotFound("No such clip.")
    api = f"/api/v1/households/{household_id}/clips/{clip_id}"
    body = {
        "clip_id": str(clip.id),
        "sequence": clip.sequence,
        # The text exactly as stored (canonical JSON): the page parses it itself.
        "signed_manifest": clip.manifest,
        "device": {"id": str(device.id), "name": device.name, "public_key": device.public_key},
        "predecessor": await _predecessor(db, clip),
        "ciphertext_url": f"{api}/ciphertext",
        "thumbnail_url": f"{api}/sealed-thumbnail" if clip.thumbnail_key else None,
    }
    return Response(json.dumps(body), media_type="application/json", headers=PRIVATE)


@router.get("/{clip_id}/ciphertext", response_class=StreamingResponse)
async def e2e_ciphertext(
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
    """The sealed clip (DWS1) as the camera uploaded it, with Range support (a page can
    fetch single chunks to seek). One viewing is one `clip:view` event, as for /video."""
    clip = await _e2e_clip(db, household_id, clip_id)
    if not await store.exists(clip.object_key):  # before the headers go, not mid-stream
        raise NotFound("This clip's video is missing from storage.")
    size = clip.ciphertext_size
    wanted = parse_range(request.headers.get("range"), size)
    start, end = wanted or (0, size)
    now = clock.now()
    window = timedelta(minutes=settings.clip_view_audit_window_minutes)
    if not await service.viewing_on_record(
        db, clip=clip, user_id=user.id, client_address=ctx.client_address, since=now - window
    ):
        audit_clip_access(db, Tag.clip_view, user, clip, ctx, occurred_at=now, form="end-to-end")
    headers = {**PRIVATE, "Accept-Ranges": "bytes", "Content-Length": str(end - start)}
    code = status.HTTP_200_OK
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        code = status.HTTP_206_PARTIAL_CONTENT
    return StreamingResponse(
        store.stream(clip.object_key, start, end),
        status_code=code,
        media_type="application/octet-stream",
        headers=headers,
    )


@router.get("/{clip_id}/sealed-thumbnail", response_class=Response)
async def e2e_sealed_thumbnail(
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_view, household_resource)],
    user: UserDep,
    db: SessionDep,
    store: StoreDep,
    ctx: ContextDep,
) -> Response:
    """The sealed thumbnail; the page opens it with the clip key it unwrapped."""
    clip = await _e2e_clip(db, household_id, clip_id)
    if clip.thumbnail_key is None:
        raise NotFound("This clip has no thumbnail.")
    try:
        sealed = await store.get_range(clip.thumbnail_key, 0, clip.thumbnail_size)
    except ObjectNotFound:
        raise NotFound("This clip's thumbnail is missing from storage.") from None
    audit_clip_access(db, Tag.clip_thumbnail_view, user, clip, ctx, form="end-to-end")
    return Response(sealed, media_type="application/octet-stream", headers=PRIVATE)
