"""Clip pages: one day's timeline in the household's time zone, and the player.

The video, its thumbnail and the download are served by the JSON API
(clips/playback_router.py), same-origin with the session cookie, so every view of
footage is audited in one place; these pages only point at those URLs.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select
from starlette.responses import Response

from doorwarden.accounts.service import actor_of
from doorwarden.clips import service
from doorwarden.clips.models import Clip, ClipHold, ClipStatus
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    StoreDep,
    UserDep,
    authorize,
    household_resource,
)
from doorwarden.devices import service as devices
from doorwarden.devices.models import Device
from doorwarden.errors import Conflict, NotFound
from doorwarden.households import service as households
from doorwarden.households.models import Household
from doorwarden.policy import Action, HouseholdResource, Principal, can
from doorwarden.web.forms import discard, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

DONE_MESSAGES = {"deleted": "Clip deleted for good."}
# A doorbell records tens of events a day; a day with more is shown in part, and says so.
DAY_LIMIT = 300
QUICK_LABELS = ("motion", "person")
# The labels an agent writes (motion, person, or an ONNX model's class names).
LABEL = re.compile(r"^[a-z0-9_-]{1,32}$")
Confirm = Annotated[str, Form(max_length=8)]
# Days a page may ask for: the next and previous day, and both midnights in any zone,
# must still be representable (date.max + 1 day is an OverflowError, not an empty page).
FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(9999, 12, 30)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as a UTC interval [start, end). Computed from both midnights, so a
    day with a daylight-saving change is 23 or 25 hours long, as it was lived."""
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


def verified_in(household_id: uuid.UUID) -> Select[Clip]:
    return select(Clip).where(Clip.household_id == household_id, Clip.status == ClipStatus.verified)


@dataclass(frozen=True)
class Filters:
    """What the timeline shows; also builds the links that change one filter."""

    day: date
    camera: uuid.UUID | None = None
    label: str | None = None

    def url(self, household_id: uuid.UUID, **changes: Any) -> str:
        chosen = replace(self, **changes)
        params = {"day": chosen.day.isoformat()}
        if chosen.camera is not None:
            params["camera"] = str(chosen.camera)
        if chosen.label is not None:
            params["label"] = chosen.label
        return f"/households/{household_id}/clips?{urlencode(params)}"


def _parse_filters(today: date, day: str, camera: str, label: str) -> tuple[Filters, list[str]]:
    """The filters asked for; a malformed one falls back to its default and is reported,
    so the page still shows the form to correct it."""
    errors: list[str] = []
    chosen = Filters(day=today)
    if day.strip():
        try:
            asked = date.fromisoformat(day.strip())
        except ValueError:
            errors.append("Day: enter a date as YYYY-MM-DD, e.g. 2026-11-25.")
        else:
            if FIRST_DAY <= asked <= LAST_DAY:
                chosen = replace(chosen, day=asked)
            else:
                errors.append(f"Day: choose a day from {FIRST_DAY} to {LAST_DAY}.")
    if camera.strip():
        try:
            chosen = replace(chosen, camera=uuid.UUID(camera.strip()))
        except ValueError:
            errors.append("Camera: choose one from the list.")
    if label.strip() and label.strip() != "any":
        if LABEL.match(label.strip()):
            chosen = replace(chosen, label=label.strip())
        else:
            errors.append("Label: use a label such as motion or person.")
    return chosen, errors


async def _day_clips(db: AsyncSession, household: Household, chosen: Filters) -> list[Clip]:
    start, end = day_bounds(chosen.day, households.zone_of(household))
    query = verified_in(household.id).where(Clip.start_at >= start, Clip.start_at < end)
    if chosen.camera is not None:
        query = query.where(Clip.device_id == chosen.camera)
    if chosen.label is not None:
        query = query.where(Clip.label_set.contains(f",{chosen.label},", autoescape=True))
    # Newest first; the id breaks ties the same way the player's previous/next links do.
    query = query.order_by(Clip.start_at.desc(), Clip.id.desc()).limit(DAY_LIMIT)
    return list((await db.scalars(query)).all())


@router.get("/households/{household_id}/clips")
async def timeline(
    request: Request,
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_view, household_resource)],
    db: SessionDep,
    clock: ClockDep,
    day: Annotated[str, Query(max_length=32)] = "",
    camera: Annotated[str, Query(max_length=64)] = "",
    label: Annotated[str, Query(max_length=64)] = "",
    done: str | None = None,
) -> Response:
    household = await households.get_household(db, household_id)
    zone = households.zone_of(household)
    today = clock.now().astimezone(zone).date()
    chosen, errors = _parse_filters(today, day, camera, label)
    cameras = await devices.cameras_of(db, household_id)
    if chosen.camera is not None and chosen.camera not in {c.id for c in cameras}:
        # Another household's camera is as unknown as one that never existed.
        raise NotFound("No such camera in this household.")
    clips = await _day_clips(db, household, chosen)
    one_day = timedelta(days=1)
    context = {
        "household": household,
        "zone": zone,
        "filters": chosen,
        "clips": clips,
        "truncated": len(clips) == DAY_LIMIT,
        "camera_names": {c.id: c.name for c in cameras},
        "end_to_end": {c.id for c in clips if _end_to_end(c)},
        "cameras": cameras,
        "quick_labels": QUICK_LABELS,
        "previous_day": chosen.url(household_id, day=chosen.day - one_day),
        # Cameras do not record tomorrow: no link into the future.
        "next_day": chosen.url(household_id, day=chosen.day + one_day)
        if chosen.day < today
        else None,
        "today": chosen.url(household_id, day=today) if chosen.day != today else None,
        "label_links": [
            (name, chosen.url(household_id, label=value), chosen.label == value)
            for name, value in [("Any", None)] + [(q.title(), q) for q in QUICK_LABELS]
        ],
        "error": " ".join(errors) or None,
        "done": DONE_MESSAGES.get(done or ""),
    }
    return render(request, "clips/index.html", context, status_code=400 if errors else 200)


