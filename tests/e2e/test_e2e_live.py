"""End-to-end live view in chromium (docs/live-view.md, "End-to-end live view"): a real
agent (`doorwarden agent run`, a synthetic camera) paired to an end-to-end household, a
real server, and the member's page decrypting before MSE.

The relay's traffic is captured on both sides and searched for plaintext video:

* agent -> server: the agent is paired through a TCP proxy in this test, so every byte it
  sends crosses a socket we read (its live WebSocket's frames are unmasked here, as the
  server would);
* server -> viewer: Playwright's `framereceived` on the page's WebSocket.

Every captured payload must open with the session key (LiveOpener, with the member's
private key the test holds) and carry no fMP4 box or plaintext bytes in clear. If the agent
sent plaintext (or sealed with something else), these tests fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, WebSocket, WebSocketRoute, expect

from doorwarden.crypto.keys import RecipientKey, b64d, b64e, key_id
from doorwarden.crypto.live import INIT, LiveOpener
from tests.e2e.conftest import ConsoleLog, Server, open_page, serving, stop
from tests.e2e.helpers import sign_in
from tests.e2e.test_live_view import AGENT_CONFIG, FRAMES_SHOWN

BOXES = (b"ftyp", b"moov", b"moof", b"mdat")
LOCKED = "This household is end-to-end encrypted: unlock your key on this device to watch."


class Proxy:
    """A loopback TCP proxy that keeps what each client sent (a wiretap on the agent)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent: list[bytearray] = []  # per connection, client -> server
        self.sockets: list[socket.socket] = []  # closed with the proxy
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            record = bytearray()
            with self.lock:
                self.sent.append(record)
                self.sockets += [client, server]
            threading.Thread(target=_pipe, args=(client, server, record), daemon=True).start()
            threading.Thread(target=_pipe, args=(server, client, None), daemon=True).start()

    def live_messages(self) -> list[bytes | str]:
        """The messages of the agent's live WebSocket(s), in order, unmasked."""
        with self.lock:
            streams = [bytes(r) for r in self.sent if r.startswith(b"GET /api/v1/device/live")]
        out: list[bytes | str] = []
        for raw in streams:
            out += _client_frames(raw[raw.index(b"\r\n\r\n") + 4 :])
        return out

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                sock.close()


def _pipe(src: socket.socket, dst: socket.socket, record: bytearray | None) -> None:
    try:
        while data := src.recv(65536):
            if record is not None:
                record += data
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):  # the other direction closed it first
                sock.shutdown(socket.SHUT_RDWR)


def _client_frames(raw: bytes) -> list[bytes | str]:
    """RFC 6455 client frames (masked, no extensions: the agent turns compression off)."""
    messages: list[bytes | str] = []
    at, partial, opcode_of_partial = 0, bytearray(), 0
    while at + 2 <= len(raw):
        fin, opcode = raw[at] & 0x80, raw[at] & 0x0F
        size, pos = raw[at + 1] & 0x7F, at + 2
        if size == 126:
            size, pos = int.from_bytes(raw[pos : pos + 2], "big"), pos + 2
        elif size == 127:
            size, pos = int.from_bytes(raw[pos : pos + 8], "big"), pos + 8
        assert raw[at + 1] & 0x80, "a client frame is masked"
        mask, pos = raw[pos : pos + 4], pos + 4
        if pos + size > len(raw):
            break  # the capture ended mid-frame
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(raw[pos : pos + size]))
        at = pos + size
        if opcode in (1, 2):
            partial, opcode_of_partial = bytearray(body), opcode
        elif opcode == 0:
            partial += body
        else:
            continue  # ping, pong, close
        if fin:
            messages.append(bytes(partial) if opcode_of_partial == 2 else partial.decode())
    return messages


@dataclass
class E2ELive:
    server: Server
    proxy: Proxy
    household_id: str
    device_id: str
    owner: str
    nokey: str
    member_key: RecipientKey
    agent_log: Path
    viewer_frames: list[bytes | str] = field(default_factory=list)

    @property
    def page_url(self) -> str:
        return f"{self.server.url}/households/{self.household_id}/cameras/{self.device_id}/live"


