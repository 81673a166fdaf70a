"""Web Push: one message to one subscription (RFC 8030), its body encrypted for the
browser (RFC 8291, aes128gcm) and signed for the push service (RFC 8292, VAPID).

`send_push` never raises for what a push service or the network does: every outcome is a
`PushResult` the caller records (sent, expired: delete the subscription, failed: retry
if `retryable`). It follows no redirect and ignores proxy variables and .netrc, and
outside development it refuses endpoints that name or resolve to a private, loopback or
link-local address, so a subscription cannot aim the server at an internal host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from doorwarden.notify.vapid import VapidKey

URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 section 5.3
MAX_TTL_S = 28 * 24 * 3600  # what push services keep at most (FCM, Mozilla: 4 weeks)
# A push service accepts 4096 bytes of body at least (RFC 8030 7.2): 86 of header, 16 of
# tag and 1 of padding delimiter leave 3993 for the payload in one record.
RECORD_SIZE = 4096
MAX_PAYLOAD_BYTES = RECORD_SIZE - 86 - 16 - 1
ERROR_SNIPPET = 200  # bytes of a push service's error body kept for the record
# Host names that are never a push service: they name this machine or its network.
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet")


class PushStatus(StrEnum):
    sent = "sent"
    failed = "failed"
    expired = "expired"


@dataclass(frozen=True)
class PushResult:
    status: PushStatus
    http_status: int | None = None
    error: str | None = None
    retryable: bool = False  # worth trying again later (429, 5xx, timeouts, network)
    retry_after_s: float | None = None  # the push service's Retry-After, when it said


class PushTarget(Protocol):
    """What a push needs of a subscription (the PushSubscription row has these)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def p256dh(self) -> bytes: ...
    @property
    def auth(self) -> bytes: ...


class EndpointRefused(ValueError):
    """A push endpoint the server will not send to (the message says why)."""


def _private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_endpoint(endpoint: str, *, development: bool) -> str:
    """The endpoint's host if the server may send to it, else EndpointRefused. Outside
    development: https only, and the host a public DNS name or a public address. A name
    whose last label is numeric is refused, as are one-label names: resolvers read
    `2130706433` or `127.1` as 127.0.0.1."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise EndpointRefused("The endpoint is not a valid URL.") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    allowed_schemes = ("https", "http") if development else ("https",)
    if scheme not in allowed_schemes:
        raise EndpointRefused("The endpoint must be an https URL.")
    if not host or any(c.isspace() for c in endpoint):
        raise EndpointRefused("The endpoint has no host.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise EndpointRefused("The endpoint may not carry a user name or password.")
    if parts.fragment:
        raise EndpointRefused("The endpoint may not have a fragment.")
    if port == 0:
        raise EndpointRefused("The endpoint's port is not valid.")
    if development:
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if _private(address):
            raise EndpointRefused("The endpoint is a private, loopback or reserved address.")
        return host
    lowered = host.lower()
    labels = lowered.split(".")
    if lowered == "localhost" or lowered.endswith(LOCAL_SUFFIXES):
        raise EndpointRefused("The endpoint names this machine or a local network.")
    if len(labels) < 2 or not labels[-1][:1].isalpha():
        raise EndpointRefused("The endpoint's host is not a public DNS name.")
    return host


async def _check_resolved(host: str, port: int) -> str | None:
    """Why the host may not be reached (it resolves to a private address), else None."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"resolve: {exc}"
    for info in infos:
        if _private(ipaddress.ip_address(info[4][0])):
            return "endpoint_private_address"
    return None


