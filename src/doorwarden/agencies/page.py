"""The agency page, as each role sees it: its standing for everyone who may read it; the
jurisdiction, contacts, approvals and programmes for operator admins, with their forms.

Its officers also see their requests there and the forms to file one: legal process is a
higher domain, so legal/requests/views.py serves the page itself and adds that section
(`extra`); the agency and governance forms re-show the page without it, as their users
(operator admins) never see a request (policy rule 7)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from doorwarden.agencies import service
from doorwarden.agencies.governance import service as governance
from doorwarden.agencies.governance.models import ProgrammeKind
from doorwarden.agencies.models import Agency, AgencyKind
from doorwarden.agencies.standing import Standing, standing_of
from doorwarden.config import Settings
from doorwarden.policy import (
    STANDING_REFUSALS,
    Action,
    AgencyResource,
    Principal,
    can,
    distinct_operator,
)
from doorwarden.web.forms import Messages, area_text_of, map_settings, with_map_csp
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
# The admin forms on the page (jurisdiction and contacts, approvals, programmes).
MESSAGES = Messages(
    {
        "approving_body": "Approving body",
        "approved_on": "Approved on",
        "reference": "Reference",
        "expires_on": "Expires on",
        "name": "Name",
        "kind": "Kind",
        "funding_source": "Funding source",
        "approval_id": "Approval",
        "jurisdiction": "Jurisdiction name",
        "jurisdiction_area": "Jurisdiction area",
        "contacts": "Contacts",
    },
    plain=True,
)


def may(principal: Principal, action: Action, agency_id: uuid.UUID) -> bool:
    """policy.can on this agency: a page never offers what its route would refuse."""
    return can(principal, action, AgencyResource(agency_id))


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
    settings: Settings,
    now: Any,
    *,
    status_code: int = 200,
    done: str | None = None,
    **extra: Any,
) -> Response:
    agency = await service.get_agency(db, agency_id)
    standing = await standing_of(
        db,
        agency,
        require_approval=settings.legal_require_municipal_approval,
        today=now.date(),
    )
    can_manage = may(principal, Action.agency_update, agency_id)
    # Rule 8: the operator who did one of verify / record an approval is not offered the
    # other (its route would refuse it: 409 separation_of_duties).
    me = principal.user_id
    second_for_verify = (
        me is not None
        and distinct_operator(me, await service.approval_recorders(db, agency_id)).allowed
    )
    second_for_approval = me is not None and distinct_operator(me, {agency.verified_by}).allowed
    context: dict[str, Any] = {
        "agency": agency,
        "officers": await service.list_officers(db, agency_id),
        "can_manage": can_manage,
        "can_verify": may(principal, Action.agency_verify, agency_id) and second_for_verify,
        "can_record_approval": second_for_approval,
        "can_govern": may(principal, Action.governance_manage, agency_id),
        "standing": standing,
        "standing_text": STANDING_TEXT[standing],
        "refusal": STANDING_REFUSALS.get(str(standing)),
        "done": DONE.get(done or ""),
        # The officers' section (legal/requests/views.py fills it in).
        "own_officer": False,
        "can_file": False,
        "kinds": {},
        "requests": [],
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
