"""Live view's relay and its authorisation, on a real server (uvicorn on loopback) with
real WebSocket clients.

The agent here is a WebSocket client that speaks the protocol of docs/live-view.md with
opaque bytes: the relay forwards bytes and never decodes them, so what matters is which
bytes reach whom. The real agent's streaming is tested in tests/unit/agent/live/
and, end to end with real video in chromium, in tests/e2e/test_live_view.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from doorwarden.accounts.models import User
from doorwarden.accounts.sessions import SESSION_COOKIE
from doorwarden.config import Settings
from doorwarden.roles import Role
from tests.factories import PASSWORD, Factory
from tests.live_server import running_server, self_signed_certificate

LINGER_S = 0.4
# A handshake is quick; under a loaded CI machine (4 workers on PostgreSQL) one took over
# 5 s. Waiting longer costs nothing when it works.
OPEN_TIMEOUT_S = 20
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")


@dataclass
class Live:
    url: str
    household: uuid.UUID
    device: uuid.UUID
    token: str  # the camera's device token
    people: dict[str, User]
    verify: ssl.SSLContext | bool = True

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://")

    def viewer_path(self, household: uuid.UUID | None = None) -> str:
        return f"/api/v1/households/{household or self.household}/devices/{self.device}/live"

    def page_path(self) -> str:
        return f"/households/{self.household}/cameras/{self.device}/live"

    def cookie(self, who: str) -> str:
        """A fresh session of `who`, as a Cookie header value."""
        response = httpx.post(
            f"{self.url}/api/v1/session",
            json={"email": self.people[who].email, "password": PASSWORD},
            verify=self.verify,
        )
        assert response.status_code == 200, response.text
        return f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE]}"

    @asynccontextmanager
    async def signed_in(self, who: str) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(base_url=self.url, verify=self.verify) as client:
            response = await client.post(
                "/api/v1/session", json={"email": self.people[who].email, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            client.headers["x-csrf-token"] = response.json()["csrf_token"]
            yield client

    def watch(self, who: str, *, camera: str | None = None, origin: str | None = None) -> Any:
        path = self.viewer_path() + (f"?camera={camera}" if camera else "")
        return connect(
            self.ws + path,
            additional_headers={"Cookie": self.cookie(who)},
            origin=Origin(origin or self.url),
            open_timeout=OPEN_TIMEOUT_S,
        )

    def agent(self, token: str | None = None) -> Any:
        return connect(
            self.ws + "/api/v1/device/live",
            additional_headers={"Authorization": f"Bearer {token or self.token}"},
            open_timeout=OPEN_TIMEOUT_S,
        )


async def make_people(factory: Factory) -> tuple[dict[str, User], uuid.UUID, uuid.UUID]:
    owner = await factory.user()
    shared = await factory.user()
    foreign = await factory.user()
    admin = await factory.user(Role.operator_admin)
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    await factory.household(foreign, "Next door")
    agency = await factory.agency(admin)
    people = {
        "owner": owner,
        "shared": shared,
        "foreign": foreign,
        "operator": admin,
        "officer": await factory.user(Role.agency_officer, agency_id=agency),
        "reviewer": await factory.user(Role.legal_reviewer),
        "auditor": await factory.user(Role.auditor),
    }
    return people, home, agency


@asynccontextmanager
async def live_server(
    settings: Settings, factory: Factory, tls: tuple[Path, Path] | None = None, **overrides: Any
) -> AsyncIterator[Live]:
    people, home, _ = await make_people(factory)
    camera = await factory.camera(people["owner"], home)
    token = camera.client.headers["authorization"].removeprefix("Bearer ")
    await camera.client.aclose()
    update = {"development": True, "live_linger_s": LINGER_S, **overrides}
    with running_server(settings.model_copy(update=update), tls=tls) as url:
        yield Live(url, home, camera.id, token, people)


@pytest.fixture
async def live(settings: Settings, factory: Factory) -> AsyncIterator[Live]:
    async with live_server(settings, factory) as server:
        yield server


INIT = b"\x00\x00" + b"ftyp-and-moov"


def fragment(n: int, *, key: bool) -> bytes:
    return bytes([1 if key else 2, 0]) + f"fragment-{n}".encode()


async def hello(agent: ClientConnection, cameras: list[str] | None = None) -> None:
    await agent.send(json.dumps({"type": "hello", "cameras": cameras or ["front"], "version": 1}))
    # The server answers a hello with the household's mode, before anything else
    # (docs/modes.md; tests/functional/modes/ test it).
    mode = json.loads(await asyncio.wait_for(agent.recv(), 5))
    assert mode["type"] == "mode", mode


async def control(agent: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(agent.recv(), 5)
    assert isinstance(message, str)
    body: dict[str, Any] = json.loads(message)
    return body


async def stream_init(agent: ClientConnection, camera: str = "front", index: int = 0) -> None:
    mime = 'video/mp4; codecs="avc1.42c01f"'
    await agent.send(json.dumps({"type": "init", "camera": camera, "mime": mime}))
    await agent.send(bytes([0, index]) + b"ftyp-and-moov")


async def until_bytes(viewer: ClientConnection) -> bytes:
    """The next binary message, skipping state messages."""
    while True:
        message = await asyncio.wait_for(viewer.recv(), 5)
        if isinstance(message, bytes):
            return message


async def close_code(ws: ClientConnection) -> int:
    """Read until the server closes the connection; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else -1


