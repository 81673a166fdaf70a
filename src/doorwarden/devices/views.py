"""The Cameras page: a household's cameras with their status and newest event, its plan,
integrity alerts for owners, pairing a new camera and removing one.

A pairing code is shown in the answer to the POST that made it, not after a redirect:
only its hash is stored, so there is no later GET that could show it again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.agencies.governance import service as governance
from doorwarden.clips.models import AlertKind, Clip, ClipStatus, IntegrityAlert
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    LiveHubDep,
    SessionDep,
    SettingsDep,
    UserDep,
    authorize,
    household_resource,
)
from doorwarden.devices import health, service
from doorwarden.devices.keys import members_without_key
from doorwarden.devices.models import Device, Encryption, PlanKind
from doorwarden.devices.schemas import EncryptionIn, HealthOut, PlanIn
from doorwarden.errors import DomainError, InvalidInput, NotFound
from doorwarden.households import service as households
from doorwarden.live import service as live
from doorwarden.policy import Action, HouseholdResource, Principal, can
from doorwarden.web.forms import discard, failure, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

DONE_MESSAGES = {
    "plan": "Plan saved. Cameras learn it on their next call to the server.",
    "removed": "Camera removed: it can no longer upload. Its clips stay.",
    "programme": "Saved where the camera came from. It grants the agency nothing.",
    "e2e": "End-to-end is on: cameras seal new clips to the members' keys from their next clip on.",
    "standard": "Standard encryption is on: new clips are readable by this server again.",
}
# The encryption page (docs/e2e.md, "What the server sees"): shown before a switch.
SERVER_SEES = (
    ("When each clip starts and ends, its duration", True,
     "the timeline, retention and notification times need it"),
    ("Which camera recorded it", True, "the camera signs each clip; the list groups by camera"),
    ("Labels (motion, person, doorbell) and the motion score", True,
     "events, notification text and filters are made from them"),
    ("Sizes of clips and who watched what", True, "storage limits and your audit trail"),
    ("Video frames and audio", False, "sealed on the camera to the members' keys"),
    ("Thumbnails", False, "sealed with the clip: the server never makes or keeps a picture"),
    ("Live view", False, "encrypted by the camera; the relay forwards what it cannot read"),
    ("Your private keys", False, "made and kept in your browser; backups are encrypted first"),
)  # fmt: skip
TRADE_OFFS = (
    "Notifications say what happened and when, without a picture.",
    "No search of what is in the video on the server: find clips by time, camera and label.",
    "Clips and live view open only in a browser that holds your key (unlock it with your "
    "passkey or recovery passphrase, or approve a new device from one that has it).",
    "If every member loses their key and its backups, the clips cannot be recovered by "
    "anyone, this server included.",
    "The server cannot hand over footage it cannot read: a request for it goes to you.",
)

# last_seen_at is refreshed at most once a minute (devices.service.authenticate), so a
# camera in touch with the server is never more than a minute stale: allow two. It is
# only as good as the agent's calls: a camera that has nothing to upload and sends no
# heartbeat reads as offline.
ONLINE_WINDOW = timedelta(minutes=2)
ALERTS_SHOWN = 20
PLAN_KINDS = {
    PlanKind.recording: "Record clips",
    PlanKind.live_only: "Live view only (doorbell presses kept a day)",
}
Confirm = Annotated[str, Form(max_length=8)]


@dataclass(frozen=True)
class CameraRow:
    device: Device
    online: bool
    newest: Clip | None  # its newest verified clip: the last event the household can see
    # Its latest health report (devices/health.py): shown to those who see integrity alerts.
    health: HealthOut | None = None


@dataclass(frozen=True)
class AlertRow:
    alert: IntegrityAlert
    headline: str


def alert_headline(alert: IntegrityAlert, camera: str) -> str:
    """One sentence an owner can act on; the alert's own detail follows it on the page."""
    seq = alert.sequence
    if alert.kind is AlertKind.gap:
        first = alert.extra.get("missing_from", seq)
        last = alert.extra.get("missing_to", seq)
        if first == last:
            return f"Clip {first} from {camera} never arrived"
        return f"Clips {first}..{last} from {camera} never arrived"
    if alert.kind is AlertKind.fork:
        return f"{camera} sent a second, different clip {seq} (a fork); it was refused"
    if alert.kind is AlertKind.broken_link:
        return f"Clip {seq} from {camera} does not follow the clip before it; it was refused"
    if alert.kind is AlertKind.bad_signature:
        return f"Clip {seq} claimed to be from {camera} but was not signed by it; it was refused"
    if alert.kind in HEALTH_KINDS:
        return _health_headline(alert, camera)
    return f"Clip {seq} from {camera} did not match its signed manifest; the data was refused"


