"""Sending one delivery: one signed POST to the checked, pinned address (ssrf.py), no
redirect followed, no proxy or .netrc from the environment, the answer's body read up to
ANSWER_BYTES and dropped, the whole attempt bounded by the timeout. `send` never raises
for what the network or the receiver does: every outcome is an `Outcome` to record.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import httpx

from doorwarden.integrations.webhooks import signing, ssrf

ANSWER_BYTES = 1024
USER_AGENT = "doorwarden-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    retryable: bool = True
    gone: bool = False  # 410: the receiver wants no more (the endpoint is turned off)
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The public CAs (certifi, as httpx uses) and the operator's own, if any."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def new_client(ca_file: Path | None, timeout_s: float) -> httpx.AsyncClient:
    # No keep-alive: connections are made to an address, and one made for a host name
    # (its SNI, its certificate) must never carry another host's request to that address.
    return httpx.AsyncClient(
        verify=tls_context(ca_file),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=0),
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _judge(status: int, headers: httpx.Headers, ms: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome(status, None, ms)
    if 300 <= status < 400:
        return Outcome(status, "redirect not followed: update the webhook's URL", ms)
    if status == 410:
        return Outcome(status, "410 Gone: the receiver asked for no more", ms, False, True)
    return Outcome(
        status, f"HTTP {status}", ms, retry_after_s=_retry_after(headers.get("retry-after"))
    )


async def send(
    client: httpx.AsyncClient, *, url: str, keys: list[bytes], webhook_id: str,
    payload: dict[str, Any], timestamp: int, development: bool, resolver: ssrf.Resolver,
    timeout_s: float,
) -> Outcome:  # fmt: skip
    started = time.monotonic()

    def ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = ssrf.check_url(url, development=development)
        pinned = await ssrf.pin(target, development=development, resolver=resolver)
    except ssrf.Refused as exc:
        # A DNS answer may change back: retried like a network failure, recorded as refused.
        return Outcome(None, f"refused: {exc}", ms())
    signed = signing.sign(keys, webhook_id, timestamp, body_of(payload))
    headers = signed.headers | {"host": target.host_header, "user-agent": USER_AGENT}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        async with asyncio.timeout(timeout_s):
            request = client.build_request(
                "POST", pinned.url, content=signed.body, headers=headers, extensions=extensions
            )
            response = await client.send(request, stream=True)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= ANSWER_BYTES:
                        break
            finally:
                await response.aclose()
            return _judge(response.status_code, response.headers, ms())
    except TimeoutError:
        return Outcome(None, "timeout", ms())
    except httpx.TimeoutException:
        return Outcome(None, "timeout", ms())
    except httpx.HTTPError as exc:
        return Outcome(None, f"network: {type(exc).__name__}: {exc}"[:300], ms())
    except ssl.SSLError as exc:
        return Outcome(None, f"tls: {exc}"[:300], ms())
