"""Governance API: operators record municipal approvals (with the approved use policy)
and camera programmes, and set the instance policy; owners say which programme a camera
came from; anyone may read the programmes and approved use policies (they are public
records)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import StreamingResponse

from doorwarden.agencies import service as agencies
from doorwarden.agencies.governance import service
from doorwarden.agencies.governance.models import MunicipalApproval
from doorwarden.agencies.governance.schemas import (
    ApprovalIn,
    ApprovalOut,
    EnrolmentIn,
    PolicyIn,
    PolicyOut,
    ProgrammeIn,
    ProgrammeOut,
)
from doorwarden.agencies.http import parse_json_part, pdf_response, require_upload
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    UserDep,
    agency_resource,
    authorize,
    household_resource,
)
from doorwarden.devices.models import Device
from doorwarden.errors import NotFound
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1", tags=["governance"])


def approval_out(approval: MunicipalApproval) -> ApprovalOut:
    out = ApprovalOut.model_validate(approval)
    out.policy_url = f"/api/v1/approvals/{approval.id}/policy"
    return out


@router.get("/agencies/{agency_id}/approvals", response_model=list[ApprovalOut])
async def list_approvals(
    agency_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.agency_read, agency_resource)],
    db: SessionDep,
) -> list[ApprovalOut]:
    return [approval_out(a) for a in await service.approvals(db, agency_id)]


@router.post(
    "/agencies/{agency_id}/approvals",
    status_code=status.HTTP_201_CREATED,
    response_model=ApprovalOut,
)
async def record_approval(
    agency_id: uuid.UUID,
    details: Annotated[str, Form(description="ApprovalIn as JSON.")],
    policy_document: Annotated[UploadFile, File(description="The approved use policy, a PDF.")],
    _p: Annotated[Principal, authorize(Action.governance_manage, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> ApprovalOut:
    body = parse_json_part(details, ApprovalIn)
    await agencies.get_agency(db, agency_id)
    limit = settings.legal_document_max_bytes
    policy = await require_upload(
        policy_document,
        limit,
        "use policy",
        missing="Send the approved use policy as a PDF (policy_document).",
    )
    approval = await service.record_approval(
        db,
        agency_id=agency_id,
        **body.model_dump(),
        policy=policy,
        store=store,
        max_bytes=limit,
        actor=user,
        ctx=ctx,
        now=clock.now(),
    )
    return approval_out(approval)


@router.post("/agencies/{agency_id}/approvals/{approval_id}/revoke", response_model=ApprovalOut)
async def revoke_approval(
    agency_id: uuid.UUID,
    approval_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.governance_manage, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> ApprovalOut:
    approval = await service.revoke_approval(
        db, agency_id=agency_id, approval_id=approval_id, actor=user, ctx=ctx, now=clock.now()
    )
    return approval_out(approval)


@router.get("/approvals/{approval_id}/policy")
async def approval_policy(
    approval_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.page_public)],
    db: SessionDep,
    store: StoreDep,
) -> StreamingResponse:
    """The use policy a public body approved: a public record."""
    return pdf_response(store, await service.policy_document(db, approval_id))


@router.post(
    "/agencies/{agency_id}/programmes",
    status_code=status.HTTP_201_CREATED,
    response_model=ProgrammeOut,
)
async def create_programme(
    agency_id: uuid.UUID,
    body: ProgrammeIn,
    _p: Annotated[Principal, authorize(Action.governance_manage, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> ProgrammeOut:
    programme = await service.create_programme(
        db, agency_id=agency_id, **body.model_dump(), actor=user, ctx=ctx, now=clock.now()
    )
    return ProgrammeOut.model_validate(programme)


@router.post("/agencies/{agency_id}/programmes/{programme_id}/end", response_model=ProgrammeOut)
async def end_programme(
    agency_id: uuid.UUID,
    programme_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.governance_manage, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> ProgrammeOut:
    programme = await service.end_programme(
        db, agency_id=agency_id, programme_id=programme_id, actor=user, ctx=ctx, now=clock.now()
    )
    return ProgrammeOut.model_validate(programme)


@router.get("/programmes", response_model=list[ProgrammeOut])
async def list_programmes(
    _p: Annotated[Principal, authorize(Action.page_public)], db: SessionDep
) -> list[ProgrammeOut]:
    """Every subsidised-camera programme, with how many cameras are enrolled: public."""
    out = []
    for programme, enrolled in await service.programmes(db):
        item = ProgrammeOut.model_validate(programme)
        item.cameras_enrolled = enrolled
        out.append(item)
    return out


@router.put("/households/{household_id}/devices/{device_id}/programme", response_model=EnrolmentIn)
async def set_programme(
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    body: EnrolmentIn,
    _p: Annotated[Principal, authorize(Action.device_manage, household_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> EnrolmentIn:
    device = await db.get(Device, device_id)
    if device is None or device.household_id != household_id:
        raise NotFound("No such camera.")
    await service.set_enrolment(
        db, device=device, programme_id=body.programme_id, actor=user, ctx=ctx, now=clock.now()
    )
    return body


async def _policy_out(db: SessionDep, settings: SettingsDep) -> PolicyOut:
    row = await service.instance_policy(db)
    return PolicyOut(
        community_requests_enabled=row.community_requests_enabled,
        require_municipal_approval=settings.legal_require_municipal_approval,
        warrant_max_devices=settings.warrant_max_devices,
        warrant_max_hours=settings.warrant_max_hours,
        emergency_max_devices=settings.emergency_max_devices,
        emergency_max_hours=settings.emergency_max_hours,
        emergency_proof_hours=settings.emergency_proof_hours,
        preservation_days=settings.preservation_days,
        community_max_square_miles=settings.community_max_square_miles,
        community_max_hours=settings.community_max_hours,
        updated_at=row.updated_at,
    )


@router.get("/policy", response_model=PolicyOut)
async def read_policy(
    _p: Annotated[Principal, authorize(Action.page_public)], db: SessionDep, settings: SettingsDep
) -> PolicyOut:
    """The instance's legal-process policy: public, so anyone can hold it to it."""
    return await _policy_out(db, settings)


@router.put("/policy", response_model=PolicyOut)
async def update_policy(
    body: PolicyIn,
    _p: Annotated[Principal, authorize(Action.instance_policy_update)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> PolicyOut:
    await service.set_instance_policy(
        db,
        community_requests_enabled=body.community_requests_enabled,
        actor=user,
        ctx=ctx,
        now=clock.now(),
    )
    return await _policy_out(db, settings)