async def _neighbours(
    db: AsyncSession, clip: Clip, zone: ZoneInfo
) -> tuple[Clip | None, Clip | None]:
    """The clips just before and just after this one on its local day, any camera."""
    start, end = day_bounds(clip.start_at.astimezone(zone).date(), zone)
    day = verified_in(clip.household_id).where(Clip.start_at >= start, Clip.start_at < end)
    same_start = Clip.start_at == clip.start_at
    older = day.where(
        or_(Clip.start_at < clip.start_at, and_(same_start, Clip.id < clip.id))
    ).order_by(Clip.start_at.desc(), Clip.id.desc())
    newer = day.where(
        or_(Clip.start_at > clip.start_at, and_(same_start, Clip.id > clip.id))
    ).order_by(Clip.start_at, Clip.id)
    return await db.scalar(older.limit(1)), await db.scalar(newer.limit(1))


def _end_to_end(clip: Clip) -> bool:
    """Sealed only for the members' own keys: the server can show neither video nor
    thumbnail, so the pages say how to open it instead of showing a broken player."""
    try:
        return bool(json.loads(clip.manifest)["manifest"]["mode"] == "e2e")
    except (ValueError, KeyError, TypeError):
        return False


def _recorded_as(clip: Clip) -> str | None:
    """Codec and size from the signed manifest, for the details list."""
    try:
        facts = json.loads(clip.manifest)["manifest"]
        return f"{facts['codec']}, {facts['width']} x {facts['height']}"
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class HoldMark:
    until: datetime | None  # None: until released


async def visible_hold(db: AsyncSession, clip_id: uuid.UUID, now: datetime) -> HoldMark | None:
    """The legal hold its owner may know of (a court's non-disclosure order hides one
    until it ends), with the latest end of those in force."""
    query = select(ClipHold.expires_at).where(
        ClipHold.clip_id == clip_id,
        service.active_holds(now),
        or_(ClipHold.hidden_until.is_(None), ClipHold.hidden_until <= now),
    )
    ends = (await db.scalars(query)).all()
    if not ends:
        return None
    return HoldMark(None if any(e is None for e in ends) else max(e for e in ends if e))


async def _player_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    now: datetime,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    household = await households.get_household(db, household_id)
    clip = await service.verified_clip(db, household_id, clip_id)
    zone = households.zone_of(household)
    camera = await db.get(Device, clip.device_id)
    older, newer = await _neighbours(db, clip, zone)
    api = f"/api/v1/households/{household_id}/clips/{clip_id}"
    e2e = _end_to_end(clip)
    context = {
        "household": household,
        "zone": zone,
        "clip": clip,
        "camera_name": camera.name if camera is not None else "A removed camera",
        "older": older,
        "newer": newer,
        "video_url": f"{api}/video",
        "thumbnail_url": f"{api}/thumbnail" if clip.thumbnail_key and not e2e else None,
        "end_to_end": e2e,
        "sealed_url": f"{api}/sealed",
        "download_url": f"{api}/download",
        "day_url": Filters(day=clip.start_at.astimezone(zone).date()).url(household_id),
        "recorded_as": _recorded_as(clip),
        "can_delete": can(principal, Action.clip_delete, HouseholdResource(household_id)),
        "can_download": can(principal, Action.clip_download, HouseholdResource(household_id)),
        "hold": await visible_hold(db, clip.id, now),
        **extra,
    }
    return render(request, "clips/player.html", context, status_code=status_code)


@router.get("/households/{household_id}/clips/{clip_id}")
async def player(
    request: Request,
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.clip_view, household_resource)],
    db: SessionDep,
    clock: ClockDep,
) -> Response:
    return await _player_page(request, db, principal, household_id, clip_id, clock.now())


@router.post("/households/{household_id}/clips/{clip_id}/delete")
async def delete_clip(
    request: Request,
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.clip_delete, household_resource)],
    user: UserDep,
    db: SessionDep,
    store: StoreDep,
    ctx: ContextDep,
    clock: ClockDep,
    confirm: Confirm = "",
) -> Response:
    """The first post asks "for good?" on the player page; the second (confirm=yes)
    deletes. A refusal (a legal hold, or a clip that cannot be deleted at the moment, whose
    reason a court's order keeps from the owner) is shown on the player page."""
    if confirm != "yes":
        return await _player_page(
            request, db, principal, household_id, clip_id, clock.now(), confirming=True
        )
    clip = await service.verified_clip(db, household_id, clip_id)
    household = await households.get_household(db, household_id)
    day = clip.start_at.astimezone(households.zone_of(household))
    try:
        keys = await service.delete_clip(
            db,
            household_id=household_id,
            clip_id=clip_id,
            actor=actor_of(user),
            ctx=ctx,
            now=clock.now(),
        )
    except Conflict as exc:
        await discard(db, user)
        return await _player_page(
            request,
            db,
            principal,
            household_id,
            clip_id,
            clock.now(),
            status_code=exc.status_code,
            delete_error=exc.message,
        )
    await db.commit()  # the tombstone and its audit event land before the objects go
    await service.remove_objects(store, keys)
    return see_other(Filters(day=day.date()).url(household_id) + "&done=deleted")