async def until_state(viewer: ClientConnection, state: str) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(viewer.recv(), 5)
        if isinstance(message, str) and json.loads(message).get("state") == state:
            body: dict[str, Any] = json.loads(message)
            return body


async def test_two_members_share_one_upstream_that_stops_after_the_last_leaves(live: Live) -> None:
    async with live.agent() as agent:
        await hello(agent)
        async with live.watch("owner") as owner:
            assert await control(agent) == {"type": "start", "camera": "front"}
            await stream_init(agent)
            await agent.send(fragment(1, key=True))
            await agent.send(fragment(2, key=False))
            assert await until_bytes(owner) == b"ftyp-and-moov"
            assert await until_bytes(owner) == b"fragment-1"
            assert await until_bytes(owner) == b"fragment-2"
            # A late viewer gets the init segment and the GOP so far at once, from its
            # keyframe, without the camera being asked to start again.
            async with live.watch("shared") as shared:
                assert await until_bytes(shared) == b"ftyp-and-moov"
                assert await until_bytes(shared) == b"fragment-1"
                assert await until_bytes(shared) == b"fragment-2"
                await agent.send(fragment(3, key=False))
                assert await until_bytes(shared) == b"fragment-3"
                assert await until_bytes(owner) == b"fragment-3"
        # Both left: after the linger, and only then, the camera is told to stop.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(agent.recv(), LINGER_S / 4)
        assert await control(agent) == {"type": "stop", "camera": "front"}


async def test_a_reload_within_the_linger_does_not_restart_the_camera(live: Live) -> None:
    async with live.agent() as agent:
        await hello(agent)
        async with live.watch("owner"):
            assert (await control(agent))["type"] == "start"
        async with live.watch("owner"):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(agent.recv(), LINGER_S * 2)


@pytest.mark.parametrize("who", ["officer", "reviewer", "operator", "auditor", "foreign"])
async def test_nobody_outside_the_household_reaches_live_by_any_path(live: Live, who: str) -> None:
    async with live.signed_in(who) as client:
        page = await client.get(live.page_path())
        assert page.status_code == 403, page.text
    cookie = live.cookie(who)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            live.ws + live.viewer_path(),
            additional_headers={"Cookie": cookie},
            origin=Origin(live.url),
        ):
            pass
    assert refused.value.response.status_code == 403
    body = json.loads(refused.value.response.body or b"{}")
    assert body["error"]["code"] == "forbidden"
    # Nor can a person open the camera's side of the relay with their session.
    with pytest.raises(InvalidStatus) as as_camera:
        async with connect(live.ws + "/api/v1/device/live", additional_headers={"Cookie": cookie}):
            pass
    assert as_camera.value.response.status_code == 401


async def test_anonymous_and_the_camera_itself_cannot_watch(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.url) as client:
        page = await client.get(live.page_path())
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
    with pytest.raises(InvalidStatus) as anonymous:
        async with connect(live.ws + live.viewer_path(), origin=Origin(live.url)):
            pass
    assert anonymous.value.response.status_code == 401
    # A camera's token streams; it never watches (not even itself): it is no person.
    with pytest.raises(InvalidStatus) as camera:
        async with connect(
            live.ws + live.viewer_path(),
            additional_headers={"Authorization": f"Bearer {live.token}"},
        ):
            pass
    assert camera.value.response.status_code == 401


