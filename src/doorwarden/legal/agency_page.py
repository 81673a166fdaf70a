"""The agency page, as each role sees it: its standing for everyone who may read it; its
requests and the forms to file one for its own officers; the jurisdiction, contacts,
approvals and programmes for operator admins (who see no request: policy rule 7)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from doorwarden.agencies import service
from doorwarden.agencies.governance import service as governance
from doorwarden.agencies.governance.models import ProgrammeKind
from doorwarden.agencies.models import Agency, AgencyKind
from doorwarden.agencies.standing import Standing, standing_of
from doorwarden.clock import Clock
from doorwarden.legal.models import LegalRequest
from doorwarden.legal.page_forms import area_text_of, map_settings, settings_of, with_map_csp
from doorwarden.legal.requests.forms import KINDS
from doorwarden.policy import STANDING_REFUSALS, Action, AgencyResource, Principal, decide
from doorwarden.web.render import render

DONE = {
    "created": "Agency registered. Verify it once you have checked it is what it says it is.",
    "verified": "Agency verified.",
    "edited": "Jurisdiction and contacts saved.",
    "approval": "Municipal approval recorded.",
    "revoked": "Approval revoked.",
    "programme": "Camera programme created.",
    "ended": "Programme ended.",
}
STANDING_TEXT = {
    Standing.active: "Its officers may file requests.",
    Standing.unverified: "Not verified by an operator yet: its officers cannot file any "
    "request, nor act on one, until an operator checks the agency is what it says it is.",
    Standing.no_approval: "No municipal approval in force: this instance requires one (the "
    "approving body, its reference and the use policy it approved) before an agency may "
    "act. Its officers can read their requests but not file or act on any.",
}
CONTACT_ROWS = 3  # blank rows under the contacts on file, for adding more
KIND_NAMES = {
    AgencyKind.police: "Police",
    AgencyKind.sheriff: "Sheriff",
    AgencyKind.state_police: "State police",
    AgencyKind.federal: "Federal",
    AgencyKind.prosecutor: "Prosecutor",
    AgencyKind.other: "Other",
}


def may(principal: Principal, action: Action, agency_id: uuid.UUID) -> bool:
    """The policy's own answer, so a page never offers what its route would refuse."""
    return decide(principal, action, AgencyResource(agency_id)).allowed


async def agency_requests(db: AsyncSession, agency_id: uuid.UUID) -> Sequence[LegalRequest]:
    query = (
        select(LegalRequest)
        .where(LegalRequest.agency_id == agency_id)
        .order_by(LegalRequest.created_at.desc())
        .limit(500)
    )
    return (await db.scalars(query)).all()


def edit_form(agency: Agency) -> dict[str, Any]:
    contacts = [dict(c) for c in agency.contacts or []]
    return {
        "kind": agency.kind.value,
        "jurisdiction": agency.jurisdiction,
        "area": area_text_of(agency.jurisdiction_area),
        "contacts": contacts + [{}] * CONTACT_ROWS,
    }


async def _admin_context(db: AsyncSession, agency: Agency) -> dict[str, Any]:
    programmes = [(p, n) for p, n in await governance.programmes(db) if p.agency_id == agency.id]
    approvals = await governance.approvals(db, agency.id)
    return {
        "approvals": approvals,
        "approval_names": {a.id: f"{a.approving_body}, {a.reference}" for a in approvals},
        "programmes": programmes,
        "programme_kinds": list(ProgrammeKind),
        "agency_kinds": KIND_NAMES,
    }


async def agency_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    clock: Clock,
    *,
    status_code: int = 200,
    done: str | None = None,
    **extra: Any,
) -> Response:
    settings = settings_of(request)
    agency = await service.get_agency(db, agency_id)
    now = clock.now()
    standing = await standing_of(
        db,
        agency,
        require_approval=settings.legal_require_municipal_approval,
        today=now.date(),
    )
    can_manage = may(principal, Action.agency_update, agency_id)
    own = may(principal, Action.legal_request_read, agency_id)
    context: dict[str, Any] = {
        "agency": agency,
        "officers": await service.list_officers(db, agency_id),
        "can_manage": can_manage,
        "can_verify": may(principal, Action.agency_verify, agency_id),
        "can_govern": may(principal, Action.governance_manage, agency_id),
        "standing": standing,
        "standing_text": STANDING_TEXT[standing],
        "refusal": STANDING_REFUSALS.get(str(standing)),
        "done": DONE.get(done or ""),
        "own_officer": own,
        "can_file": may(principal, Action.legal_request_submit, agency_id),
        "kinds": KINDS,
        "requests": await agency_requests(db, agency_id) if own else [],
        "community_enabled": (await governance.instance_policy(db)).community_requests_enabled,
        "now": now,
        "map": map_settings(settings),
        "today": now.date(),
        "require_approval": settings.legal_require_municipal_approval,
        **extra,
    }
    if can_manage:
        context |= await _admin_context(db, agency)
        context.setdefault("edit", edit_form(agency))
    else:
        context.setdefault("edit", {})
    response = render(request, "legal/agency.html", context, status_code=status_code)
    return with_map_csp(response, settings) if can_manage else response
