"""Every error becomes one shape: {"error": {"code", "message", "details"}} for the API,
an error page (or a redirect to sign-in) for the browser. Never a stack trace.

Faults that are nobody's mistake answer as such, with one log line and no traceback: a
database that cannot be reached is 503 `database_unavailable`, a storage failure 507 or
503, a client that went away mid-request is logged at info (see `fault_response`). Their
handlers are registered per exception class on purpose: Starlette's catch-all `Exception`
handler re-raises after answering, so the server would log a traceback anyway.
"""

from __future__ import annotations

import sqlite3
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from doorwarden.db import NulInText
from doorwarden.errors import (
    DatabaseUnavailable,
    DomainError,
    NotAuthenticated,
    StorageFull,
    StorageUnavailable,
)
from doorwarden.fileio import is_disk_full

log = structlog.get_logger("doorwarden.errors")
HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_attempts",
}


def wants_json(request: Request) -> bool:
    """The API and probes speak JSON; every other path is a page for a person."""
    path = request.url.path
    return path.startswith("/api/") or path in ("/healthz", "/readyz")


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if wants_json(request):
        body = {"error": {"code": code, "message": message, "details": details}}
        return JSONResponse(body, status_code=status, headers=headers)
    if status == 401 and request.method in ("GET", "HEAD"):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    from doorwarden.web.render import render  # noqa: PLC0415 - templates only for pages

    response = render(
        request,
        "error.html",
        {"status": status, "code": code, "message": message},
        status_code=status,
    )
    response.headers.update(headers or {})
    return response


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The offending input is not echoed back: it may be a password.
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg"),
            "type": err.get("type"),
        }
        for err in exc.errors()
    ]


def domain_error_response(request: Request, exc: DomainError) -> Response:
    """The answer to a domain error: the exception handler's, and the request middleware's
    when it refuses a request before the app runs (deps.document_gate)."""
    headers = dict(exc.headers)
    if isinstance(exc, NotAuthenticated) and not wants_json(request):
        headers.pop("WWW-Authenticate", None)
    return error_response(request, exc.status_code, exc.code, exc.message, exc.details, headers)


# What a database driver raises when the database cannot be used now, not because of the
# request (found by experiment: tests/functional/app/test_fault_statuses.py).
# PostgreSQL SQLSTATEs: class 08 (connection exception), 57P01-57P03 (shut down by an
# administrator or a crash, starting up), 53300 (too many connections).
_PG_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
_PG_DISK_FULL = "53100"
# SQLite primary result codes: the file cannot be opened (its directory is gone), I/O
# failed, another process holds the lock past the busy timeout, the file turned read-only.
_SQLITE_UNAVAILABLE = frozenset(
    {"SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY"}
)
# Modules whose frames show that a bare OSError (ConnectionRefusedError from a pool that
# cannot connect, TimeoutError from a connect that got no answer) came from the database.
_DRIVER_MODULES = ("sqlalchemy.", "asyncpg", "aiosqlite", "sqlite3")


@dataclass(frozen=True)
class StorageFaults:
    """The clip store's error classes, handed in by main.py (storage is a layer above
    this module): `base` escaping a route is a storage failure, `full` a full disk, and
    `mistakes` (a missing object, a bad key or range) are bugs when they escape."""

    base: type[Exception]
    full: type[Exception]
    mistakes: tuple[type[Exception], ...] = ()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what caused it, outermost first (a bounded walk: chains loop)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raised_by_driver(exc: BaseException) -> bool:
    return any(
        str(frame.f_globals.get("__name__", "")).startswith(_DRIVER_MODULES)
        for frame, _line in traceback.walk_tb(exc.__traceback__)
    )


