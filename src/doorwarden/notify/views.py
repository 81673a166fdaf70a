"""The notifications page: a member's own rules for the household as a form, and their
recent deliveries there. The form posts back here and is saved by the same service (and
validation, and audit) as the API; a refused form comes back as typed, with the reason."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.responses import Response

from doorwarden.accounts.models import User
from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, authorize, household_resource
from doorwarden.errors import DomainError
from doorwarden.households import service as households
from doorwarden.modes import service as modes
from doorwarden.notify import history, rules
from doorwarden.notify.models import NotifyKind
from doorwarden.notify.schemas import MAX_CAMERAS, RulesIn
from doorwarden.policy import Action, Instance, Principal, decide
from doorwarden.web.forms import Messages, discard, failure, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)
Member = Annotated[Principal, authorize(Action.notify_rules, household_resource)]
Short = Annotated[str, Form(max_length=64)]
Many = Annotated[list[str], Form(max_length=MAX_CAMERAS + 1)]

PAGE = "/households/{household_id}/notifications"
RECENT = 50
KINDS = {
    NotifyKind.ring: "Rings",
    NotifyKind.person: "People",
    NotifyKind.motion: "Motion",
    NotifyKind.integrity_alert: "Integrity alerts (a camera's recordings fail their checks)",
    NotifyKind.legal_notice: "Legal notices",
}
LABELS = {
    "cameras": "Cameras",
    "kinds": "Kinds",
    "quiet_hours": "Quiet hours",
    "cooldown_s": "Cooldown",
    "email": "E-mail",
}


def _own(field: str, err: ErrorDetails) -> str | None:
    if field == "quiet_hours" and err.get("input") == "":
        return "give both a start and an end (HH:MM), or leave both empty for none"
    if field == "cooldown_s" and err["type"] in ("int_parsing", "int_type", "int_from_float"):
        return "a whole number of seconds"
    return None


MESSAGES = Messages(LABELS, own=_own)


def _form_of(rule: rules.Rule) -> dict[str, object]:
    """The form's values from saved (or default) rules."""
    out = rule.out()
    return {
        "all_cameras": out.cameras is None,
        "cameras": {str(c) for c in out.cameras or ()},
        "kinds": {str(k) for k in out.kinds},
        "quiet_start": out.quiet_hours.start if out.quiet_hours else "",
        "quiet_end": out.quiet_hours.end if out.quiet_hours else "",
        "cooldown_s": str(out.cooldown_s),
        "email": out.email,
        "saved": out.saved,
    }


async def _page(
    request: Request, db: SessionDep, principal: Principal, household_id: uuid.UUID,
    user: User, *, form: dict[str, object] | None = None, status_code: int = 200,
    error: str | None = None, done: str | None = None,
) -> Response:  # fmt: skip
    household = await households.get_household(db, household_id)
    if form is None:
        form = _form_of(await rules.rule_of(db, household_id=household_id, user_id=user.id))
    cameras = await modes.cameras_of(db, household_id)
    # The deliveries are asked of the policy as the account API asks it.
    readable = decide(principal, Action.notifications_read, Instance()).allowed
    deliveries = (
        await history.deliveries(db, user_id=user.id, limit=RECENT, household_id=household_id)
        if readable
        else []
    )
    names = {c.id: c.name for c in cameras}
    context = {
        "household": household,
        "form": form,
        "cameras": cameras,
        "kinds": list(KINDS.items()),
        "deliveries": deliveries,
        "readable": readable,
        "camera_names": names,
        "error": error,
        "done": "Your notification rules are saved." if done == "saved" else None,
    }
    return render(request, "notify/notifications.html", context, status_code=status_code)


@router.get(PAGE)
async def notifications_page(
    request: Request, household_id: uuid.UUID, principal: Member, user: UserDep,
    db: SessionDep, done: str | None = None,
) -> Response:  # fmt: skip
    return await _page(request, db, principal, household_id, user, done=done)


@router.post(PAGE)
async def save_rules(
    request: Request, household_id: uuid.UUID, principal: Member, user: UserDep,
    db: SessionDep, ctx: ContextDep, clock: ClockDep, all_cameras: Short = "",
    cameras: Many = [], kinds: Many = [], quiet_start: Short = "",  # noqa: B006 - FastAPI copies
    quiet_end: Short = "", cooldown_s: Short = "", email: Short = "",
) -> Response:  # fmt: skip
    typed: dict[str, object] = {
        "all_cameras": bool(all_cameras),
        "cameras": set(cameras),
        "kinds": set(kinds),
        "quiet_start": quiet_start.strip(),
        "quiet_end": quiet_end.strip(),
        "cooldown_s": cooldown_s.strip(),
        "email": bool(email),
        "saved": True,
    }
    start, end = quiet_start.strip(), quiet_end.strip()
    try:
        body = RulesIn.model_validate(
            {
                "cameras": None if all_cameras else cameras,
                "kinds": kinds,
                "quiet_hours": {"start": start, "end": end} if start or end else None,
                "cooldown_s": cooldown_s.strip() or rules.DEFAULT_COOLDOWN_S,
                "email": bool(email),
            }
        )
        await households.get_household(db, household_id)
        await rules.save_rules(
            db, household_id=household_id, user=user, rules=body, ctx=ctx, now=clock.now()
        )
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc, MESSAGES)
        # A value the form should not have sent (a camera not the household's): the
        # API's 422 is, for a form, a bad request like any other refused value.
        status = 400 if isinstance(exc, rules.UnknownCamera) else status
        return await _page(
            request, db, principal, household_id, user, form=typed, status_code=status,
            error=message,
        )  # fmt: skip
    return see_other(PAGE.format(household_id=household_id) + "?done=saved")
