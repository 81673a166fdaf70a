"""Governance pages: on the agency page, an operator admin edits the jurisdiction and the
contacts, records and revokes municipal approvals, and creates and ends camera
programmes; the instance policy page shows the legal-process limits (public) and lets an
operator switch community requests on or off. Owners mark a camera's programme on the
Cameras page (devices/views.py), with the choices governance/service.py lists."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.agencies import service as agencies
from doorwarden.agencies.governance import service
from doorwarden.agencies.governance.schemas import ApprovalIn, ProgrammeIn
from doorwarden.agencies.http import require_upload
from doorwarden.agencies.page import MESSAGES, agency_page
from doorwarden.agencies.schemas import AgencyUpdate
from doorwarden.config import Settings
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    UserDep,
    agency_resource,
    authorize,
)
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.policy import Action, Instance, Principal, decide
from doorwarden.web.forms import blank_none, discard, failure, geojson, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=2000)]
Many = Annotated[list[str], Form(max_length=50)]
OptionalFile = Annotated[UploadFile | None, File()]


def _contacts(
    names: list[str], roles: list[str], emails: list[str], phones: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for index, name in enumerate(names):
        row = {
            "name": name.strip(),
            "role": (roles[index] if index < len(roles) else "").strip(),
            "email": blank_none(emails[index] if index < len(emails) else ""),
            "phone": (phones[index] if index < len(phones) else "").strip(),
        }
        if not row["name"]:
            if row["role"] or row["email"] or row["phone"]:
                raise InvalidInput("Contacts: each contact needs a name.")
            continue
        rows.append(row)
    return rows


async def _refused(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    user: Any,
    settings: Settings,
    now: Any,
    agency_id: uuid.UUID,
    exc: ValidationError | DomainError,
    form: str,
    **typed: Any,
) -> Response:
    """The agency page again, with why `form` was refused and what was typed in it."""
    await discard(db, user)
    status, text = failure(exc, MESSAGES)
    return await agency_page(
        request,
        db,
        principal,
        agency_id,
        settings,
        now,
        status_code=status,
        **typed,
        **{f"{form}_error": text},
    )


@router.post("/agencies/{agency_id}/edit")
async def edit_agency(
    request: Request,
    agency_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.agency_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    kind: Annotated[str, Form(max_length=40)] = "",
    jurisdiction: Text = "",
    jurisdiction_area: Annotated[str, Form(max_length=500_000)] = "",
    contact_name: Many = [],  # noqa: B006 - FastAPI copies defaults per request
    contact_role: Many = [],  # noqa: B006
    contact_email: Many = [],  # noqa: B006
    contact_phone: Many = [],  # noqa: B006
) -> Response:
    typed = {
        "kind": kind,
        "jurisdiction": jurisdiction,
        "area": jurisdiction_area,
        "contacts": [
            {"name": n, "role": r, "email": e, "phone": p}
            for n, r, e, p in zip(
                contact_name, contact_role, contact_email, contact_phone, strict=False
            )
        ],
    }
    try:
        agency = await agencies.get_agency(db, agency_id)
        body = AgencyUpdate.model_validate(
            {
                "kind": kind or None,
                "jurisdiction": jurisdiction,
                "jurisdiction_area": geojson(jurisdiction_area, "Jurisdiction area"),
                "contacts": _contacts(contact_name, contact_role, contact_email, contact_phone),
            }
        )
        changes = body.model_dump(mode="json", exclude_unset=True)
        await agencies.update_agency(db, agency=agency, changes=changes, actor=user, ctx=ctx)
    except (ValidationError, DomainError) as exc:
        return await _refused(
            request, db, principal, user, settings, clock.now(), agency_id, exc,
            "edit", edit=typed,
        )  # fmt: skip
    return see_other(f"/agencies/{agency_id}?done=edited#jurisdiction")


@router.post("/agencies/{agency_id}/approvals")
async def record_approval(
    request: Request,
    agency_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.governance_manage, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
    ctx: ContextDep,
    approving_body: Text = "",
    approved_on: Annotated[str, Form(max_length=40)] = "",
    reference: Text = "",
    expires_on: Annotated[str, Form(max_length=40)] = "",
    policy_document: OptionalFile = None,
) -> Response:
    typed = {
        "approving_body": approving_body,
        "approved_on": approved_on,
        "reference": reference,
        "expires_on": expires_on,
    }
    try:
        await agencies.get_agency(db, agency_id)
        body = ApprovalIn.model_validate(
            {**typed, "approved_on": blank_none(approved_on), "expires_on": blank_none(expires_on)}
        )
        limit = settings.legal_document_max_bytes
        policy = await require_upload(
            policy_document,
            limit,
            "use policy",
            missing="Attach the use policy the body approved, as a PDF.",
        )
        await service.record_approval(
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
    except (ValidationError, DomainError) as exc:
        return await _refused(
            request, db, principal, user, settings, clock.now(), agency_id, exc,
            "approval", approval_form=typed,
        )  # fmt: skip
    return see_other(f"/agencies/{agency_id}?done=approval#approvals")


@router.post("/agencies/{agency_id}/approvals/{approval_id}/revoke")
async def revoke_approval(
    request: Request,
    agency_id: uuid.UUID,
    approval_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.governance_manage, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    try:
        await service.revoke_approval(
            db, agency_id=agency_id, approval_id=approval_id, actor=user, ctx=ctx, now=clock.now()
        )
    except DomainError as exc:
        return await _refused(
            request, db, principal, user, settings, clock.now(), agency_id, exc, "approval"
        )
    return see_other(f"/agencies/{agency_id}?done=revoked#approvals")


@router.post("/agencies/{agency_id}/programmes")
async def create_programme(
    request: Request,
    agency_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.governance_manage, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    name: Text = "",
    kind: Annotated[str, Form(max_length=40)] = "",
    funding_source: Text = "",
    approval_id: Annotated[str, Form(max_length=60)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    typed = {
        "name": name,
        "kind": kind,
        "funding_source": funding_source,
        "approval_id": approval_id,
        "description": description,
    }
    try:
        await agencies.get_agency(db, agency_id)
        body = ProgrammeIn.model_validate({**typed, "approval_id": blank_none(approval_id)})
        await service.create_programme(
            db, agency_id=agency_id, **body.model_dump(), actor=user, ctx=ctx, now=clock.now()
        )
    except (ValidationError, DomainError) as exc:
        return await _refused(
            request, db, principal, user, settings, clock.now(), agency_id, exc,
            "programme", programme_form=typed,
        )  # fmt: skip
    return see_other(f"/agencies/{agency_id}?done=programme#programmes")


@router.post("/agencies/{agency_id}/programmes/{programme_id}/end")
async def end_programme(
    agency_id: uuid.UUID,
    programme_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.governance_manage, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    await service.end_programme(
        db, agency_id=agency_id, programme_id=programme_id, actor=user, ctx=ctx, now=clock.now()
    )
    return see_other(f"/agencies/{agency_id}?done=ended#programmes")


# -- the instance policy ------------------------------------------------------------------


async def _policy_page(
    request: Request, db: AsyncSession, principal: Principal, settings: Settings, **extra: Any
) -> Response:
    context = {
        "policy": await service.instance_policy(db),
        "settings": settings,
        "can_update": decide(principal, Action.instance_policy_update, Instance()).allowed,
        **extra,
    }
    return render(request, "governance/policy.html", context)


@router.get("/policy")
async def policy_page(
    request: Request,
    principal: Annotated[Principal, authorize(Action.page_public)],
    db: SessionDep,
    settings: SettingsDep,
    done: str | None = None,
) -> Response:
    """The instance's legal-process policy: public, so anyone can hold it to it."""
    saved = "Instance policy saved." if done == "saved" else None
    return await _policy_page(request, db, principal, settings, done=saved)


@router.post("/policy")
async def update_policy(
    _p: Annotated[Principal, authorize(Action.instance_policy_update)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    community_requests: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if community_requests not in ("on", "off"):
        raise InvalidInput("Choose whether community requests are on or off.")
    await service.set_instance_policy(
        db,
        community_requests_enabled=community_requests == "on",
        actor=user,
        ctx=ctx,
        now=clock.now(),
    )
    return see_other("/policy?done=saved")


# TEMPORARY (issue 15): devices/views.py still imports these two from here; once it takes
# them from agencies/governance/service.py (a view may not import another view module),
# remove these lines.
programme_choices = service.programme_choices
programme_marks = service.programme_marks
