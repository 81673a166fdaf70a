"""ASGI middleware: request ids, access logs, security headers, caching of API answers,
request body limits."""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doorwarden.http_errors import fault_response
from doorwarden.policy import Action

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


# Parts of a sealed clip a camera uploads: the one kind of body allowed to be large
# (fewer, bigger requests per clip), authenticated and checked against its manifest.
UPLOAD_PART_PATH = re.compile(r"^/api/v1/device/clips/\d{1,16}/data$")
# Forms that carry legal documents (warrants, orders, reports, use policies): up to two
# PDFs of legal_document_max_bytes each, checked again per file by the service. Allowed
# only to a caller the document gate lets through; anyone else gets the ordinary limit.
DOCUMENT_PATH = re.compile(
    r"^(?:/api/v1)?/agencies/(?P<agency>[0-9a-fA-F-]{36})/(?P<section>requests|approvals)(?:/|$)"
)
FORM_OVERHEAD = 256 * 1024
# Called with (scope, agency id, section of DOCUMENT_PATH) before the body is read: True,
# the caller may send a document-sized body; False, the ordinary limit; an ASGI app (a
# 401 or 403 response), the answer, sent instead of running the app (deps.document_gate).
DocumentGate = Callable[[Scope, str, str], Awaitable["bool | ASGIApp"]]
# Bodies a route reads raw and parses itself within its own bounds (a camera's manifest:
# SignedManifest.loads), so that its refusals keep their codes (malformed_manifest).
RAW_BODY_PATH = re.compile(r"^/api/v1/device/")
# Whether a JSON body nests deeper than a depth (crypto.strict_json, wired by main.py).
DepthCheck = Callable[[bytes, int], bool]
# The API's answers are private (no-store) unless the route's policy decision was one of
# these, whose answer is the same for everyone: the public log, the transparency report
# and coverage map, published approvals and programmes, the OpenAPI document.
PUBLIC_READS = frozenset({Action.log_read, Action.page_public, Action.health_read})


def _private_api(scope: Scope) -> bool:
    """An API answer no cache may keep: every one under /api/ but those of a public read
    (the decision authorize() recorded; none recorded, as for a 404 or a 422, is private)."""
    if not scope["path"].startswith("/api/"):
        return False  # pages set no-store themselves (web/render.py); static files may cache
    action, decision = scope.get("state", {}).get("policy_decision", (None, None))
    public = action in PUBLIC_READS and decision is not None and decision.allowed
    return not (public and scope["method"] in ("GET", "HEAD"))


async def _nothing() -> Message:
    """The receive of a request refused unread: its body is not the refusal's business."""
    return {"type": "http.request", "body": b"", "more_body": False}


def _json_body(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """A body FastAPI will parse as JSON (application/json or */*+json), on the API."""
    if not scope["path"].startswith("/api/") or RAW_BODY_PATH.match(scope["path"]):
        return False
    media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    kind, _, subtype = media.partition(b"/")
    return kind == b"application" and (subtype == b"json" or subtype.endswith(b"+json"))


class BodyRefused(Exception):
    """Raised from receive(); the middleware answers with its own error (413, or 400 for
    JSON nested too deep) whatever the app made of the aborted read."""


class BodyTooLarge(BodyRefused):
    pass


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_part_bytes: int | None = None,
        max_document_bytes: int | None = None,
        document_gate: DocumentGate | None = None,
        json_too_deep: DepthCheck | None = None,
        max_json_depth: int = 32,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_part_bytes = max_upload_part_bytes or max_body_bytes
        self.max_document_form_bytes = max(
            max_body_bytes, 2 * (max_document_bytes or 0) + FORM_OVERHEAD
        )
        self.document_gate = document_gate
        self.json_too_deep = json_too_deep
        self.max_json_depth = max_json_depth

    async def _limit(self, scope: Scope) -> int | ASGIApp:
        """The body limit of this request, or the refusal to answer it with unread."""
        path = scope.get("path", "")
        if scope.get("method") == "PUT" and UPLOAD_PART_PATH.match(path):
            # The camera's token is checked by the route before it reads the part.
            return self.max_upload_part_bytes
        document = DOCUMENT_PATH.match(path) if scope.get("method") == "POST" else None
        if document is not None and self.document_gate is not None:
            # Authenticated first, then the larger body: FastAPI parses a form before the
            # route's own dependencies run, so the policy is asked here, before the body.
            verdict = await self.document_gate(scope, document["agency"], document["section"])
            if verdict is True:
                return self.max_document_form_bytes
            if verdict is not False:
                return verdict
        return self.max_body_bytes

    @staticmethod
    def _error(
        request_id: str, status: int, code: str, message: str, details: Any
    ) -> list[Message]:
        body = json.dumps({"error": {"code": code, "message": message, "details": details}})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (REQUEST_ID_HEADER.encode(), request_id.encode()),
            (b"cache-control", b"no-store"),
        ]
        if status == 413:  # the rest of the body is not read: the connection cannot go on
            headers.append((b"connection", b"close"))
        return [
            {"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body.encode()},
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
        try:
            decided = await self._limit(scope)
        except Exception as exc:
            # The document gate reads the database before the app runs, outside its error
            # handlers: a database that is down is answered here as it is there (503).
            fault = fault_response(Request(scope), exc)
            if fault is None:
                raise
            decided = fault
        limit, refusal = (decided, None) if isinstance(decided, int) else (0, decided)
        overflowed = too_deep = False
        received = 0
        # A JSON body is measured before the app has its last byte: FastAPI's parser
        # recurses per level, and what it returns reaches validators and serialisers that
        # recurse too (a GeoJSON field 300 levels deep was a 500).
        json_parts: list[bytes] | None = (
            [] if self.json_too_deep is not None and _json_body(scope, headers) else None
        )

        async def limited_receive() -> Message:
            nonlocal received, overflowed, too_deep
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise BodyTooLarge
                if json_parts is not None and self.json_too_deep is not None:
                    json_parts.append(message.get("body", b""))
                    complete = not message.get("more_body", False)
                    if complete and self.json_too_deep(b"".join(json_parts), self.max_json_depth):
                        too_deep = True
                        raise BodyRefused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal status
            if overflowed or too_deep:  # the app's answer to the aborted read is replaced
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers[REQUEST_ID_HEADER] = request_id
                for name, value in SECURITY_HEADERS.items():
                    response_headers.setdefault(name, value)
                if _private_api(scope):
                    response_headers.setdefault("cache-control", "no-store")
                if refusal is not None:  # the body stays unread: do not wait for the rest
                    response_headers["connection"] = "close"
            await send(message)

        try:
            if refusal is not None:
                await refusal(scope, _nothing, guarded_send)
            elif not declared.isdigit() or int(declared) > limit:
                # Refused before a byte of the body is read.
                overflowed = True
            else:
                with contextlib.suppress(BodyRefused):
                    await self.app(scope, limited_receive, guarded_send)
            answer: list[Message] = []
            if overflowed:
                status = 413
                text = f"The request body is larger than {limit} bytes."
                answer = self._error(
                    request_id, 413, "payload_too_large", text, {"max_bytes": limit}
                )
            elif too_deep:
                status = 400
                depth = self.max_json_depth
                text = f"The JSON body nests arrays and objects deeper than {depth} levels."
                answer = self._error(request_id, 400, "json_too_deep", text, {"max_depth": depth})
            for part in answer:
                await send(part)
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")