def database_fault(exc: BaseException) -> tuple[type[DomainError], BaseException] | None:
    """(DatabaseUnavailable or StorageFull, the exception that says so) when `exc` means
    the database cannot be used now (down, restarting, cut off, out of connections or of
    disk); None for anything else, such as a bad query or a constraint, which stay bugs."""
    for cause in _causes(exc):
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return DatabaseUnavailable, cause.orig or cause
        if isinstance(cause, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
            return DatabaseUnavailable, cause  # the pool waited in vain for a connection
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate == _PG_DISK_FULL:
            return StorageFull, cause
        if isinstance(sqlstate, str) and sqlstate.startswith(_PG_UNAVAILABLE):
            return DatabaseUnavailable, cause
        if isinstance(cause, sqlite3.Error):
            primary = "_".join(str(getattr(cause, "sqlite_errorname", "")).split("_")[:2])
            if primary == "SQLITE_FULL":
                return StorageFull, cause
            if primary in _SQLITE_UNAVAILABLE:
                return DatabaseUnavailable, cause
        if isinstance(cause, OSError) and _raised_by_driver(cause):
            return DatabaseUnavailable, cause
    return None


def _error_name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _reason(exc: BaseException) -> str:
    # Driver, OS and storage messages only (never a SQLAlchemy error's text: it shows the
    # statement and its parameters, which may be secrets); one line, bounded.
    text = "" if isinstance(exc, sa_exc.SQLAlchemyError) else str(exc)
    return text.splitlines()[0][:200] if text else ""


def _method(request: Request) -> str:
    # Handlers also answer WebSocket handshakes (live view), whose scope has no method.
    return str(request.scope.get("method") or request.scope["type"].upper())


def _client_disconnect(exc: BaseException) -> bool:
    """The client went away: ClientDisconnect itself, or the 400 FastAPI makes of it when
    the body it was parsing (JSON, a form) never arrived whole."""
    return isinstance(exc, ClientDisconnect) or (
        isinstance(exc, StarletteHTTPException) and isinstance(exc.__cause__, ClientDisconnect)
    )


def fault_response(
    request: Request, exc: BaseException, storage: StorageFaults | None = None
) -> Response | None:
    """The answer to a fault that is not the caller's mistake, logged as one line; None
    when `exc` is not one (the caller answers it as before). Also called by the request
    middleware for what its document gate raises before the app runs."""
    path, method = request.url.path, _method(request)
    if _client_disconnect(exc):
        log.info("request.client_disconnected", path=path, method=method)
        # Nobody reads this answer (uvicorn drops what is sent after a disconnect); its
        # status is what the access log records: 499, as nginx logs a client gone.
        return Response(status_code=499)
    found = database_fault(exc)
    if found is not None:
        error_class, deciding = found
        cause = list(_causes(deciding))[-1]  # the driver's or the OS's own error, most specific
        if error_class is StorageFull:
            error: DomainError = StorageFull("The server's database has no room left.")
            event = "request.database_full"
        else:
            error = DatabaseUnavailable("The database cannot be reached. Try again shortly.")
            event = "request.database_unavailable"
        log.warning(
            event, path=path, method=method, error=_error_name(cause), reason=_reason(cause)
        )
        return domain_error_response(request, error)
    if (
        storage is not None
        and isinstance(exc, storage.base)
        and not isinstance(exc, storage.mistakes)
    ):
        full = isinstance(exc, storage.full) or is_disk_full(exc)
        return _storage_answer(request, exc, full=full)
    if isinstance(exc, OSError) and is_disk_full(exc):
        return _storage_answer(request, exc, full=True)  # ENOSPC from our own disk
    return None


def _storage_answer(request: Request, exc: BaseException, *, full: bool) -> Response:
    error: DomainError = (
        StorageFull("The server's storage is full. Try again later.")
        if full
        else StorageUnavailable("The server's storage cannot be used now. Try again later.")
    )
    log.warning(
        f"request.{error.code}",
        path=request.url.path,
        method=_method(request),
        error=_error_name(exc),
        reason=_reason(exc),  # storage messages never carry credentials (storage/base.py)
    )
    return domain_error_response(request, error)


def install_error_handlers(app: FastAPI, *, storage: StorageFaults | None = None) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)  # noqa: S101 - registered for this type
        return domain_error_response(request, exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        return error_response(
            request, 422, "validation_error", "The request is not valid.", _validation_details(exc)
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101
        if _client_disconnect(exc):
            return fault_response(request, exc) or Response(status_code=499)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
        return error_response(
            request, exc.status_code, code, message, None, dict(exc.headers or {})
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        return error_response(
            request, 500, "internal_error", "Something went wrong on our side; it has been logged."
        )

    async def fault(request: Request, exc: Exception) -> Response:
        # Registered for the classes a fault arrives as; what is not one is unexpected.
        if isinstance(exc, sa_exc.StatementError) and isinstance(exc.orig, NulInText):
            # An ordinary 400, not a server error.
            return error_response(
                request, 400, "invalid_input", "Text may not contain NUL characters."
            )
        return fault_response(request, exc, storage) or await unexpected(request, exc)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for kind in (sa_exc.SQLAlchemyError, sqlite3.Error, OSError, ClientDisconnect):
        app.add_exception_handler(kind, fault)
    if storage is not None:
        app.add_exception_handler(storage.base, fault)
    app.add_exception_handler(Exception, unexpected)


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable."},
                "message": {"type": "string", "description": "For a person to read."},
                "details": {"description": "Structured context, or null."},
            },
        }
    },
}


def document_errors(app: FastAPI) -> None:
    """Describe our error shape in the OpenAPI document, in place of FastAPI's default
    422 body, so clients (and the schema fuzzing test) see what we really send."""
    from fastapi.openapi.utils import get_openapi  # noqa: PLC0415

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        components["Error"] = ERROR_SCHEMA
        error_response = {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                responses["4XX"] = error_response
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