def encode_payload(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encrypt(plaintext: bytes, *, p256dh: bytes, auth: bytes) -> bytes:
    """The aes128gcm body (RFC 8291): a fresh ephemeral ECDH key and salt per message,
    one record (http_ece, the encoder pywebpush uses)."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        plaintext,
        salt=os.urandom(16),
        private_key=ephemeral,
        dh=p256dh,
        auth_secret=auth,
        version="aes128gcm",
        rs=RECORD_SIZE,
    )
    return body


def new_client(*, timeout_s: float = 10.0, max_connections: int = 100) -> httpx.AsyncClient:
    """An HTTP/1.1 client for pushes: keep-alive connections reused across sends, no
    redirects, no proxy settings or .netrc from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the caller's own backoff applies


def _result(status: int, headers: httpx.Headers, snippet: str) -> PushResult:
    if 200 <= status < 300:  # 201 Created (RFC 8030), 202 for a receipt request
        return PushResult(PushStatus.sent, status)
    if status in (404, 410):  # the subscription is gone for good
        return PushResult(PushStatus.expired, status, snippet or "subscription gone")
    retryable = status == 429 or status >= 500
    error = snippet or f"HTTP {status}"
    if 300 <= status < 400:
        error = "redirect refused"
    return PushResult(
        PushStatus.failed,
        status,
        error,
        retryable=retryable,
        retry_after_s=_retry_after(headers.get("retry-after")) if retryable else None,
    )


async def send_push(
    subscription: PushTarget,
    payload: dict[str, Any],
    *,
    ttl: int,
    urgency: str = "normal",
    vapid: VapidKey,
    client: httpx.AsyncClient | None = None,
    development: bool = False,
    now: datetime | None = None,
) -> PushResult:
    """Send `payload` (JSON, encrypted) to one subscription. `client`: a shared client
    (new_client) to reuse connections across many sends; without one, a client is made
    for this send alone. `development` allows http and private endpoints (loopback tests,
    the demo)."""
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}")
    if not 0 <= ttl <= MAX_TTL_S:
        raise ValueError(f"ttl must be between 0 and {MAX_TTL_S} seconds")
    plaintext = encode_payload(payload)
    if len(plaintext) > MAX_PAYLOAD_BYTES:
        return PushResult(PushStatus.failed, None, "payload_too_large")
    endpoint = subscription.endpoint
    try:
        host = check_endpoint(endpoint, development=development)
    except EndpointRefused as exc:
        return PushResult(PushStatus.failed, None, f"endpoint_refused: {exc}")
    if not development:
        parts = urlsplit(endpoint)
        refused = await _check_resolved(host, parts.port or 443)
        if refused is not None:
            retry = refused.startswith("resolve")
            return PushResult(PushStatus.failed, None, refused, retryable=retry)
    try:
        body = encrypt(plaintext, p256dh=subscription.p256dh, auth=subscription.auth)
    except (ValueError, http_ece.ECEException) as exc:  # a key that is no P-256 point
        return PushResult(PushStatus.failed, None, f"bad_subscription_keys: {exc}")
    headers = {
        "TTL": str(ttl),
        "Urgency": urgency,
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "Authorization": vapid.authorization(endpoint, now or datetime.now(UTC)),
    }
    own_client = client is None
    http = client or new_client()
    try:
        async with http.stream("POST", endpoint, content=body, headers=headers) as response:
            snippet = b""
            async for chunk in response.aiter_bytes():
                snippet += chunk
                if len(snippet) >= ERROR_SNIPPET:
                    break
            text = snippet[:ERROR_SNIPPET].decode("utf-8", "replace").strip()
            return _result(response.status_code, response.headers, text)
    except httpx.TimeoutException:
        return PushResult(PushStatus.failed, None, "timeout", retryable=True)
    except httpx.HTTPError as exc:
        return PushResult(PushStatus.failed, None, f"network: {exc!r}"[:200], retryable=True)
    finally:
        if own_client:
            await http.aclose()


class PushSender:
    """One VAPID key and one pooled client for many sends (the dispatcher, the bench)."""

    def __init__(
        self,
        vapid: VapidKey,
        *,
        timeout_s: float = 10.0,
        development: bool = False,
        max_connections: int = 100,
    ) -> None:
        self.vapid = vapid
        self.development = development
        self.client = new_client(timeout_s=timeout_s, max_connections=max_connections)

    async def send(
        self,
        subscription: PushTarget,
        payload: dict[str, Any],
        *,
        ttl: int,
        urgency: str = "normal",
        now: datetime | None = None,
    ) -> PushResult:
        return await send_push(
            subscription,
            payload,
            ttl=ttl,
            urgency=urgency,
            vapid=self.vapid,
            client=self.client,
            development=self.development,
            now=now,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> PushSender:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()
