"""Cameras API: pairing codes and the camera list for owners; pairing and self-state
for the cameras themselves."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.log import LogSigner
from doorwarden.clips.alerts import raise_health_alerts
from doorwarden.config import Settings
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    DeviceDep,
    LiveHubDep,
    SessionDep,
    SettingsDep,
    SignerDep,
    UserDep,
    authorize,
    household_resource,
    parse_or_422,
    read_bounded,
)
from doorwarden.devices import health, member_push, service
from doorwarden.devices.delivered_sets import note_delivered
from doorwarden.devices.keys import (
    recipient_json,
    recipients,
    set_member_key,
    signed_member_set,
)
from doorwarden.devices.models import Device, Encryption, MemberKey
from doorwarden.devices.schemas import (
    HEALTH_MAX_BYTES,
    DeviceOut,
    DeviceStateOut,
    EncryptionIn,
    HealthIn,
    HealthOut,
    MemberKeyIn,
    MemberKeyOut,
    PairIn,
    PairingCodeOut,
    PairOut,
    PlanIn,
    PlanOut,
    RecipientOut,
    SignedMemberSetOut,
)
from doorwarden.devices.settings import push as settings_push
from doorwarden.errors import NotFound
from doorwarden.policy import Action, HouseholdResource, Principal, can

router = APIRouter(tags=["cameras"])


async def _state(
    db: AsyncSession, settings: Settings, device: Device, now: datetime, signer: LogSigner
) -> DeviceStateOut:
    mode, keys = await recipients(
        db, settings.secret_key.get_secret_value(), device.household_id, now
    )
    plan = await service.plan_of(db, device.household_id)
    if mode is Encryption.e2e:  # what this camera may seal to from now: clips/ingest.py
        await note_delivered(db, device.id, keys, now)
    document, signature = signed_member_set(signer.private, device, mode, keys, now)
    return DeviceStateOut(
        device_id=device.id,
        household_id=device.household_id,
        name=device.name,
        mode=mode.value,
        recipients=[RecipientOut(**recipient_json(public)) for public in keys],
        plan=PlanOut.model_validate(plan),
        last_sequence=device.last_sequence,
        settings_key=settings_push.settings_key(signer),
        member_set=SignedMemberSetOut(document=document, signature=signature),
    )


@router.post(
    "/api/v1/households/{household_id}/pairing-codes",
    status_code=status.HTTP_201_CREATED,
    response_model=PairingCodeOut,
)
async def create_pairing_code(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.device_manage, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> PairingCodeOut:
    """A one-time code (valid 10 minutes) that pairs one camera to this household."""
    row, code = await service.create_pairing_code(
        db, household_id=household_id, user=user, ctx=ctx, now=clock.now()
    )
    return PairingCodeOut(code=code, expires_at=row.expires_at)


@router.get("/api/v1/households/{household_id}/devices", response_model=list[DeviceOut])
async def list_devices(
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_read, household_resource)],
    db: SessionDep,
) -> list[DeviceOut]:
    """The household's cameras; for its owners, each camera's latest health report too."""
    devices = await service.list_devices(db, household_id)
    reports: dict[uuid.UUID, HealthOut] = {}
    # What a camera holds back and why is the integrity alerts' business: the same rule.
    if can(principal, Action.integrity_alert_read, HouseholdResource(household_id)):
        reports = await health.health_of(db, [d.id for d in devices])
    return [
        DeviceOut.model_validate(d).model_copy(update={"health": reports.get(d.id)})
        for d in devices
    ]


@router.delete(
    "/api/v1/households/{household_id}/devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def revoke_device(
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.device_manage, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
    live_hub: LiveHubDep,
) -> None:
    """Unpair a camera: its token stops working at once; its clips stay."""
    await service.revoke(
        db, household_id=household_id, device_id=device_id, user=user, ctx=ctx, now=clock.now()
    )
    await db.commit()  # revoked before its live connection is cut: it cannot come back
    await live_hub.disconnect(device_id)


@router.post("/api/v1/devices/pair", status_code=status.HTTP_201_CREATED, response_model=PairOut)
async def pair_device(
    body: PairIn,
    _p: Annotated[Principal, authorize(Action.device_pair)],
    db: SessionDep,
    settings: SettingsDep,
    ctx: ContextDep,
    clock: ClockDep,
    signer: SignerDep,
) -> PairOut:
    """Called by `doorwarden agent pair`: redeem a pairing code with the camera's key."""
    device, token = await service.pair(
        db, code=body.code, name=body.name, public_key=body.public_key, ctx=ctx, now=clock.now()
    )
    state = await _state(db, settings, device, clock.now(), signer)
    return PairOut(**state.model_dump(), token=token)


