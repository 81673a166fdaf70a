"""ASGI middleware: request ids, access logs, security headers, request body limit."""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def content_security_policy(*, img_sources: tuple[str, ...] = ()) -> str:
    """The CSP of every response. A page that shows images from elsewhere (the map tiles
    of the public coverage map) sets its own, with just those origins added."""
    images = " ".join(("'self'", "data:", *img_sources))
    return (
        f"default-src 'self'; img-src {images}; "
        "style-src 'self'; script-src 'self'; "
        # Live view plays a MediaSource, which the video element loads from a blob: URL.
        "media-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": content_security_policy(),
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
log = structlog.get_logger("doorwarden.http")


class BodyTooLarge(Exception):
    """Raised from receive(); the middleware answers 413 whatever the app made of it."""


# Parts of a sealed clip a camera uploads: the one kind of body allowed to be large
# (fewer, bigger requests per clip), authenticated and checked against its manifest.
UPLOAD_PART_PATH = re.compile(r"^/api/v1/device/clips/\d{1,16}/data$")
# Forms that carry legal documents (warrants, orders, reports, use policies): up to two
# PDFs of legal_document_max_bytes each, checked again per file by the service.
DOCUMENT_PATH = re.compile(r"^(/api/v1)?/agencies/[0-9a-fA-F-]{36}/(requests|approvals)(/|$)")
FORM_OVERHEAD = 256 * 1024


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_part_bytes: int | None = None,
        max_document_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_part_bytes = max_upload_part_bytes or max_body_bytes
        self.max_document_form_bytes = max(
            max_body_bytes, 2 * (max_document_bytes or 0) + FORM_OVERHEAD
        )

    def _limit(self, scope: Scope) -> int:
        path = scope.get("path", "")
        if scope.get("method") == "PUT" and UPLOAD_PART_PATH.match(path):
            return self.max_upload_part_bytes
        if scope.get("method") == "POST" and DOCUMENT_PATH.match(path):
            return self.max_document_form_bytes
        return self.max_body_bytes

    def _too_large(self, request_id: str, limit: int) -> list[Message]:
        body = json.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"The request body is larger than {limit} bytes.",
                    "details": {"max_bytes": limit},
                }
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (REQUEST_ID_HEADER.encode(), request_id.encode()),
            (b"connection", b"close"),
        ]
        return [
            {"type": "http.response.start", "status": 413, "headers": headers},
            {"type": "http.response.body", "body": body},
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        supplied = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = supplied if _SAFE_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        declared = headers.get(b"content-length", b"0")
        limit = self._limit(scope)
        overflowed = False
        received = 0

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal status
            if overflowed:  # the app's own answer to the aborted read is replaced below
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers[REQUEST_ID_HEADER] = request_id
                for name, value in SECURITY_HEADERS.items():
                    response_headers.setdefault(name, value)
            await send(message)

        try:
            if not declared.isdigit() or int(declared) > limit:
                # Refused before a byte of the body is read.
                overflowed = True
            else:
                with contextlib.suppress(BodyTooLarge):
                    await self.app(scope, limited_receive, guarded_send)
            if overflowed:
                status = 413
                for message in self._too_large(request_id, limit):
                    await send(message)
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")
