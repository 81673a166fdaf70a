"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from doorwarden import __version__
from doorwarden.db import SchemaNotCurrentError, check_schema_on
from doorwarden.deps import SessionDep, authorize
from doorwarden.errors import DatabaseUnavailable, ServiceUnavailable
from doorwarden.policy import Action, Principal

router = APIRouter(tags=["health"])
Health = Annotated[Principal, authorize(Action.health_read)]


@router.get("/healthz")
async def healthz(_p: Health) -> dict[str, str]:
    """The process is up."""
    return {"status": "ok", "version": __version__}


@router.get("/api/v1/openapi.json", include_in_schema=False)
async def openapi_document(_p: Health, request: Request) -> dict[str, Any]:
    """The OpenAPI description of this API."""
    return request.app.openapi()  # type: ignore[no-any-return]


@router.get("/readyz")
async def readyz(_p: Health, db: SessionDep) -> dict[str, str]:
    """The database answers and is at the migrations' head. Otherwise 503: `not_ready`
    for a schema that needs migrating (a person must act), `database_unavailable` with
    Retry-After for a database that cannot be reached (it may come back by itself)."""
    try:
        await check_schema_on(await db.connection())
    except SchemaNotCurrentError as exc:
        raise ServiceUnavailable(str(exc)) from exc
    except (OSError, SQLAlchemyError) as exc:
        raise DatabaseUnavailable("The database cannot be reached.") from exc
    return {"status": "ready"}
