"""The legal reviewer's pages: the queue (emergencies first; decided requests on request),
and one request with its documents, the cameras its scope resolved to, every check, and
the three decisions: approve as asked, narrow (fewer cameras, a shorter window, with a
reason), reject (with a reason). Reviewers see metadata, never footage."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.accounts.models import User
from doorwarden.agencies.models import Agency
from doorwarden.deps import ContextDep, SessionDep, UserDep, authorize
from doorwarden.errors import DomainError
from doorwarden.legal.http import effects_of
from doorwarden.legal.models import LegalRequest
from doorwarden.legal.page_forms import failure, local_input, refused, utc
from doorwarden.legal.requests.detail_views import DOCUMENT_NAMES
from doorwarden.legal.review import service as review
from doorwarden.legal.review.checks import Check, attestations_needed
from doorwarden.legal.review.router import NarrowIn
from doorwarden.policy import Action, Principal
from doorwarden.web.forms import see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

DONE = {
    "started": "You have taken this request for review.",
    "approved": "Approved as asked.",
    "narrowed": "Approved as narrowed.",
    "rejected": "Rejected.",
}
ATTESTATION_TEXT = {
    "signed": "I have read the document: it bears the signature of the judge or authority "
    "named on it.",
    "nondisclosure": "I have read the non-disclosure order: it is a court's, and ends on the "
    "date given.",
}
Attest = Annotated[list[str], Form(max_length=4)]
Reason = Annotated[str, Form(max_length=6000)]


@router.get("/review")
async def review_queue(
    request: Request,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    db: SessionDep,
    decided: str | None = None,
) -> Response:
    include = decided == "1"
    found = await review.queue(db, include_decided=include)
    ids = {r.agency_id for r in found}
    names: dict[uuid.UUID, str] = {}
    if ids:
        rows = await db.execute(select(Agency.id, Agency.name).where(Agency.id.in_(ids)))
        names = {row[0]: row[1] for row in rows}
    context = {"queue": found, "agency_names": names, "include_decided": include}
    return render(request, "review/queue.html", context)


async def review_page(
    request: Request,
    db: AsyncSession,
    user: User,
    request_id: uuid.UUID,
    ctx: Any,
    *,
    status_code: int = 200,
    done: str | None = None,
    **extra: Any,
) -> Response:
    found = await review.reviewable(db, request_id)
    seen = await review.preview(db, found, reviewer=user, effects=effects_of(request, ctx))
    agency = await db.get(Agency, found.agency_id)
    documents = [
        (name, getattr(found, attribute))
        for attribute, name in DOCUMENT_NAMES.items()
        if getattr(found, attribute) is not None
    ]
    context = {
        "req": found,
        "agency": agency,
        "items": seen.items,
        "targets": seen.targets,
        "named_as": {i.id: i for i in seen.items},
        # Once decided, the checklist as it stood at the decision (with who attested).
        "checks": (
            [Check(**c) for c in found.checklist.values()]
            if review.decided(found) and found.checklist
            else seen.checks
        ),
        "attestations": [(a, ATTESTATION_TEXT[a]) for a in attestations_needed(found)],
        "documents": documents,
        "decided": review.decided(found),
        "window_inputs": (local_input(found.window_start), local_input(found.window_end)),
        "done": DONE.get(done or ""),
        **extra,
    }
    return render(request, "review/request.html", context, status_code=status_code)


@router.get("/review/{request_id}")
async def review_request(
    request: Request,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    done: str | None = None,
) -> Response:
    return await review_page(request, db, user, request_id, ctx, done=done)


async def _refused(
    request: Request,
    db: AsyncSession,
    user: User,
    request_id: uuid.UUID,
    ctx: Any,
    exc: ValidationError | DomainError,
    form: str,
    typed: dict[str, Any],
) -> Response:
    await refused(db, user)
    status, text = failure(exc)
    return await review_page(
        request,
        db,
        user,
        request_id,
        ctx,
        status_code=status,
        **{f"{form}_error": text},
        typed=typed,
    )


@router.post("/review/{request_id}/start")
async def start_review(
    request: Request,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> Response:
    found = await review.reviewable(db, request_id)
    now = request.app.state.clock.now()
    try:
        await review.start_review(db, request=found, reviewer=user, ctx=ctx, now=now)
    except DomainError as exc:
        return await _refused(request, db, user, request_id, ctx, exc, "start", {})
    return see_other(f"/review/{request_id}?done=started")


@router.post("/review/{request_id}/approve")
async def approve(
    request: Request,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    attest: Attest = [],  # noqa: B006 - FastAPI copies defaults per request
    note: Reason = "",
) -> Response:
    found: LegalRequest = await review.reviewable(db, request_id)
    try:
        await review.approve(
            db,
            request=found,
            reviewer=user,
            attest=set(attest),
            note=note,
            effects=effects_of(request, ctx),
        )
    except DomainError as exc:
        typed = {"approve_attest": attest, "note": note}
        return await _refused(request, db, user, request_id, ctx, exc, "approve", typed)
    return see_other(f"/review/{request_id}?done=approved")


@router.post("/review/{request_id}/narrow")
async def narrow(
    request: Request,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    keep_devices: Annotated[list[str], Form(max_length=1000)] = [],  # noqa: B006
    window_start: Annotated[str, Form(max_length=40)] = "",
    window_end: Annotated[str, Form(max_length=40)] = "",
    attest: Attest = [],  # noqa: B006
    reason: Reason = "",
) -> Response:
    found = await review.reviewable(db, request_id)
    typed = {
        "keep": keep_devices,
        "window_start": window_start,
        "window_end": window_end,
        "narrow_attest": attest,
        "reason": reason,
    }
    # The form shows the window asked for (to the minute or second): left as shown, it
    # means that window exactly, whatever fraction of a second the agency sent.
    asked = (local_input(found.window_start), local_input(found.window_end))
    try:
        body = NarrowIn.model_validate(
            {
                "keep_devices": keep_devices,
                "window_start": None if window_start == asked[0] else utc(window_start),
                "window_end": None if window_end == asked[1] else utc(window_end),
                "attest": attest,
                "reason": reason,
            }
        )
        await review.narrow(
            db,
            request=found,
            reviewer=user,
            keep_devices=set(body.keep_devices),
            window_start=body.window_start,
            window_end=body.window_end,
            attest=set(body.attest),
            reason=body.reason,
            effects=effects_of(request, ctx),
        )
    except (ValidationError, DomainError) as exc:
        return await _refused(request, db, user, request_id, ctx, exc, "narrow", typed)
    return see_other(f"/review/{request_id}?done=narrowed")


@router.post("/review/{request_id}/reject")
async def reject(
    request: Request,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    reason: Reason = "",
) -> Response:
    found = await review.reviewable(db, request_id)
    try:
        await review.reject(
            db, request=found, reviewer=user, reason=reason, effects=effects_of(request, ctx)
        )
    except DomainError as exc:
        typed = {"reject_reason": reason}
        return await _refused(request, db, user, request_id, ctx, exc, "reject", typed)
    return see_other(f"/review/{request_id}?done=rejected")
