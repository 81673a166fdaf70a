"""What a decision sets in motion, per kind:

* warrant, emergency: a content package with exactly the verified clips of the approved
  cameras that overlap the approved window (an emergency's is provisional, with the
  proof deadline set; a flagged agency's emergency releases nothing until its proof is
  filed, `disclose_when_proven`);
* subpoena: a subscriber package (names, address, account dates), never a clip;
* preservation: holds on those clips until `preservation_days` from now;
* every household named is told what was decided and exactly what left about it, at
  once or, under a court's non-disclosure order, when the order ends (notices.py).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.agencies.models import Agency
from doorwarden.agencies.standing import emergency_waits_for_proof
from doorwarden.audit.log import LogSigner
from doorwarden.audit.service import Actor, RequestContext
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import Clip
from doorwarden.config import Settings
from doorwarden.devices.models import Device
from doorwarden.legal import holds
from doorwarden.legal.disclosure.models import Package, PackageKind
from doorwarden.legal.disclosure.service import build_package
from doorwarden.legal.models import LegalRequest, NoticeKind, RequestKind, RequestStatus, Target
from doorwarden.legal.notices import household_event, notify
from doorwarden.legal.scope import clips_in_window, targets_of
from doorwarden.legal.states import GRANTED
from doorwarden.storage.base import ClipStore


@dataclass(frozen=True)
class Effects:
    """What carrying out a decision needs besides the database."""

    store: ClipStore
    signer: LogSigner
    settings: Settings
    ctx: RequestContext
    now: datetime


async def _camera_names(db: AsyncSession, device_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not device_ids:
        return {}
    rows = await db.execute(select(Device.id, Device.name).where(Device.id.in_(device_ids)))
    return dict(rows.all())


def _clip_lines(clips: Sequence[Clip], names: dict[uuid.UUID, str]) -> str:
    return "\n".join(
        f"- {names.get(c.device_id, 'camera')}: {c.start_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"{c.duration_ms / 1000:.0f} s (clip {c.id})"
        for c in clips
    )


def approved_window(request: LegalRequest) -> tuple[datetime, datetime]:
    if request.approved_start is None or request.approved_end is None:
        raise RuntimeError(f"request {request.id} has no approved window")  # set by the grant
    return request.approved_start, request.approved_end


def _window(request: LegalRequest) -> str:
    start = request.approved_start or request.window_start
    end = request.approved_end or request.window_end
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


async def apply_decision(
    db: AsyncSession, *, request: LegalRequest, actor: Actor, effects: Effects
) -> Package | None:
    agency = await db.get(Agency, request.agency_id)
    assert agency is not None  # noqa: S101 - a foreign key
    targets = await targets_of(db, request.id)
    approved = [t for t in targets if t.approved]
    left_out = {t.household_id for t in targets} - {t.household_id for t in approved}
    heading = f"{agency.name}'s {request.kind} request (case {request.case_number})"
    if left_out:
        why = f" Reason given: {request.decision_reason}" if request.decision_reason else ""
        await notify(
            db,
            request=request,
            household_ids=left_out,
            kind=NoticeKind.decision,
            message=f"{heading} was {request.status}; nothing about your home was disclosed." + why,
            ctx=effects.ctx,
            now=effects.now,
        )
    if request.status not in GRANTED or not approved:
        await holds.release(db, request=request, ctx=effects.ctx, now=effects.now)
        return None
    if request.kind is RequestKind.preservation:
        await _hold(db, request, approved, heading, actor, effects)
        return None
    if request.kind is RequestKind.emergency:
        request.proof_due_at = effects.now + timedelta(hours=effects.settings.emergency_proof_hours)
        if emergency_waits_for_proof(agency):
            await notify(
                db,
                request=request,
                household_ids=sorted({t.household_id for t in approved}),
                kind=NoticeKind.decision,
                message=f"{heading} was {request.status}, but {agency.name} let an earlier "
                "emergency request go unratified, so nothing about your home is disclosed "
                f"until it files its proof (by {request.proof_due_at:%Y-%m-%d %H:%M} UTC). "
                "You will be told exactly what is disclosed, if anything.",
                ctx=effects.ctx,
                now=effects.now,
            )
            return None
    return await _disclose(db, request, approved, heading, actor, effects)


async def disclose_when_proven(
    db: AsyncSession, *, request: LegalRequest, actor: Actor, effects: Effects
) -> Package | None:
    """The disclosure a flagged agency's emergency waited for, once it is ratified (the
    package stays provisional: should its proof fall away, it is revoked)."""
    if request.kind is not RequestKind.emergency or request.status is not RequestStatus.ratified:
        return None
    existing = await db.scalar(select(Package.id).where(Package.request_id == request.id))
    if existing is not None:
        return None  # disclosed at approval already
    approved = [t for t in await targets_of(db, request.id) if t.approved]
    if not approved:
        return None
    agency = await db.get(Agency, request.agency_id)
    assert agency is not None  # noqa: S101 - a foreign key
    heading = f"{agency.name}'s {request.kind} request (case {request.case_number})"
    return await _disclose(db, request, approved, heading, actor, effects)


async def _disclose(
    db: AsyncSession,
    request: LegalRequest,
    approved: Sequence[Target],
    heading: str,
    actor: Actor,
    effects: Effects,
) -> Package:
    households = sorted({t.household_id for t in approved})
    subscriber = request.kind is RequestKind.subpoena
    clips: Sequence[Clip] = []
    if not subscriber:
        clips = await clips_in_window(
            db, sorted({t.device_id for t in approved}), *approved_window(request)
        )
    package = await build_package(
        db,
        request=request,
        kind=PackageKind.subscriber if subscriber else PackageKind.content,
        clips=clips,
        subscriber_households=households if subscriber else [],
        store=effects.store,
        signer=effects.signer,
        settings=effects.settings,
        actor=actor,
        ctx=effects.ctx,
        now=effects.now,
        provisional=request.kind is RequestKind.emergency,
    )
    await tell_disclosure(db, request, package, households, clips, heading, actor, effects)
    return package


async def tell_disclosure(
    db: AsyncSession,
    request: LegalRequest,
    package: Package,
    households: Sequence[uuid.UUID],
    clips: Sequence[Clip],
    heading: str,
    actor: Actor,
    effects: Effects,
    *,
    opening: str | None = None,
) -> None:
    """One disclosure event and one notice per household, naming exactly its clips. The
    notice opens with `opening`, or says how the request was decided."""
    per_household: dict[uuid.UUID, list[Clip]] = defaultdict(list)
    for clip in clips:
        per_household[clip.household_id].append(clip)
    names = await _camera_names(db, {c.device_id for c in clips})
    provisional = (
        " This emergency disclosure is provisional: the agency must prove the emergency "
        "(a warrant or its incident report) in time, or it is recorded as unratified."
        if package.provisional
        else ""
    )
    for household_id in households:
        own = per_household.get(household_id, [])
        household_event(
            db,
            request=request,
            household_id=household_id,
            tag=Tag.legal_disclose,
            actor=actor,
            ctx=effects.ctx,
            now=effects.now,
            target_type="legal_package",
            target_id=package.id,
            extra={"package_kind": str(package.kind), "clips": [str(c.id) for c in own]},
        )
        if package.kind is PackageKind.subscriber:
            what = (
                "your household's name and address, and its members' names and account "
                "dates. No video was disclosed."
            )
        elif own:
            what = f"{len(own)} clip(s) of {_window(request)}:\n{_clip_lines(own, names)}"
        else:
            what = f"nothing: your cameras recorded no clip in {_window(request)}."
        await notify(
            db,
            request=request,
            household_ids=[household_id],
            kind=NoticeKind.disclosure,
            message=f"{opening or f'{heading} was {request.status}.'} Disclosed about your "
            f"home: {what}{provisional}",
            ctx=effects.ctx,
            now=effects.now,
            package_id=package.id,
        )


async def _hold(
    db: AsyncSession,
    request: LegalRequest,
    approved: Sequence[Target],
    heading: str,
    actor: Actor,
    effects: Effects,
) -> None:
    until = effects.now + timedelta(days=effects.settings.preservation_days)
    request.hold_until = until
    clips = await clips_in_window(
        db, sorted({t.device_id for t in approved}), *approved_window(request)
    )
    # The provisional holds placed at filing, confirmed for the approved scope only.
    await holds.confirm(
        db,
        request=request,
        clips=clips,
        until=until,
        created_by=actor.user_id,
        ctx=effects.ctx,
        now=effects.now,
    )
    per_household: dict[uuid.UUID, list[Clip]] = defaultdict(list)
    for clip in clips:
        per_household[clip.household_id].append(clip)
    names = await _camera_names(db, {c.device_id for c in clips})
    for household_id in sorted({t.household_id for t in approved}):
        own = per_household.get(household_id, [])
        household_event(
            db,
            request=request,
            household_id=household_id,
            tag=Tag.legal_hold_place,
            actor=actor,
            ctx=effects.ctx,
            now=effects.now,
            extra={"clips": [str(c.id) for c in own], "until": until.isoformat()},
        )
        held = (
            f"{len(own)} clip(s) are kept until {until:%Y-%m-%d} and cannot be deleted meanwhile "
            f"(nothing is disclosed by a preservation request):\n{_clip_lines(own, names)}"
            if own
            else f"none of your clips fall in {_window(request)}, so none is held."
        )
        await notify(
            db,
            request=request,
            household_ids=[household_id],
            kind=NoticeKind.hold,
            message=f"{heading} was {request.status}. {held}",
            ctx=effects.ctx,
            now=effects.now,
        )
