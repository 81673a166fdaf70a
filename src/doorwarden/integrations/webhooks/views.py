"""The household's Integrations page: its webhooks (add with the event kinds wanted, the
secret shown once, test, turn off or on, remove) and each one's recent deliveries. The
forms post here and come back to the page; the same services as the API decide and
audit. Owners only, as the API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    SettingsDep,
    UserDep,
    authorize,
    household_resource,
)
from doorwarden.errors import DomainError
from doorwarden.households import service as households
from doorwarden.integrations.webhooks import service, tasks
from doorwarden.integrations.webhooks.models import SUBSCRIBABLE
from doorwarden.integrations.webhooks.schemas import WebhookIn, WebhookPatch
from doorwarden.policy import Action, Principal
from doorwarden.web.forms import Messages, discard, failure, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)
Owner = Annotated[Principal, authorize(Action.webhooks_manage, household_resource)]
Text = Annotated[str, Form(max_length=2100)]
Kinds = Annotated[list[str], Form(max_length=len(SUBSCRIBABLE) + 1)]
MESSAGES = Messages(
    labels={"url": "URL", "description": "Description", "event_kinds": "Events"},
)
KIND_LABELS = {
    "ring": "Doorbell rings",
    "person": "A person seen",
    "motion": "Motion",
    "mode.changed": "Mode changed (home, away, disarmed)",
    "camera.privacy_reduced": "A privacy zone removed or shrunk",
}
DELIVERIES_SHOWN = 10


async def _page(
    request: Request, db: SessionDep, household_id: uuid.UUID, *, status_code: int = 200,
    error: str | None = None, secret: str | None = None, form: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    household = await households.get_household(db, household_id)
    endpoints = await service.endpoints_of(db, household_id)
    recent = {e.id: await service.deliveries_of(db, e, limit=DELIVERIES_SHOWN) for e in endpoints}
    context = {
        "household": household,
        "endpoints": endpoints,
        "recent": recent,
        "kinds": [(k, KIND_LABELS[str(k)]) for k in SUBSCRIBABLE],
        "error": error,
        "secret": secret,
        "form": form or {"url": "", "description": "", "event_kinds": ["ring"]},
    }
    return render(request, "integrations/integrations.html", context, status_code=status_code)


def _base(household_id: uuid.UUID) -> str:
    return f"/households/{household_id}/integrations"


@router.get("/households/{household_id}/integrations")
async def integrations_page(
    request: Request, household_id: uuid.UUID, _p: Owner, db: SessionDep
) -> Response:
    return await _page(request, db, household_id)


@router.post("/households/{household_id}/integrations/webhooks")
async def add_webhook(
    request: Request, household_id: uuid.UUID, _p: Owner, user: UserDep, db: SessionDep,
    settings: SettingsDep, ctx: ContextDep, clock: ClockDep, url: Text = "",
    description: Text = "", event_kinds: Kinds = [],  # noqa: B006 - FastAPI copies it
) -> Response:  # fmt: skip
    form = {"url": url, "description": description, "event_kinds": event_kinds}
    try:
        body = WebhookIn(url=url, description=description, event_kinds=event_kinds)
        await households.get_household(db, household_id)
        _, secret = await service.register(
            db, household_id=household_id, body=body, actor=user, settings=settings,
            ctx=ctx, now=clock.now(),
        )  # fmt: skip
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc, MESSAGES)
        return await _page(request, db, household_id, status_code=status, error=message, form=form)
    await db.commit()
    # Shown on this answer only (not a redirect: the secret must not sit in a URL).
    return await _page(request, db, household_id, status_code=201, secret=secret)


async def _change(
    request: Request, household_id: uuid.UUID, webhook_id: uuid.UUID, user: UserDep,
    db: SessionDep, settings: SettingsDep, ctx: ContextDep, clock: ClockDep,
    patch: WebhookPatch,
) -> Response:  # fmt: skip
    try:
        endpoint = await service.get_endpoint(db, household_id, webhook_id)
        secret = await service.update(
            db, endpoint=endpoint, body=patch, actor=user, settings=settings, ctx=ctx,
            now=clock.now(),
        )  # fmt: skip
    except DomainError as exc:
        await discard(db, user)
        return await _page(
            request, db, household_id, status_code=exc.status_code, error=exc.message
        )
    await db.commit()
    if secret is not None:
        return await _page(request, db, household_id, secret=secret)
    return see_other(_base(household_id))


@router.post("/households/{household_id}/integrations/webhooks/{webhook_id}/enable")
async def enable_webhook(
    request: Request, household_id: uuid.UUID, webhook_id: uuid.UUID, _p: Owner,
    user: UserDep, db: SessionDep, settings: SettingsDep, ctx: ContextDep, clock: ClockDep,
) -> Response:  # fmt: skip
    patch = WebhookPatch(enabled=True)
    return await _change(request, household_id, webhook_id, user, db, settings, ctx, clock, patch)


@router.post("/households/{household_id}/integrations/webhooks/{webhook_id}/disable")
async def disable_webhook(
    request: Request, household_id: uuid.UUID, webhook_id: uuid.UUID, _p: Owner,
    user: UserDep, db: SessionDep, settings: SettingsDep, ctx: ContextDep, clock: ClockDep,
) -> Response:  # fmt: skip
    patch = WebhookPatch(enabled=False)
    return await _change(request, household_id, webhook_id, user, db, settings, ctx, clock, patch)


@router.post("/households/{household_id}/integrations/webhooks/{webhook_id}/rotate")
async def rotate_secret(
    request: Request, household_id: uuid.UUID, webhook_id: uuid.UUID, _p: Owner,
    user: UserDep, db: SessionDep, settings: SettingsDep, ctx: ContextDep, clock: ClockDep,
) -> Response:  # fmt: skip
    patch = WebhookPatch(rotate_secret=True)
    return await _change(request, household_id, webhook_id, user, db, settings, ctx, clock, patch)


@router.post("/households/{household_id}/integrations/webhooks/{webhook_id}/test")
async def send_test(
    request: Request, household_id: uuid.UUID, webhook_id: uuid.UUID, _p: Owner,
    user: UserDep, db: SessionDep, clock: ClockDep,
) -> Response:  # fmt: skip
    try:
        endpoint = await service.get_endpoint(db, household_id, webhook_id)
    except DomainError as exc:
        return await _page(
            request, db, household_id, status_code=exc.status_code, error=exc.message
        )
    service.ping(db, endpoint=endpoint, now=clock.now())
    await db.commit()
    tasks.wake(request.app.state)
    return see_other(_base(household_id))


@router.post("/households/{household_id}/integrations/webhooks/{webhook_id}/delete")
async def delete_webhook(
    request: Request, household_id: uuid.UUID, webhook_id: uuid.UUID, _p: Owner,
    user: UserDep, db: SessionDep, ctx: ContextDep,
) -> Response:  # fmt: skip
    try:
        endpoint = await service.get_endpoint(db, household_id, webhook_id)
        await service.delete(db, endpoint=endpoint, actor=user, ctx=ctx)
    except DomainError as exc:
        await discard(db, user)
        return await _page(
            request, db, household_id, status_code=exc.status_code, error=exc.message
        )
    await db.commit()
    return see_other(_base(household_id))
