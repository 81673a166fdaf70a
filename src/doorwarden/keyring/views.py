"""The "End-to-end key" page. Everything it does happens in the page (static/e2e/keyring.js)
through the keyring API: the key is made, stored, backed up and handed on in the browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorwarden.deps import SessionDep, UserDep, authorize
from doorwarden.keyring import service
from doorwarden.policy import Action, Principal
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/account/keyring")
async def keyring_page(
    request: Request,
    _p: Annotated[Principal, authorize(Action.account_security)],
    user: UserDep,
    db: SessionDep,
) -> Response:
    return render(
        request, "keyring/keyring.html", {"keyring": await service.overview(db, user=user)}
    )
