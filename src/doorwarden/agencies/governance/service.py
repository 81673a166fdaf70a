"""Recording municipal approvals, running camera programmes, and the instance policy.

Operators record what a public body approved; they cannot make an approval up (the use
policy document is required) nor attach a condition to a programme (there is no field
for one, and unknown fields are refused). Enrolling a camera in a programme is its
owner's statement of where it came from: it marks the camera, is counted publicly, and
grants the agency nothing at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.agencies import documents
from doorwarden.agencies.documents import Upload
from doorwarden.agencies.governance.models import (
    CameraProgramme,
    InstancePolicy,
    MunicipalApproval,
    ProgrammeEnrolment,
    ProgrammeKind,
)
from doorwarden.agencies.models import Agency, DocumentKind, LegalDocument
from doorwarden.agencies.service import get_agency, require
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.devices.models import Device
from doorwarden.errors import Conflict, InvalidInput, NotFound
from doorwarden.policy import distinct_operator
from doorwarden.storage.base import ClipStore

POLICY_ROW = 1


async def instance_policy(db: AsyncSession) -> InstancePolicy:
    """The policy in force; defaults until an operator first changes it (not written on
    read)."""
    row = await db.get(InstancePolicy, POLICY_ROW)
    return row or InstancePolicy(id=POLICY_ROW, community_requests_enabled=True)


async def set_instance_policy(
    db: AsyncSession,
    *,
    community_requests_enabled: bool,
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> InstancePolicy:
    row = await db.get(InstancePolicy, POLICY_ROW)
    if row is None:
        row = InstancePolicy(id=POLICY_ROW)
        db.add(row)
    before = row.community_requests_enabled
    row.community_requests_enabled = community_requests_enabled
    row.updated_at, row.updated_by = now, actor.id
    record(
        db,
        tag=Tag.instance_policy_update,
        actor=actor_of(actor),
        ctx=ctx,
        target_type="instance_policy",
        target_id=str(POLICY_ROW),
        extra={
            "community_requests_enabled": community_requests_enabled,
            "was": before if before is not None else True,
        },
        occurred_at=now,
    )
    return row


async def record_approval(
    db: AsyncSession,
    *,
    agency_id: uuid.UUID,
    approving_body: str,
    approved_on: date,
    reference: str,
    expires_on: date | None,
    policy: Upload,
    store: ClipStore,
    max_bytes: int,
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> MunicipalApproval:
    if approved_on > now.date():
        raise InvalidInput("An approval cannot be dated after today.")
    # Rule 8: not the operator who verified the agency.
    agency = await get_agency(db, agency_id)
    require(distinct_operator(actor.id, {agency.verified_by}))
    if expires_on is not None and expires_on < approved_on:
        raise InvalidInput("An approval cannot expire before it was given.")
    pages = documents.check_pdf(
        policy.data, content_type=policy.content_type, max_bytes=max_bytes, what="use policy"
    )
    document = await documents.store_document(
        db,
        store,
        agency_id=agency_id,
        kind=DocumentKind.use_policy,
        data=policy.data,
        filename=policy.filename,
        pages=pages,
        actor=actor_of(actor),
        ctx=ctx,
        now=now,
    )
    approval = MunicipalApproval(
        id=uuid.uuid4(),
        agency_id=agency_id,
        approving_body=approving_body.strip(),
        approved_on=approved_on,
        reference=reference.strip(),
        expires_on=expires_on,
        policy_document_id=document.id,
        recorded_by=actor.id,
        created_at=now,
    )
    db.add(approval)
    record(
        db,
        tag=Tag.governance_approval_record,
        actor=actor_of(actor),
        ctx=ctx,
        agency_id=agency_id,
        target_type="municipal_approval",
        target_id=approval.id,
        extra={
            "approving_body": approval.approving_body,
            "reference": approval.reference,
            "approved_on": approved_on.isoformat(),
            "policy_sha256": document.sha256,
        },
        occurred_at=now,
    )
    return approval


async def approval_of(
    db: AsyncSession, agency_id: uuid.UUID, approval_id: uuid.UUID
) -> MunicipalApproval:
    approval = await db.get(MunicipalApproval, approval_id)
    if approval is None or approval.agency_id != agency_id:
        raise NotFound("No such approval for this agency.")
    return approval


async def revoke_approval(
    db: AsyncSession,
    *,
    agency_id: uuid.UUID,
    approval_id: uuid.UUID,
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> MunicipalApproval:
    approval = await approval_of(db, agency_id, approval_id)
    if approval.revoked_at is not None:
        error = Conflict("This approval was revoked already.")
        error.code = "already_revoked"
        raise error
    approval.revoked_at = now
    record(
        db,
        tag=Tag.governance_approval_revoke,
        actor=actor_of(actor),
        ctx=ctx,
        agency_id=approval.agency_id,
        target_type="municipal_approval",
        target_id=approval.id,
        occurred_at=now,
    )
    return approval


async def approvals(
    db: AsyncSession, agency_id: uuid.UUID | None = None
) -> Sequence[MunicipalApproval]:
    query = select(MunicipalApproval).order_by(MunicipalApproval.approved_on.desc())
    if agency_id is not None:
        query = query.where(MunicipalApproval.agency_id == agency_id)
    return (await db.scalars(query)).all()


async def policy_document(db: AsyncSession, approval_id: uuid.UUID) -> LegalDocument:
    """The use policy a public body approved (a public record)."""
    approval = await db.get(MunicipalApproval, approval_id)
    document = await db.get(LegalDocument, approval.policy_document_id) if approval else None
    if document is None:
        raise NotFound("No such approval.")
    return document


async def create_programme(
    db: AsyncSession,
    *,
    agency_id: uuid.UUID,
    name: str,
    kind: ProgrammeKind,
    funding_source: str,
    approval_id: uuid.UUID,
    description: str,
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> CameraProgramme:
    await get_agency(db, agency_id)
    approval = await approval_of(db, agency_id, approval_id)
    if approval.revoked_at is not None:
        raise InvalidInput("That approval was revoked; a programme needs one in force.")
    # In force as legal/standing.py counts it: an expired approval authorises nothing new.
    if approval.expires_on is not None and approval.expires_on < now.date():
        raise InvalidInput("That approval has expired; a programme needs one in force.")
    programme = CameraProgramme(
        id=uuid.uuid4(),
        agency_id=agency_id,
        name=name.strip(),
        kind=kind,
        funding_source=funding_source.strip(),
        approval_id=approval.id,
        description=description.strip(),
        created_by=actor.id,
        created_at=now,
    )
    db.add(programme)
    record(
        db,
        tag=Tag.governance_programme_create,
        actor=actor_of(actor),
        ctx=ctx,
        agency_id=agency_id,
        target_type="camera_programme",
        target_id=programme.id,
        extra={
            "name": programme.name,
            "kind": str(kind),
            "funding_source": programme.funding_source,
            "approval": str(approval.id),
        },
        occurred_at=now,
    )
    return programme


async def programme_of(db: AsyncSession, programme_id: uuid.UUID) -> CameraProgramme:
    programme = await db.get(CameraProgramme, programme_id)
    if programme is None:
        raise NotFound("No such programme.")
    return programme


async def end_programme(
    db: AsyncSession,
    *,
    agency_id: uuid.UUID,
    programme_id: uuid.UUID,
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> CameraProgramme:
    programme = await programme_of(db, programme_id)
    if programme.agency_id != agency_id:
        raise NotFound("No such programme for this agency.")
    if programme.ended_at is None:
        programme.ended_at = now
        record(
            db,
            tag=Tag.governance_programme_end,
            actor=actor_of(actor),
            ctx=ctx,
            agency_id=programme.agency_id,
            target_type="camera_programme",
            target_id=programme.id,
            occurred_at=now,
        )
    return programme


async def programmes(db: AsyncSession) -> Sequence[tuple[CameraProgramme, int]]:
    """Every programme with how many cameras in service are enrolled in it."""
    enrolled = (
        select(ProgrammeEnrolment.programme_id, func.count().label("n"))
        .join(Device, Device.id == ProgrammeEnrolment.device_id)
        .where(Device.revoked_at.is_(None))
        .group_by(ProgrammeEnrolment.programme_id)
        .subquery()
    )
    query = (
        select(CameraProgramme, func.coalesce(enrolled.c.n, 0))
        .outerjoin(enrolled, enrolled.c.programme_id == CameraProgramme.id)
        .order_by(CameraProgramme.created_at)
    )
    return [(p, int(n)) for p, n in (await db.execute(query)).all()]


async def set_enrolment(
    db: AsyncSession,
    *,
    device: Device,
    programme_id: uuid.UUID | None,
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> ProgrammeEnrolment | None:
    """Mark the camera as from a programme (or no longer). Nothing else changes: no
    consent, no sharing, no access of any kind follows from it."""
    current = await db.get(ProgrammeEnrolment, device.id)
    if programme_id is not None and device.revoked_at is not None:
        raise InvalidInput("This camera was removed; a removed camera cannot be enrolled.")
    if programme_id is None:
        if current is not None:
            await db.delete(current)
            record(
                db,
                tag=Tag.governance_programme_unenrol,
                actor=actor_of(actor),
                ctx=ctx,
                household_id=device.household_id,
                target_type="device",
                target_id=device.id,
                extra={"programme": str(current.programme_id)},
                occurred_at=now,
            )
        return None
    programme = await programme_of(db, programme_id)
    if programme.ended_at is not None and (current is None or current.programme_id != programme.id):
        raise InvalidInput("That programme has ended; cameras can no longer be enrolled in it.")
    if current is None:
        current = ProgrammeEnrolment(device_id=device.id, programme_id=programme.id)
        db.add(current)
    current.programme_id, current.enrolled_at, current.enrolled_by = programme.id, now, actor.id
    record(
        db,
        tag=Tag.governance_programme_enrol,
        actor=actor_of(actor),
        ctx=ctx,
        household_id=device.household_id,
        target_type="device",
        target_id=device.id,
        extra={"programme": str(programme.id)},
        occurred_at=now,
    )
    return current


async def programme_choices(db: AsyncSession) -> list[tuple[CameraProgramme, str]]:
    """Programmes an owner may name (every one, ended ones included so a camera already
    marked keeps its mark), with the agency's name."""
    rows = await db.execute(
        select(CameraProgramme, Agency.name)
        .join(Agency, Agency.id == CameraProgramme.agency_id)
        .order_by(Agency.name, CameraProgramme.name)
    )
    return [(p, name) for p, name in rows.all()]


async def programme_marks(
    db: AsyncSession, device_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Each enrolled camera's programme id."""
    if not device_ids:
        return {}
    rows = await db.scalars(
        select(ProgrammeEnrolment).where(ProgrammeEnrolment.device_id.in_(list(device_ids)))
    )
    return {e.device_id: e.programme_id for e in rows}