# Alerts from a camera's own health report: not tampering, clips the owner may lose.
HEALTH_KINDS = frozenset({AlertKind.camera_disk_full, AlertKind.clip_held, AlertKind.clips_evicted})
RETRY_HINT = "run `doorwarden agent retry {seq}` on the camera's computer to send it again"


def _health_headline(alert: IntegrityAlert, camera: str) -> str:
    seq = alert.sequence
    if alert.kind is AlertKind.camera_disk_full:
        return f"The disk of {camera} is full: clips it has not sent yet may be deleted"
    if alert.kind is AlertKind.clip_held:
        hint = RETRY_HINT.format(seq=seq)
        return f"{camera} holds clip {seq} back and will not send it on its own; {hint}"
    first, last = alert.extra.get("first"), alert.extra.get("last")
    count = alert.extra.get("count", 1)
    which = f"{count} clip(s) not yet sent"
    if first is not None and last is not None:
        which += f" ({first})" if first == last else f" ({first}..{last})"
    return f"{camera} deleted {which} to make room; they are lost"


async def _newest_clip(db: AsyncSession, device_id: uuid.UUID) -> Clip | None:
    # Highest sequence number: the camera's chain order, served by (device_id, sequence).
    query = (
        select(Clip)
        .where(Clip.device_id == device_id, Clip.status == ClipStatus.verified)
        .order_by(Clip.sequence.desc())
        .limit(1)
    )
    return await db.scalar(query)


async def _alerts(
    db: AsyncSession, household_id: uuid.UUID, names: dict[uuid.UUID, str]
) -> list[AlertRow]:
    query = (
        select(IntegrityAlert)
        .where(IntegrityAlert.household_id == household_id)
        .order_by(IntegrityAlert.created_at.desc())
        .limit(ALERTS_SHOWN)
    )
    return [
        AlertRow(a, alert_headline(a, names.get(a.device_id, "a removed camera")))
        for a in (await db.scalars(query)).all()
    ]


def _online(device: Device, now: datetime) -> bool:
    return device.last_seen_at is not None and now - device.last_seen_at <= ONLINE_WINDOW


async def _cameras_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    household_id: uuid.UUID,
    now: datetime,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    household = await households.get_household(db, household_id)
    every_camera = await service.cameras_of(db, household_id)
    paired = [d for d in every_camera if d.revoked_at is None]
    resource = HouseholdResource(household_id)
    may_read_alerts = can(principal, Action.integrity_alert_read, resource)
    # What a camera holds back and why: the same people who see its integrity alerts.
    reports = await health.health_of(db, [d.id for d in paired]) if may_read_alerts else {}
    rows = [
        CameraRow(d, _online(d, now), await _newest_clip(db, d.id), reports.get(d.id))
        for d in paired
    ]
    context = {
        "household": household,
        "zone": households.zone_of(household),
        "cameras": rows,
        "camera_reports": may_read_alerts and any(row.health for row in rows),
        "plan": await service.plan_of(db, household_id),
        "plan_kinds": PLAN_KINDS,
        "alerts": (
            await _alerts(db, household_id, {d.id: d.name for d in every_camera})
            if may_read_alerts
            else []
        ),
        "can_manage": can(principal, Action.device_manage, resource),
        # A link per camera to its settings page (devices/settings/views.py): owners only.
        "can_settings": can(principal, Action.camera_settings, resource),
        "can_update": can(principal, Action.household_update, resource),
        "programmes": await governance.programme_choices(db),
        "programme_of": await governance.programme_marks(db, [d.id for d in paired]),
        # When someone last talked through each camera (live/talk.py; from the audit trail).
        "last_talk": await live.last_talks(
            db, household_id=household_id, device_ids=[d.id for d in paired]
        ),
        **extra,
    }
    return render(request, "cameras/index.html", context, status_code=status_code)


@router.get("/households/{household_id}/cameras")
async def cameras(
    request: Request,
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_read, household_resource)],
    db: SessionDep,
    clock: ClockDep,
    done: str | None = None,
) -> Response:
    return await _cameras_page(
        request, db, principal, household_id, clock.now(), done=DONE_MESSAGES.get(done or "")
    )


