"""The legal reviewer's pages: the queue (emergencies first; decided requests on request),
and one request with its documents, the cameras its scope resolved to, every check, and
the three decisions: approve as asked, narrow (fewer cameras, a shorter window, with a
reason), reject (with a reason). Reviewers see metadata, never footage."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.accounts.models import User
from doorwarden.agencies.service import agency_names
from doorwarden.deps import ClockDep, ContextDep, EffectsDep, SessionDep, UserDep, authorize
from doorwarden.errors import DomainError
from doorwarden.legal.disclosure.outcomes import Effects
from doorwarden.legal.page_forms import MESSAGES
from doorwarden.legal.requests.records import document_ids
from doorwarden.legal.review import service as review
from doorwarden.legal.review.checks import Check, attestations_needed
from doorwarden.legal.review.schemas import NarrowIn
from doorwarden.policy import Action, Principal
from doorwarden.web.forms import discard, failure, local_input, see_other, utc
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

DONE = {
    "started": "You have taken this request for review.",
    "approved": "Approved as asked.",
    "narrowed": "Approved as narrowed.",
    "rejected": "Rejected.",
}
DONE_AFTER = {"start": "started", "approve": "approved", "narrow": "narrowed", "reject": "rejected"}
ATTESTATION_TEXT = {
    "signed": "I have read the document: it bears the signature of the judge or authority "
    "named on it.",
    "nondisclosure": "I have read the non-disclosure order: it is a court's, and ends on the "
    "date given.",
}
Attest = Annotated[list[str], Form(max_length=4)]
Reason = Annotated[str, Form(max_length=6000)]
Reviewer = Annotated[Principal, authorize(Action.legal_review)]


@router.get("/review")
async def review_queue(
    request: Request,
    _p: Reviewer,
    db: SessionDep,
    decided: str | None = None,
) -> Response:
    include = decided == "1"
    found = await review.queue(db, include_decided=include)
    names = await agency_names(db, (r.agency_id for r in found))
    context = {"queue": found, "agency_names": names, "include_decided": include}
    return render(request, "review/queue.html", context)


async def review_page(
    request: Request,
    db: AsyncSession,
    user: User,
    request_id: uuid.UUID,
    effects: Effects,
    *,
    status_code: int = 200,
    done: str | None = None,
    **extra: Any,
) -> Response:
    seen = await review.preview(db, request_id, reviewer=user, effects=effects)
    found = seen.request
    context = {
        "req": found,
        "agency": seen.agency,
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
        "documents": document_ids(found),
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
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
    done: str | None = None,
) -> Response:
    return await review_page(request, db, user, request_id, effects, done=done)


async def _done_or_refused(
    request: Request,
    db: AsyncSession,
    user: User,
    request_id: uuid.UUID,
    effects: Effects,
    form: str,
    typed: dict[str, Any],
    act: Callable[[], Awaitable[object]],
) -> Response:
    """Run `act` (form `form`'s service call); on to the page saying it is done, or the
    page again with why it was refused and the form as typed."""
    try:
        await act()
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, text = failure(exc, MESSAGES)
        return await review_page(
            request,
            db,
            user,
            request_id,
            effects,
            status_code=status,
            **{f"{form}_error": text},
            typed=typed,
        )
    return see_other(f"/review/{request_id}?done={DONE_AFTER[form]}")


def _decide(
    db: AsyncSession,
    request_id: uuid.UUID,
    user: User,
    effects: Effects,
    decision: Callable[[], review.Decision],
) -> Callable[[], Awaitable[object]]:
    async def act() -> object:
        return await review.decide(
            db, request_id=request_id, reviewer=user, decision=decision(), effects=effects
        )

    return act


@router.post("/review/{request_id}/start")
async def start_review(
    request: Request,
    request_id: uuid.UUID,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    effects: EffectsDep,
) -> Response:
    async def start() -> object:
        return await review.start_review(
            db, request_id=request_id, reviewer=user, ctx=ctx, now=clock.now()
        )

    return await _done_or_refused(request, db, user, request_id, effects, "start", {}, start)


@router.post("/review/{request_id}/approve")
async def approve(
    request: Request,
    request_id: uuid.UUID,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
    attest: Attest = [],  # noqa: B006 - FastAPI copies defaults per request
    note: Reason = "",
) -> Response:
    typed = {"approve_attest": attest, "note": note}
    act = _decide(db, request_id, user, effects, lambda: review.Approval(attest, note))
    return await _done_or_refused(request, db, user, request_id, effects, "approve", typed, act)


@router.post("/review/{request_id}/narrow")
async def narrow(
    request: Request,
    request_id: uuid.UUID,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
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

    def narrowing() -> review.Decision:
        body = NarrowIn.model_validate(
            {
                "keep_devices": keep_devices,
                "window_start": None if window_start == asked[0] else utc(window_start),
                "window_end": None if window_end == asked[1] else utc(window_end),
                "attest": attest,
                "reason": reason,
            }
        )
        return review.Narrowing(**body.model_dump())

    act = _decide(db, request_id, user, effects, narrowing)
    return await _done_or_refused(request, db, user, request_id, effects, "narrow", typed, act)


@router.post("/review/{request_id}/reject")
async def reject(
    request: Request,
    request_id: uuid.UUID,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
    reason: Reason = "",
) -> Response:
    typed = {"reject_reason": reason}
    act = _decide(db, request_id, user, effects, lambda: review.Rejection(reason))
    return await _done_or_refused(request, db, user, request_id, effects, "reject", typed, act)