@router.get("/api/v1/device", response_model=DeviceStateOut)
async def device_state(
    _p: Annotated[Principal, authorize(Action.device_self)],
    device: DeviceDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    signer: SignerDep,
) -> DeviceStateOut:
    """The calling camera's household key, plan and chain head, and the key its settings
    are signed with."""
    return await _state(db, settings, device, clock.now(), signer)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its $defs written in place, for openapi_extra (whose
    references would otherwise point into the OpenAPI document, where they are not)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return resolve(defs[node["$ref"].rsplit("/", 1)[-1]]) | resolve(rest)
        return {k: resolve(v) for k, v in node.items()}

    return dict(resolve(schema))


@router.put(
    "/api/v1/device/health",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(HealthIn.model_json_schema())}},
        }
    },
)
async def report_health(
    request: Request,
    _p: Annotated[Principal, authorize(Action.device_self)],
    device: DeviceDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> None:
    """The calling camera's health: its spool's disk, and the clips it holds back, defers
    or evicted. The latest report is kept; each new fact is an alert for the owners.
    Read here rather than as a body parameter: its own limit (64 KiB, 413) and strict
    JSON, checked after the token."""
    report = parse_or_422(
        health.parse, await read_bounded(request, HEALTH_MAX_BYTES, "A health report")
    )
    facts = await health.record_report(db, device=device, report=report, now=clock.now())
    await raise_health_alerts(db, device=device, facts=facts, ctx=ctx)


@router.get("/api/v1/households/{household_id}/plan", response_model=PlanOut)
async def get_plan(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_read, household_resource)],
    db: SessionDep,
) -> PlanOut:
    return PlanOut.model_validate(await service.plan_of(db, household_id))


@router.put("/api/v1/households/{household_id}/plan", response_model=PlanOut)
async def set_plan(
    household_id: uuid.UUID,
    body: PlanIn,
    _p: Annotated[Principal, authorize(Action.household_update, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> PlanOut:
    """live_only: only doorbell-press clips are stored, for a day (cameras upload nothing
    else); recording: clips are kept for retention_days, then deleted unless under a legal
    hold."""
    plan = await service.set_plan(
        db,
        household_id=household_id,
        kind=body.kind,
        retention_days=body.retention_days,
        user=user,
        ctx=ctx,
    )
    return PlanOut.model_validate(plan)


@router.put("/api/v1/account/e2e-key", response_model=MemberKeyOut)
async def register_member_key(
    body: MemberKeyIn,
    _p: Annotated[Principal, authorize(Action.account_security)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
    live_hub: LiveHubDep,
) -> MemberKeyOut:
    """Your own X25519 public key (`doorwarden keys new` prints it): end-to-end clips of
    your households are wrapped to it. The private key stays with you. Your households'
    connected cameras are told to fetch their member set now (devices/member_push.py)."""
    row = await set_member_key(db, user=user, public_key=body.public_key, ctx=ctx, now=clock.now())
    out = MemberKeyOut.of(row.public_key, row.created_at)
    await db.commit()  # committed before the cameras fetch the new set
    await member_push.nudge(db, live_hub, await member_push.households_of(db, user.id))
    return out


@router.get("/api/v1/account/e2e-key", response_model=MemberKeyOut)
async def get_member_key(
    _p: Annotated[Principal, authorize(Action.account_read)],
    user: UserDep,
    db: SessionDep,
) -> MemberKeyOut:
    row = await db.get(MemberKey, user.id)
    if row is None:
        raise NotFound("No key registered.")
    return MemberKeyOut.of(row.public_key, row.created_at)


@router.put("/api/v1/households/{household_id}/encryption", response_model=PlanOut)
async def set_encryption(
    household_id: uuid.UUID,
    body: EncryptionIn,
    _p: Annotated[Principal, authorize(Action.household_update, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> PlanOut:
    """standard: the server can show clips in the browser; e2e: clips are wrapped only to
    the members' own keys and the server stores what it cannot read. Cameras switch at
    their next contact; stored clips keep their encryption."""
    plan = await service.set_encryption(
        db, household_id=household_id, mode=body.mode, user=user, ctx=ctx
    )
    return PlanOut.model_validate(plan)
