"""The server's end of the doorbell's wire, real and on loopback: a WebSocket server on
the live path that answers each `event` with an `event_ack` (or a refusal, or nothing),
and an HTTP server for the fallback `POST /api/v1/device/events`. It stands in for the
events helper's server side (docs/live-view.md) until that lands in the app."""

from __future__ import annotations

import json
import queue
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore, Plan
from doorwarden.agent.live.link import LIVE_PATH
from doorwarden.agent.ring.sender import EVENTS_PATH
from doorwarden.crypto.keys import RecipientKey, key_id

TOKEN = "dwd_ring-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AckServer:
    """`mode`: "ack" (the default), "silent" (never acks), "refuse" (too_many_rings)."""

    def __init__(self, port: int = 0, *, mode: str = "ack") -> None:
        self.mode = mode
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.hellos: list[dict[str, Any]] = []
        self.server_ids: dict[str, str] = {}  # agent id -> server id: a replay gets the same
        self.connections: list[ServerConnection] = []
        self.server: Server = serve(
            self._handle, "127.0.0.1", port, process_request=self._check, compression=None
        )
        self.port = self.server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path != LIVE_PATH:
            return connection.respond(404, "not found")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return connection.respond(401, "no")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        try:
            self.hellos.append(json.loads(connection.recv()))
            for message in connection:
                body = json.loads(message)
                if body.get("type") != "event":
                    continue
                self.events.put(body)
                if self.mode == "silent":
                    continue
                ack: dict[str, Any] = {"type": "event_ack", "id": body["id"]}
                if self.mode == "refuse":
                    ack |= {"refused": "too_many_rings", "message": "slow down"}
                else:
                    ack["event_id"] = self.server_ids.setdefault(body["id"], str(uuid.uuid4()))
                connection.send(json.dumps(ack))
        except ConnectionClosed:
            pass

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def drain(self, quiet_s: float = 0.5) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.events.get(timeout=quiet_s))
            except queue.Empty:
                return out

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(5)


class HttpEvents:
    """POST /api/v1/device/events: answers each with `statuses` in turn (then 201)."""

    def __init__(self, statuses: list[tuple[int, dict[str, str]]] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                outer.auth.append(self.headers.get("authorization"))
                if self.path != EVENTS_PATH:
                    self.send_response(404)
                    self.end_headers()
                    return
                outer.bodies.append(body)
                status, headers = outer.statuses.pop(0) if outer.statuses else (201, {})
                payload = (
                    {"event_id": str(uuid.uuid4())}
                    if status < 300
                    else {"error": {"code": "too_many_rings", "message": "slow down"}}
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


def identity(server: str) -> DeviceIdentity:
    household = RecipientKey.generate().public
    return DeviceIdentity(
        server=server, device_id="dev-ring", household_id="hh-ring", token=TOKEN,
        mode="standard", recipients=[(key_id(household), household)],
        plan=Plan("recording", 30),
    )  # fmt: skip


def pair_state(state_dir: Path, server: str) -> DeviceIdentity:
    """A state directory paired with `server` (a signing key and the pairing file)."""
    store = IdentityStore(state_dir)
    store.signing_key()
    ident = identity(server)
    store.save(ident)
    return ident