async def test_a_member_cannot_open_another_households_camera_through_their_own(
    settings: Settings, factory: Factory
) -> None:
    async with live_server(settings, factory) as live:
        async with live.signed_in("foreign") as client:
            theirs = (await client.get("/api/v1/households")).json()[0]["id"]
        cookie = live.cookie("foreign")
        # Their own household in the path, our camera's id: the camera is not theirs.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                live.ws + live.viewer_path(household=uuid.UUID(theirs)),
                additional_headers={"Cookie": cookie},
                origin=Origin(live.url),
            ):
                pass
        assert refused.value.response.status_code == 404


async def test_a_page_on_another_site_cannot_ride_on_the_cookie(live: Live) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with live.watch("owner", origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_bad_agent_credentials_are_refused(live: Live) -> None:
    for token in ("dwd_not-a-token", "dwt_a-user-token-is-not-a-camera"):
        with pytest.raises(InvalidStatus) as refused:
            async with live.agent(token):
                pass
        assert refused.value.response.status_code == 401


async def test_a_viewer_cannot_inject_frames(live: Live) -> None:
    async with (
        live.agent() as agent,
        live.watch("owner") as owner,
        live.watch("shared") as attacker,
    ):
        await hello(agent)
        await control(agent)  # start
        await stream_init(agent)
        await agent.send(fragment(1, key=True))
        assert await until_bytes(owner) == b"ftyp-and-moov"
        await attacker.send(bytes([1, 0]) + b"injected")
        assert await close_code(attacker) == 1003
        await agent.send(fragment(2, key=False))
        assert await until_bytes(owner) == b"fragment-1"
        assert await until_bytes(owner) == b"fragment-2"  # and nothing injected between


async def test_malformed_agent_messages_close_its_connection(live: Live) -> None:
    deep = "[" * 4_000 + "]" * 4_000  # parsing it naively ends in RecursionError
    for first in ["not json", json.dumps({"type": "hello", "cameras": []}), "x" * 10_000, deep]:
        async with live.agent() as agent:
            await agent.send(first)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(agent.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    async with live.agent() as agent:
        await hello(agent)
        await agent.send(bytes([1, 7]) + b"camera 7 does not exist")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(agent.recv(), 5)


async def test_a_dropped_camera_is_reported_and_resumes_when_it_reconnects(live: Live) -> None:
    async with live.watch("owner") as owner:
        assert (await until_state(owner, "offline"))["message"]
        async with live.agent() as agent:
            await hello(agent)
            assert (await control(agent))["type"] == "start"  # a viewer was waiting
            await stream_init(agent)
            await agent.send(fragment(1, key=True))
            assert await until_bytes(owner) == b"ftyp-and-moov"
        await until_state(owner, "offline")
        async with live.agent() as again:
            await hello(again)
            assert (await control(again))["type"] == "start"
            await stream_init(again)
            await again.send(fragment(9, key=True))
            assert await until_bytes(owner) == b"ftyp-and-moov"
            assert await until_bytes(owner) == b"fragment-9"


async def test_removing_the_camera_cuts_its_live_connection_for_good(live: Live) -> None:
    async with live.agent() as agent:
        await hello(agent)
        async with live.signed_in("owner") as client:
            path = f"/api/v1/households/{live.household}/devices/{live.device}"
            assert (await client.delete(path)).status_code == 204
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(agent.recv(), 5)
    with pytest.raises(InvalidStatus) as refused:
        async with live.agent():
            pass
    assert refused.value.response.status_code == 401


def stalled_viewer(live: Live, who: str) -> socket.socket:
    """A viewer on a stalled link: it completes the handshake, then never reads. A small
    receive buffer, so the kernel cannot hide the stall by buffering megabytes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = live.url.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {live.viewer_path()} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {live.url}\r\nCookie: {live.cookie(who)}\r\n\r\n"
    )
    sock.sendall(request.encode())
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


async def test_a_slow_viewer_falls_behind_alone(settings: Settings, factory: Factory) -> None:
    async with live_server(settings, factory, live_viewer_queue=4) as live:
        async with live.agent() as agent, live.watch("owner") as fast:
            await hello(agent)
            await control(agent)
            await stream_init(agent)
            payload = b"x" * 256 * 1024
            slow = stalled_viewer(live, "shared")

            async def camera() -> None:  # 12.5 MB/s: a camera's pace, not a burst
                for n in range(60):
                    await agent.send(bytes([1 if n % 10 == 0 else 2, 0]) + payload + bytes([n]))
                    await asyncio.sleep(0.02)

            async def reader() -> list[bytes]:  # a viewer on a good link keeps reading
                return [await until_bytes(fast) for _ in range(61)]

            try:
                _, got = await asyncio.gather(camera(), reader())
                assert got[0] == b"ftyp-and-moov"
                assert [g[-1] for g in got[1:]] == list(range(60))  # all, in order
            finally:
                slow.close()
        # The slow viewer's session records that it fell behind; the fast one's does not.
        ends = {e["actor_user_id"]: e["extra"] for e in _wait_for_audit(live, "live:end", 2)}
        assert ends[str(live.people["owner"].id)]["fell_behind"] == 0
        assert ends[str(live.people["shared"].id)]["fell_behind"] >= 1


async def test_each_live_session_is_audited_with_viewer_camera_and_duration(live: Live) -> None:
    async with live.agent() as agent, live.watch("shared") as viewer:
        await hello(agent)
        await control(agent)
        await stream_init(agent)
        await until_bytes(viewer)
        await asyncio.sleep(0.3)
    [start] = _wait_for_audit(live, "live:start")
    [end] = _wait_for_audit(live, "live:end")
    assert start["actor_user_id"] == end["actor_user_id"] == str(live.people["shared"].id)
    assert start["target_id"] == end["target_id"] == str(live.device)
    assert end["extra"]["duration_s"] >= 0.3
    assert end["extra"]["bytes"] >= len(b"ftyp-and-moov")


async def test_a_member_removed_while_watching_is_cut_off(
    settings: Settings, factory: Factory
) -> None:
    async with (
        live_server(settings, factory, live_recheck_s=0.3) as live,
        live.watch("shared") as viewer,
    ):
        async with live.signed_in("owner") as client:
            shared = live.people["shared"].id
            gone = await client.delete(f"/api/v1/households/{live.household}/members/{shared}")
            assert gone.status_code == 204, gone.text
        assert await close_code(viewer) == 4403


async def test_plain_ws_is_refused_for_cameras_outside_development(
    settings: Settings, factory: Factory
) -> None:
    async with live_server(settings, factory, development=False) as live:
        with pytest.raises(InvalidStatus) as refused:
            async with live.agent():
                pass
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["error"]["code"] == "tls_required"


async def test_cameras_stream_over_tls_outside_development(
    settings: Settings, factory: Factory, tmp_path: Path
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    async with live_server(settings, factory, tls=(cert, key), development=False) as live:
        trust = ssl.create_default_context(cafile=str(cert))
        url = live.url.replace("https://", "wss://") + "/api/v1/device/live"
        headers = {"Authorization": f"Bearer {live.token}"}
        async with connect(url, additional_headers=headers, ssl=trust) as agent:
            await hello(agent)
            live.verify = trust
            viewer_url = live.url.replace("https://", "wss://") + live.viewer_path()
            async with connect(
                viewer_url,
                additional_headers={"Cookie": live.cookie("owner")},
                origin=Origin(live.url),
                ssl=trust,
            ) as viewer:
                assert (await control(agent))["type"] == "start"
                await stream_init(agent)
                assert await until_bytes(viewer) == b"ftyp-and-moov"


def _audit(live: Live, tag: str) -> list[dict[str, Any]]:
    path = f"{live.url}/api/v1/households/{live.household}/audit-events"
    response = httpx.get(path, headers={"Cookie": live.cookie("owner")})
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["tag"] == tag]


def _wait_for_audit(live: Live, tag: str, count: int = 1) -> list[dict[str, Any]]:
    """live:end is written as the server notices the socket closed: moments after."""
    for _ in range(50):
        if len(found := _audit(live, tag)) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} {tag} events")


async def test_live_works_on_a_plan_that_stores_nothing(live: Live) -> None:
    async with live.signed_in("owner") as client:
        body = {"kind": "live_only", "retention_days": 30}
        plan = await client.put(f"/api/v1/households/{live.household}/plan", json=body)
        assert plan.status_code == 200, plan.text
        cameras = await client.get(f"/households/{live.household}/cameras")
        assert live.page_path() in cameras.text  # the "Watch live" link
    async with live.agent() as agent, live.watch("owner") as viewer:
        await hello(agent)
        assert (await control(agent))["type"] == "start"
        await stream_init(agent)
        assert await until_bytes(viewer) == b"ftyp-and-moov"


@pytest.mark.parametrize("who", ["owner", "shared"])
async def test_members_get_the_live_page(live: Live, who: str) -> None:
    async with live.signed_in(who) as client:
        page = await client.get(live.page_path())
    assert page.status_code == 200, page.text
    assert f'data-stream="{live.viewer_path()}"' in page.text
    assert '<script src="/static/live.js' in page.text


async def test_a_removed_camera_has_no_live_page(live: Live) -> None:
    async with live.signed_in("owner") as client:
        path = f"/api/v1/households/{live.household}/devices/{live.device}"
        assert (await client.delete(path)).status_code == 204
        assert (await client.get(live.page_path())).status_code == 404
    with pytest.raises(InvalidStatus) as refused:
        async with live.watch("owner"):
            pass
    assert refused.value.response.status_code == 404


async def test_behind_a_trusted_tls_proxy_cameras_may_connect(
    settings: Settings, factory: Factory
) -> None:
    """A reverse proxy terminating TLS says so with X-Forwarded-Proto; only a proxy the
    settings trust is believed."""
    proxied = {"Authorization": "", "X-Forwarded-Proto": "https"}
    async with live_server(settings, factory, development=False) as live:
        proxied["Authorization"] = f"Bearer {live.token}"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(live.ws + "/api/v1/device/live", additional_headers=proxied):
                pass
        assert refused.value.response.status_code == 403  # 127.0.0.1 is no trusted proxy
    trusted = {"development": False, "trusted_proxies": ["127.0.0.1"]}
    async with live_server(settings, factory, **trusted) as live:
        proxied["Authorization"] = f"Bearer {live.token}"
        async with connect(live.ws + "/api/v1/device/live", additional_headers=proxied) as agent:
            await hello(agent)
            async with live.watch("owner"):
                assert (await control(agent))["type"] == "start"


async def test_a_camera_that_vanishes_without_closing_is_noticed(
    settings: Settings, factory: Factory
) -> None:
    """A power cut sends no close frame: the server's pings go unanswered, it drops the
    connection, and the viewers are told the camera is offline."""
    async with live_server(settings, factory, live_ping_s=0.3) as live:
        agent = await live.agent().__aenter__()
        try:
            await hello(agent)
            async with live.watch("owner") as viewer:
                assert (await control(agent))["type"] == "start"
                await stream_init(agent)
                assert await until_bytes(viewer) == b"ftyp-and-moov"
                agent.transport.pause_reading()  # no more pongs from the camera
                gone = await until_state(viewer, "offline")
                assert gone["message"]
        finally:
            agent.transport.abort()


async def test_a_viewer_that_vanishes_is_cleaned_up_and_the_camera_stopped(
    settings: Settings, factory: Factory
) -> None:
    async with live_server(settings, factory, live_ping_s=0.3) as live, live.agent() as agent:
        await hello(agent)
        silent = stalled_viewer(live, "shared")  # never reads, so never answers a ping
        try:
            assert (await control(agent))["type"] == "start"
            # Noticed without any close from the viewer: its session ends, and after the
            # linger the camera is told to stop.
            assert await control(agent) == {"type": "stop", "camera": "front"}
            [end] = await asyncio.to_thread(_wait_for_audit, live, "live:end")
            assert end["actor_user_id"] == str(live.people["shared"].id)
        finally:
            silent.close()


async def test_a_viewer_asking_for_a_camera_the_agent_does_not_have_is_told(live: Live) -> None:
    async with live.agent() as agent:
        await hello(agent, ["front", "garden"])
        for name in ("nonesuch", "x" * 5000):
            async with live.watch("owner", camera=name) as viewer:
                assert (await until_state(viewer, "error"))["message"]
        async with live.watch("owner", camera="garden"):
            assert await control(agent) == {"type": "start", "camera": "garden"}