@router.post("/households/{household_id}/cameras/pairing-codes")
async def create_pairing_code(
    request: Request,
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.device_manage, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    row, code = await service.create_pairing_code(
        db, household_id=household_id, user=user, ctx=ctx, now=clock.now()
    )
    command = f"doorwarden agent pair --server {settings.public_base_url} --code {code}"
    pairing = {"code": code, "expires_at": row.expires_at, "command": command}
    return await _cameras_page(request, db, principal, household_id, clock.now(), pairing=pairing)


@router.post("/households/{household_id}/plan")
async def update_plan(
    request: Request,
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_update, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
    kind: Annotated[str, Form(max_length=32)] = "",
    retention_days: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        body = PlanIn.model_validate({"kind": kind, "retention_days": retention_days or 30})
        await service.set_plan(
            db,
            household_id=household_id,
            kind=body.kind,
            retention_days=body.retention_days,
            user=user,
            ctx=ctx,
        )
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc)
        now = clock.now()
        return await _cameras_page(
            request, db, principal, household_id, now, status_code=status, plan_error=message
        )
    return see_other(f"/households/{household_id}/cameras?done=plan#plan")


@router.post("/households/{household_id}/cameras/{device_id}/remove")
async def remove_camera(
    request: Request,
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.device_manage, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
    live_hub: LiveHubDep,
    confirm: Confirm = "",
) -> Response:
    """The first post asks for confirmation; the second (confirm=yes) unpairs the camera:
    its token stops working at once, its clips stay."""
    if confirm != "yes":
        device = await db.get(Device, device_id)
        # Another household's camera is reported as missing, as the service does.
        if device is None or device.household_id != household_id or device.revoked_at:
            raise NotFound("No such camera.")
        household = await households.get_household(db, household_id)
        return render(request, "cameras/remove.html", {"household": household, "device": device})
    await service.revoke(
        db, household_id=household_id, device_id=device_id, user=user, ctx=ctx, now=clock.now()
    )
    await db.commit()  # revoked before its live connection is cut: it cannot come back
    await live_hub.disconnect(device_id)
    return see_other(f"/households/{household_id}/cameras?done=removed")


@router.post("/households/{household_id}/cameras/{device_id}/programme")
async def set_programme(
    request: Request,
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.device_manage, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
    programme_id: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    """The owner says which agency programme the camera came from (or none): a public
    count, and nothing else: no consent, no sharing, no access follows from it."""
    device = await db.get(Device, device_id)
    if device is None or device.household_id != household_id or device.revoked_at:
        raise NotFound("No such camera.")
    try:
        try:
            chosen = uuid.UUID(programme_id) if programme_id.strip() else None
        except ValueError:
            raise InvalidInput("Choose a programme from the list, or none.") from None
        await governance.set_enrolment(
            db, device=device, programme_id=chosen, actor=user, ctx=ctx, now=clock.now()
        )
    except DomainError as exc:
        await discard(db, user)
        return await _cameras_page(
            request,
            db,
            principal,
            household_id,
            clock.now(),
            status_code=exc.status_code,
            programme_error=exc.message,
        )
    return see_other(f"/households/{household_id}/cameras?done=programme#cameras")


async def _encryption_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    household_id: uuid.UUID,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    household = await households.get_household(db, household_id)
    plan = await service.plan_of(db, household_id)
    context = {
        "household": household,
        "e2e": plan.encryption is Encryption.e2e,
        "server_sees": SERVER_SEES,
        "trade_offs": TRADE_OFFS,
        "without_key": await members_without_key(db, household_id),
        "can_update": can(principal, Action.household_update, HouseholdResource(household_id)),
        **extra,
    }
    return render(request, "households/encryption.html", context, status_code=status_code)


@router.get("/households/{household_id}/encryption")
async def encryption(
    request: Request,
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_read, household_resource)],
    db: SessionDep,
    done: str | None = None,
) -> Response:
    """How this household's clips are encrypted, what the server still sees in
    end-to-end mode, who has no key yet; the owner switches here."""
    return await _encryption_page(
        request, db, principal, household_id, done=DONE_MESSAGES.get(done or "")
    )


@router.post("/households/{household_id}/encryption")
async def switch_encryption(
    request: Request,
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_update, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    mode: Annotated[str, Form(max_length=16)] = "",
    confirm: Confirm = "",
) -> Response:
    """Switch only with the box ticked: the page lists what changes first."""
    try:
        body = EncryptionIn.model_validate({"mode": mode})
        if confirm != "yes":
            raise InvalidInput("Tick the box to confirm that you have read what changes.")
        await service.set_encryption(
            db, household_id=household_id, mode=body.mode, user=user, ctx=ctx
        )
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc)
        return await _encryption_page(
            request, db, principal, household_id, status_code=status, error=message
        )
    return see_other(f"/households/{household_id}/encryption?done={body.mode.value}")
