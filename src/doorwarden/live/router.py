"""The two WebSockets of live view (docs/live-view.md): the agent's outbound control and
media connection, and a viewer's stream.

WebSocket routes cannot use `deps.authorize` (FastAPI gives them no Request), so each
handler makes the same policy decision itself, before the handshake completes: a refused
caller gets an HTTP status and the usual JSON error body, never an open socket. Each
handler holds a database session only while it checks and audits, never for the
lifetime of the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketDisconnect, WebSocketState

from doorwarden import policy
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clock import Clock
from doorwarden.config import Settings
from doorwarden.crypto import strict_json
from doorwarden.crypto.errors import MalformedError
from doorwarden.deps import client_address, principal_of
from doorwarden.devices.models import Device
from doorwarden.devices.settings import link as settings_link
from doorwarden.devices.settings import push as settings_push
from doorwarden.errors import DomainError
from doorwarden.events import link as events_link
from doorwarden.events.wake import notify_wake
from doorwarden.live.relay import DEFAULT_CAMERA, AgentLink, Channel, LiveHub, Viewer
from doorwarden.live.service import live_device
from doorwarden.live.talk import TalkViolation, browser_message
from doorwarden.live.talk_viewer import TalkViewer
from doorwarden.modes import push as modes_push

log = structlog.get_logger("doorwarden.live")
router = APIRouter(tags=["live"])

HELLO_TIMEOUT_S = 10.0
MAX_CAMERAS = 64  # as the agent allows (agent/live_link.py)
MAX_CAMERA_NAME = 100
MAX_TEXT = 4096
# An agent's `settings_applied` carries every field as applied (polygons too): up to
# 16 KiB from the agent, taken up to this much, and only that message.
MAX_SETTINGS_TEXT = 64 * 1024
# An end-to-end stream's `init` carries its session key wrapped to each member (at most
# crypto/live.py MAX_RECIPIENTS, about 190 bytes each) and the camera's signature.
MAX_INIT_TEXT = 16 * 1024
LARGER_TEXT = {"settings_applied": MAX_SETTINGS_TEXT, "init": MAX_INIT_TEXT}
# Close codes (4000-4999 are the application's own).
CLOSE_POLICY = 1008  # a malformed message from an agent
CLOSE_REPLACED = 4000  # the same camera connected again
CLOSE_REVOKED = 4403  # a viewer who may no longer watch


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def _deny(ws: WebSocket, status: int, code: str, message: str) -> None:
    body = {"error": {"code": code, "message": message, "details": None}}
    try:
        await ws.send_denial_response(JSONResponse(body, status_code=status))
    except RuntimeError:  # a server without the denial-response extension: a bare 403
        await ws.close(code=CLOSE_POLICY)


def _state(ws: WebSocket) -> tuple[Settings, Clock, LiveHub]:
    state = ws.app.state
    return state.settings, state.clock, state.live_hub


def _context(ws: WebSocket, settings: Settings) -> RequestContext:
    return RequestContext(
        client_address=client_address(ws, settings),
        user_agent=ws.headers.get("user-agent"),
    )


async def _principal(ws: WebSocket, db: AsyncSession) -> policy.Principal:
    settings, clock, _ = _state(ws)
    try:
        return await principal_of(ws, db, settings, clock)
    except DomainError as exc:
        raise Refused(exc.status_code, exc.code, exc.message) from exc


# -- the agent ---------------------------------------------------------------------------
@router.websocket("/api/v1/device/live")
async def agent_live(ws: WebSocket) -> None:
    settings, _, hub = _state(ws)
    try:
        if not settings.development and not _over_tls(ws, settings):
            raise Refused(403, "tls_required", "Live streams need TLS (wss://).")
        async with ws.app.state.sessionmaker() as db:
            principal = await _principal(ws, db)
            if not policy.decide(principal, policy.Action.live_stream, policy.Instance()).allowed:
                raise Refused(401, "not_authenticated", "This is for a paired camera.")
            device: Device = ws.state.device
            await db.commit()  # last_seen_at
    except Refused as exc:
        await _deny(ws, exc.status, exc.code, exc.message)
        return
    await ws.accept()
    link = AgentLink(device.id, ws.send_text, lambda: ws.close(code=CLOSE_REPLACED), ws.send_bytes)
    try:
        cameras = _hello(await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT_S))
        # The household's mode comes first; a change committed meanwhile waits on the lock
        # and then finds this agent attached (modes/push.py).
        async with (
            modes_push.household_lock(device.household_id),
            settings_push.device_lock(device.id),
        ):
            # Then its cameras' settings (devices/settings/push.py): a change committed
            # meanwhile waits on the device's lock and then finds this agent attached.
            # Read before the mode is sent, so that nothing but sends stands between the
            # mode (which an agent may take as "connected") and the attach.
            state = ws.app.state
            settings_messages = await settings_link.on_connect(
                state.sessionmaker, state.log_signer, device.id, state.clock.now()
            )
            await _send_mode(ws, device, cameras)
            for body in settings_messages:
                await ws.send_text(json.dumps(body))
            previous = await hub.attach(link, cameras)
        log.info("live.agent_connected", device=str(device.id), cameras=cameras)
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous.close()
        await _pump_agent(ws, hub, link)
    except (ValueError, TimeoutError) as exc:
        log.warning("live.agent_refused", device=str(device.id), error=str(exc))
        with contextlib.suppress(Exception):
            await ws.close(code=CLOSE_POLICY, reason=str(exc)[:120])
    except WebSocketDisconnect:
        pass
    finally:
        hub.detach(link)
        log.info("live.agent_disconnected", device=str(device.id))


async def _send_mode(ws: WebSocket, device: Device, cameras: list[str]) -> None:
    """The household's mode, right after the hello (docs/modes.md). If it cannot be read
    now the agent keeps the mode it saved, and hears the next change."""
    state = ws.app.state
    try:
        async with state.sessionmaker() as db:
            message = await modes_push.message_for(
                db, device.household_id, device.id, cameras, state.clock.now()
            )
        await ws.send_text(json.dumps(message))
    except WebSocketDisconnect:
        raise
    except Exception as exc:  # noqa: BLE001 - the link lives; the agent keeps its mode
        log.warning("live.mode_send_failed", device=str(device.id), error=repr(exc))


def _over_tls(ws: WebSocket, settings: Settings) -> bool:
    """TLS to us, or to a trusted reverse proxy that says so (it terminates TLS)."""
    if ws.url.scheme == "wss":
        return True
    peer = ws.client.host if ws.client else None
    forwarded = ws.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return peer in settings.trusted_proxies and forwarded == "https"


def _hello(text: str) -> list[str]:
    message = _json(text)
    cameras = message.get("cameras")
    if message.get("type") != "hello" or not isinstance(cameras, list):
        raise ValueError("the first message must be a hello with the camera names")
    if not 1 <= len(cameras) <= MAX_CAMERAS or len(set(cameras)) != len(cameras):
        raise ValueError(f"a hello names 1 to {MAX_CAMERAS} distinct cameras")
    if not all(isinstance(c, str) and 0 < len(c) <= MAX_CAMERA_NAME for c in cameras):
        raise ValueError("camera names are non-empty strings")
    return [str(c) for c in cameras]


def _json(text: str) -> dict[str, Any]:
    if len(text) > MAX_SETTINGS_TEXT:
        raise ValueError("text message too long")
    try:
        # Bounded in nesting before parsing: a camera's "[[[[..." must not crash the link.
        message = strict_json.loads(text, max_bytes=MAX_SETTINGS_TEXT)
    except MalformedError as exc:
        raise ValueError("a text message must be JSON") from exc
    if not isinstance(message, dict):
        raise ValueError("a text message must be a JSON object")
    if len(text) > LARGER_TEXT.get(str(message.get("type")), MAX_TEXT):
        raise ValueError("text message too long")
    return message


async def _pump_agent(ws: WebSocket, hub: LiveHub, link: AgentLink) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            hub.agent_binary(link, message["bytes"])
        elif message.get("text") is not None:
            text = _json(message["text"])
            if text.get("type") == "event":
                await _agent_event(ws, link, text)
            elif text.get("type") == "settings_applied":
                state = ws.app.state
                await settings_link.applied(
                    state.sessionmaker, device_id=link.device_id, cameras=link.cameras,
                    message=text, now=state.clock.now(),
                )  # fmt: skip
            else:
                hub.agent_text(link, text)
        # Received messages may already be queued, and then `receive` does not yield:
        # let the viewers' senders run between two fragments, not after a whole burst.
        await asyncio.sleep(0)


async def _agent_event(ws: WebSocket, link: AgentLink, message: dict[str, Any]) -> None:
    """A ring (docs/live-view.md, `event`): recorded in a session of its own, committed,
    then acked. A fault of ours (the database down) sends no ack: the agent keeps the
    ring queued and sends it again, and the link stays up."""
    state = ws.app.state
    try:
        async with state.sessionmaker() as db:
            ack = await events_link.record_from_link(
                db,
                device_id=link.device_id,
                cameras=link.cameras,
                message=message,
                now=state.clock.now(),
            )
            await db.commit()
    except Exception as exc:  # noqa: BLE001 - unacked, the agent retries; the link lives
        log.warning("live.agent_event_failed", device=str(link.device_id), error=repr(exc))
        return
    await ws.send_text(json.dumps(ack.message))
    if ack.created:
        await notify_wake(state)


# -- a viewer ----------------------------------------------------------------------------
@router.websocket("/api/v1/households/{household_id}/devices/{device_id}/live")
async def viewer_live(
    ws: WebSocket, household_id: uuid.UUID, device_id: uuid.UUID, camera: str = DEFAULT_CAMERA
) -> None:
    settings, _, hub = _state(ws)
    ctx = _context(ws, settings)
    try:
        _check_origin(ws, settings)
        async with ws.app.state.sessionmaker() as db:
            principal = await _check_viewer(ws, db, household_id)
            if await live_device(db, household_id=household_id, device_id=device_id) is None:
                raise Refused(404, "not_found", "No such camera in this household.")
            actor = Actor(user_id=principal.user_id, role=str(principal.role))
            record(
                db, tag=Tag.live_start, actor=actor, ctx=ctx, household_id=household_id,
                target_type="device", target_id=device_id, extra={"camera": camera or None},
            )  # fmt: skip
            await db.commit()
    except Refused as exc:
        await _deny(ws, exc.status, exc.code, exc.message)
        return
    await ws.accept()
    viewer = Viewer(principal.user_id, settings.live_viewer_queue)
    started = time.monotonic()
    channel = await hub.join(device_id, camera[:MAX_CAMERA_NAME], viewer)
    talk = TalkViewer(
        talks=hub.talks, viewer=viewer, principal=principal, household_id=household_id,
        device_id=device_id, camera=camera[:MAX_CAMERA_NAME],
        sessionmaker=ws.app.state.sessionmaker, ctx=ctx,
    )  # fmt: skip
    ended_by = "viewer"
    try:
        ended_by = await _serve_viewer(ws, viewer, talk, household_id, settings.live_recheck_s)
    finally:
        # The socket is closed: the talk's browser heard why already, or cannot any more.
        talk_ended_by = {"viewer": "talker"}.get(ended_by, ended_by)
        await talk.end(talk_ended_by, "The talk ended.", say=False)
        hub.leave(channel, viewer)
        await _record_end(ws, ctx, principal, channel, viewer, started, ended_by, household_id)


def _check_origin(ws: WebSocket, settings: Settings) -> None:
    """A browser always sends Origin on a WebSocket; a page on another site must not ride
    on our session cookie (cross-site WebSocket hijacking: SameSite does not cover every
    case, e.g. a sibling subdomain is same-site). Scripts with a bearer token and no
    cookie may omit it."""
    origin = ws.headers.get("origin")
    if origin is None:
        if "authorization" in ws.headers:
            return
        raise Refused(403, "forbidden", "Live view must be opened from this site's page.")
    scheme = "https" if ws.url.scheme == "wss" else "http"
    allowed = {_origin(settings.public_base_url), _origin(f"{scheme}://{ws.headers.get('host')}")}
    if _origin(origin) not in allowed:
        raise Refused(403, "forbidden", "Live view must be opened from this site's page.")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _check_viewer(
    ws: WebSocket, db: AsyncSession, household_id: uuid.UUID
) -> policy.Principal:
    principal = await _principal(ws, db)
    resource = policy.HouseholdResource(household_id)
    decision = policy.decide(principal, policy.Action.live_view, resource)
    if not decision.allowed:
        if principal.is_anonymous:
            raise Refused(401, "not_authenticated", "Sign in to continue.")
        raise Refused(403, "forbidden", "You are not allowed to watch this camera.")
    return principal


async def _serve_viewer(
    ws: WebSocket, viewer: Viewer, talk: TalkViewer, household_id: uuid.UUID, recheck_s: float
) -> str:
    """Send until the viewer leaves, breaks the protocol, or may no longer watch; says
    which. A viewer sends only talk messages (docs/talk.md)."""

    async def send() -> str:
        while True:
            out = await viewer.next()
            if viewer.closed:
                return "server"
            if isinstance(out.data, bytes):
                await ws.send_bytes(out.data)
            else:
                await ws.send_text(out.data)
            viewer.sent_bytes += len(out.data)

    async def receive() -> str:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return "viewer"
            try:
                if message.get("bytes") is not None:
                    await talk.binary(message["bytes"])
                elif message.get("text") is not None:
                    await talk.text(message["text"])
            except TalkViolation as exc:
                reason = exc.reason.encode()[:120].decode(errors="ignore")  # 123 bytes at most
                await ws.close(code=exc.code, reason=reason)
                return exc.ended_by

    async def recheck() -> str:
        while True:
            await asyncio.sleep(recheck_s)
            async with ws.app.state.sessionmaker() as db:
                try:
                    await _check_viewer(ws, db, household_id)
                except Refused:
                    words = "You may no longer talk through this camera."
                    if talk.talks.held_by(viewer) is not None:
                        await talk.end("revoked", words, say=False)
                        await ws.send_text(browser_message("ended", words))
                    await ws.close(code=CLOSE_REVOKED, reason="no longer allowed to watch")
                    return "revoked"

    tasks = [asyncio.ensure_future(t()) for t in (send, receive, recheck)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = done.pop()
        return first.result() if first.exception() is None else "disconnected"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if ws.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await ws.close()


async def _record_end(
    ws: WebSocket,
    ctx: RequestContext,
    principal: policy.Principal,
    channel: Channel,
    viewer: Viewer,
    started: float,
    ended_by: str,
    channel_household: uuid.UUID,
) -> None:
    async with ws.app.state.sessionmaker() as db:
        record(
            db,
            tag=Tag.live_end,
            actor=Actor(user_id=principal.user_id, role=str(principal.role)),
            ctx=ctx,
            household_id=channel_household,
            target_type="device",
            target_id=channel.device_id,
            extra={
                "camera": channel.camera or None,
                "duration_s": round(time.monotonic() - started, 1),
                "bytes": viewer.sent_bytes,
                "fell_behind": viewer.fell_behind,
                "ended_by": ended_by,
            },
        )
        await db.commit()