@pytest.fixture(scope="module")
def e2e_live(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[E2ELive]:
    root = tmp_path_factory.mktemp("e2e-live")
    (root / "server").mkdir()
    with serving(root / "server", extra_env={"DOORWARDEN_DEVELOPMENT": "1"}) as server:
        owner, nokey = "owner@e2e-live.example", "nokey@e2e-live.example"
        for email in (owner, nokey):
            server.create_user(email, "resident")
        api = server.api(owner)
        home = str(api.post("/api/v1/households", {"name": "Sealed", "time_zone": "UTC"})["id"])
        api.post(f"/api/v1/households/{home}/members", {"email": nokey})
        member_key = RecipientKey.generate()
        put = api.client.put(
            "/api/v1/account/e2e-key", json={"public_key": b64e(member_key.public)}
        )
        assert put.status_code == 200, put.text
        put = api.client.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
        assert put.status_code == 200, put.text
        code = str(api.post(f"/api/v1/households/{home}/pairing-codes", {})["code"])
        api.close()
        proxy = Proxy(int(server.url.rsplit(":", 1)[1]))
        config = root / "agent.yaml"
        config.write_text(AGENT_CONFIG.format(root=root))
        through = f"http://127.0.0.1:{proxy.port}"  # everything the agent sends is captured
        server.cli("agent", "pair", "--server", through, "--code", code, "--config", str(config))
        state = json.loads((root / "state" / "device.json").read_text())
        assert state["mode"] == "e2e", state
        log_path = root / "agent.log"
        log = log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
        agent = subprocess.Popen(
            [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(config)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield E2ELive(
                server, proxy, home, state["device_id"], owner, nokey, member_key, log_path
            )
        finally:
            stop(agent, timeout_s=30)
            log.close()
            proxy.close()


def _user_id(page: Page) -> str:
    user_id = page.evaluate("() => document.body.dataset.userId")
    assert isinstance(user_id, str) and user_id, "the page names its signed-in user"
    return user_id


def _unlock(page: Page, live: E2ELive) -> None:
    """Sign in as the owner and put their private key in this browser's keystore, as the
    key page does after an unlock."""
    sign_in(page, live.server.url, live.owner)
    expect(page).not_to_have_url(re.compile(r"/login"))
    saved = page.evaluate(
        """async ([userId, raw]) => {
             const keystore = await import('/static/e2e/keystore.js');
             const { keyId } = await keystore.saveMember(userId, Uint8Array.from(raw));
             return keyId;
           }""",
        [_user_id(page), list(live.member_key.private_bytes())],
    )
    assert saved == key_id(live.member_key.public)


def _capture(page: Page, into: list[bytes | str]) -> None:
    def on_socket(ws: WebSocket) -> None:
        if re.search(r"/live(\?.*)?$", ws.url):
            ws.on("framereceived", lambda payload: into.append(payload))

    page.on("websocket", on_socket)


def test_a_member_with_a_key_on_this_device_watches_live(
    e2e_live: E2ELive, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    _capture(page, e2e_live.viewer_frames)
    try:
        _unlock(page, e2e_live)
        page.goto(e2e_live.page_url)
        root = page.locator("#live")
        expect(root).to_have_attribute("data-state", "streaming", timeout=30_000)
        expect(root).to_have_attribute("data-e2e", "verified", timeout=15_000)
        shown = page.locator("#live-video").evaluate(FRAMES_SHOWN)
        expect(page.get_by_role("status")).to_have_text("Live · end-to-end encrypted")
    finally:
        page.context.close()
    assert shown["frames"] >= 8, shown
    assert shown["advanced"] >= 1.0, shown
    assert (shown["width"], shown["height"]) == (320, 180)
    assert console.errors == []


def test_a_member_without_a_key_here_is_told_to_unlock_it(
    e2e_live: E2ELive, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    try:
        sign_in(page, e2e_live.server.url, e2e_live.nokey)
        expect(page).not_to_have_url(re.compile(r"/login"))
        page.goto(e2e_live.page_url)
        root = page.locator("#live")
        expect(root).to_have_attribute("data-state", "locked", timeout=30_000)
        expect(root).to_have_attribute("data-e2e", "LiveLocked")
        status = page.get_by_role("status")
        expect(status).to_contain_text(LOCKED)
        link = status.get_by_role("link")
        expect(link).to_have_attribute("href", re.compile(r"^/"))
        # Nothing was appended: the player has no picture, only the message.
        assert page.locator("#live-video").evaluate("(v) => v.buffered.length") == 0
    finally:
        page.context.close()
    assert console.errors == []


@pytest.mark.parametrize("how", ["altered", "replayed"])
def test_an_altered_or_replayed_payload_stops_the_stream_with_a_message(
    e2e_live: E2ELive, browser: Browser, console: ConsoleLog, how: str
) -> None:
    """A relay that flips a bit of a fragment, or sends one twice: the page refuses it."""
    page = open_page(browser, console)
    seen = {"media": 0}

    def relay(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if isinstance(message, bytes):
                seen["media"] += 1
                if seen["media"] == 12 and how == "altered":
                    message = message[:-1] + bytes([message[-1] ^ 1])
                elif seen["media"] == 12:
                    route.send(message)  # and again below: a replay
            route.send(message)

        upstream.on_message(from_server)

    try:
        _unlock(page, e2e_live)
        page.route_web_socket(re.compile(r"/live(\?.*)?$"), relay)
        page.goto(e2e_live.page_url)
        root = page.locator("#live")
        expect(root).to_have_attribute("data-e2e", "LiveTampered", timeout=30_000)
        expect(root).to_have_attribute("data-state", "error")
        status = page.get_by_role("status")
        expect(status).to_contain_text("failed its end-to-end check and is not shown")
        expect(status).to_contain_text(
            "replayed or reordered" if how == "replayed" else "does not open"
        )
    finally:
        page.context.close()
    assert console.errors == []


def test_a_plain_stream_in_an_end_to_end_household_is_not_shown(
    e2e_live: E2ELive, browser: Browser, console: ConsoleLog
) -> None:
    """A relay (or a server) that passes a stream off as unencrypted: the page knows the
    household is end-to-end and shows nothing of it."""
    page = open_page(browser, console)

    def relay(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and json.loads(message).get("type") == "init":
                body = json.loads(message)
                body.pop("e2e", None)
                message = json.dumps(body)
            route.send(message)

        upstream.on_message(from_server)

    try:
        _unlock(page, e2e_live)
        page.route_web_socket(re.compile(r"/live(\?.*)?$"), relay)
        page.goto(e2e_live.page_url)
        root = page.locator("#live")
        expect(root).to_have_attribute("data-e2e-required", "1")
        expect(root).to_have_attribute("data-e2e", "plain-refused", timeout=30_000)
        expect(page.get_by_role("status")).to_contain_text("arrived unencrypted")
        page.wait_for_timeout(1500)  # media keeps arriving: none of it may be appended
        assert page.locator("#live-video").evaluate("(v) => v.buffered.length") == 0
        expect(root).to_have_attribute("data-state", "error")
    finally:
        page.context.close()
    assert console.errors == []


def _sessions(messages: list[bytes | str], member: RecipientKey, device_public: bytes) -> int:
    """Open every binary payload of `messages` (kind, camera index, payload) with the
    session of the init before it: how many opened; fails on any that does not, on an
    fMP4 box in clear, or on plaintext bytes found anywhere in the capture."""
    opener: LiveOpener | None = None
    opened, expected_init = 0, False
    plain_samples: list[bytes] = []
    for message in messages:
        if isinstance(message, str):
            body = json.loads(message)
            if body.get("type") == "init":
                assert "e2e" in body, f"an init without its e2e block: {body}"
                opener = LiveOpener(body["e2e"], device_public, member)
                expected_init = True
            continue
        assert opener is not None, "media before an e2e init"
        kind, payload = message[0], message[2:]
        assert payload[4:8] not in BOXES and not any(b in payload[:32] for b in BOXES)
        plain = opener.open(kind, payload)
        assert (plain[4:8] == b"ftyp") if kind == INIT else (plain[4:8] == b"moof")
        if expected_init:
            assert kind == INIT
            expected_init = False
        plain_samples.append(plain[-64:])  # the end of the mdat: encoded picture bytes
        opened += 1
    clear = b"".join(m for m in messages if isinstance(m, bytes))
    for sample in plain_samples:  # no plaintext anywhere in what crossed the relay
        assert sample not in clear
    return opened


def test_the_relay_carries_only_ciphertext_both_ways(e2e_live: E2ELive) -> None:
    """Runs after the viewing tests (file order): what they made the agent send, and what
    the member's page received, holds no plaintext video."""
    device_public = _device_public(e2e_live)
    agent_side = e2e_live.proxy.live_messages()
    assert _sessions(agent_side, e2e_live.member_key, device_public) >= 20
    # The viewer gets the payloads without the two header bytes, and the kind from order:
    # put back what the agent's side says each one was, then open them the same way.
    kinds = {m[2:]: m[:2] for m in agent_side if isinstance(m, bytes)}
    viewer = e2e_live.viewer_frames
    assert [m for m in viewer if isinstance(m, bytes)], "the viewer received no media"
    headed: list[bytes | str] = []
    for message in viewer:
        if isinstance(message, str):
            headed.append(message)
        else:
            assert message in kinds, "the viewer got bytes the agent never sent"
            headed.append(kinds[message] + message)
    assert _sessions(headed, e2e_live.member_key, device_public) >= 20


def _device_public(live: E2ELive) -> bytes:
    api = live.server.api(live.owner)
    try:
        path = f"/api/v1/households/{live.household_id}/devices/{live.device_id}/live/key"
        response = api.client.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["device_id"] == live.device_id
        return b64d(response.json()["public_key"], what="device key", length=32)
    finally:
        api.close()
