"""Every error becomes one shape: {"error": {"code", "message", "details"}} for the API,
an error page (or a redirect to sign-in) for the browser. Never a stack trace."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from doorwarden.db import NulInText
from doorwarden.errors import DomainError, NotAuthenticated

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


def install_error_handlers(app: FastAPI) -> None:
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

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)

    async def database_error(request: Request, exc: Exception) -> Response:
        # Registered for this type so the NUL case is an ordinary 400, not a server error.
        if isinstance(exc, StatementError) and isinstance(exc.orig, NulInText):
            return error_response(
                request, 400, "invalid_input", "Text may not contain NUL characters."
            )
        log.exception("database error", path=request.url.path)
        return error_response(
            request, 500, "internal_error", "Something went wrong on our side; it has been logged."
        )

    app.add_exception_handler(StatementError, database_error)
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
