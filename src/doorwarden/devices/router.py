"""Cameras API: pairing codes and the camera list for owners; pairing and self-state
for the cameras themselves."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.config import Settings
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    DeviceDep,
    LiveHubDep,
    SessionDep,
    SettingsDep,
    UserDep,
    authorize,
    household_resource,
)
from doorwarden.devices import service
from doorwarden.devices.keys import recipient_json, recipients, set_member_key
from doorwarden.devices.models import Device, MemberKey
from doorwarden.devices.schemas import (
    DeviceOut,
    DeviceStateOut,
    EncryptionIn,
    MemberKeyIn,
    MemberKeyOut,
    PairIn,
    PairingCodeOut,
    PairOut,
    PlanIn,
    PlanOut,
    RecipientOut,
)
from doorwarden.errors import NotFound
from doorwarden.policy import Action, Principal

router = APIRouter(tags=["cameras"])


async def _state(
    db: AsyncSession, settings: Settings, device: Device, now: datetime
) -> DeviceStateOut:
    mode, keys = await recipients(
        db, settings.secret_key.get_secret_value(), device.household_id, now
    )
    plan = await service.plan_of(db, device.household_id)
    return DeviceStateOut(
        device_id=device.id,
        household_id=device.household_id,
        name=device.name,
        mode=mode.value,
        recipients=[RecipientOut(**recipient_json(public)) for public in keys],
        plan=PlanOut.model_validate(plan),
        last_sequence=device.last_sequence,
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
    _p: Annotated[Principal, authorize(Action.household_read, household_resource)],
    db: SessionDep,
) -> list[DeviceOut]:
    return [DeviceOut.model_validate(d) for d in await service.list_devices(db, household_id)]


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
) -> PairOut:
    """Called by `doorwarden agent pair`: redeem a pairing code with the camera's key."""
    device, token = await service.pair(
        db, code=body.code, name=body.name, public_key=body.public_key, ctx=ctx, now=clock.now()
    )
    state = await _state(db, settings, device, clock.now())
    return PairOut(**state.model_dump(), token=token)


@router.get("/api/v1/device", response_model=DeviceStateOut)
async def device_state(
    _p: Annotated[Principal, authorize(Action.device_self)],
    device: DeviceDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> DeviceStateOut:
    """The calling camera's household key, plan and chain head."""
    return await _state(db, settings, device, clock.now())


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
    """live_only: nothing is stored (cameras stop uploading); recording: clips are kept
    for retention_days, then deleted unless under a legal hold."""
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
) -> MemberKeyOut:
    """Your own X25519 public key (`doorwarden keys new` prints it): end-to-end clips of
    your households are wrapped to it. The private key stays with you."""
    row = await set_member_key(db, user=user, public_key=body.public_key, ctx=ctx, now=clock.now())
    return MemberKeyOut.of(row.public_key, row.created_at)


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
