"""What an officer does to a filed request, one table: withdraw it, extend a preservation,
close a community request, package a community request's shared clips. The API
(router.py) and the request page (detail_views.py) make their routes from it and carry
each action out with the same call. Proving an emergency takes a warrant or a report, so
its routes are written out, and share `prove`."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.agencies.documents import Upload
from doorwarden.legal import lifecycle
from doorwarden.legal.community import service as community
from doorwarden.legal.disclosure.outcomes import Effects, disclose_when_proven
from doorwarden.legal.models import LegalRequest
from doorwarden.legal.requests.service import agency_request


async def _withdraw(db: AsyncSession, found: LegalRequest, officer: User, fx: Effects) -> object:
    return await lifecycle.withdraw(db, request=found, officer=officer, ctx=fx.ctx, now=fx.now)


async def _extend(db: AsyncSession, found: LegalRequest, officer: User, fx: Effects) -> object:
    return await lifecycle.extend(
        db, request=found, officer=officer, settings=fx.settings, ctx=fx.ctx, now=fx.now
    )


async def _close(db: AsyncSession, found: LegalRequest, officer: User, fx: Effects) -> object:
    return await lifecycle.close_community(
        db, request=found, officer=officer, ctx=fx.ctx, now=fx.now
    )


async def _package(db: AsyncSession, found: LegalRequest, officer: User, fx: Effects) -> object:
    return await community.build_shares_package(db, request=found, officer=officer, effects=fx)


@dataclass(frozen=True)
class OfficerAction:
    run: Callable[[AsyncSession, LegalRequest, User, Effects], Awaitable[object]]
    done: str  # what the request page says once it is done (?done=...)
    operation: str | None  # the API route that answers with the request; None: see router.py


# POST .../requests/{request_id}/{name}, in the API and on the pages.
ACTIONS = {
    "withdraw": OfficerAction(_withdraw, "withdrawn", "withdraw_request"),
    "extend": OfficerAction(_extend, "extended", "extend_preservation"),
    "close": OfficerAction(_close, "closed", "close_community_request"),
    # The API answers this one with the package it built, not the request (router.py).
    "packages": OfficerAction(_package, "packaged", None),
}


async def act(
    db: AsyncSession,
    *,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    action: str,
    officer: User,
    effects: Effects,
) -> LegalRequest:
    """Carry out `action` on the agency's request (another agency's is not found)."""
    found = await agency_request(db, agency_id, request_id)
    await ACTIONS[action].run(db, found, officer, effects)
    return found


async def prove(
    db: AsyncSession,
    found: LegalRequest,
    *,
    officer: User,
    warrant_request_id: uuid.UUID | None,
    report: Upload | None,
    effects: Effects,
) -> LegalRequest:
    """Ratify an emergency with a warrant filed since, or the incident report; a flagged
    agency's emergency is disclosed only now."""
    await lifecycle.file_proof(
        db,
        request=found,
        officer=officer,
        warrant_request_id=warrant_request_id,
        report=report,
        store=effects.store,
        settings=effects.settings,
        ctx=effects.ctx,
        now=effects.now,
    )
    await disclose_when_proven(db, request=found, actor=actor_of(officer), effects=effects)
    return found
