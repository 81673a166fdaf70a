"""`<state_dir>/agent.sock`: how `doorwarden agent ring CAMERA` reaches the running agent.

A unix socket in the private state directory (0700; the socket itself 0600): only this
machine's user of the agent can ring. One JSON line in, one JSON line out:

    -> {"op": "ring", "camera": "front"}
    <- {"ok": true, "status": "queued", "id": "<uuid>", "at": "..."}
       {"ok": true, "status": "debounced"} | {"ok": false, "error": "unknown camera 'x'"}

A socket left by a killed agent is replaced at start; one that answers belongs to an
agent that runs, and is left alone (this agent then takes no CLI rings, and says so).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("doorwarden.agent.ring.control")

SOCKET_NAME = "agent.sock"
MAX_REQUEST = 4096
CLIENT_TIMEOUT_S = 5.0
MAX_UNIX_PATH = 107  # sun_path is 108 bytes with its NUL

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlError(Exception):
    """The socket cannot be opened (a path too long, another agent listening)."""


class AgentNotRunning(Exception):
    """Nothing answers on the socket: no agent runs with this state directory."""


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


class ControlServer:
    def __init__(self, state_dir: Path, handler: Handler) -> None:
        self.path = socket_path(state_dir)
        self.handler = handler
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen; ControlError when impossible (the agent runs on without it)."""
        if len(os.fsencode(self.path)) > MAX_UNIX_PATH:
            raise ControlError(f"{self.path} is too long for a unix socket")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            try:
                request(self.path.parent, {"op": "ping"}, timeout_s=1.0)
            except AgentNotRunning:
                self.path.unlink(missing_ok=True)  # a killed agent's
            else:
                raise ControlError(f"another agent answers on {self.path}")
        # Not the umask: it is the whole process's, and changing it here once made another
        # thread's new directory 0600. The socket is made in a directory only this user
        # may enter, then narrowed to 0600, so it is never reachable by others meanwhile.
        try:
            os.chmod(self.path.parent, 0o700)
        except OSError as exc:
            raise ControlError(f"cannot make {self.path.parent} private: {exc}") from exc
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot listen on {self.path}: {exc}") from exc
        sock.listen(16)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="doorwarden-ctl", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None  # noqa: S101 - set before the thread starts
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)  # a client that connects and says nothing does not hold us
        try:
            line = _read_line(conn)
            try:
                body = json.loads(line)
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError:
                reply: dict[str, Any] = {"ok": False, "error": "malformed request"}
            else:
                try:
                    reply = self.handler(body)
                except Exception as exc:  # one bad request must not end the socket
                    log.exception("ring.control_failed")
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except (OSError, ValueError) as exc:
            log.info("ring.control_client_gone", error=str(exc))


def request(state_dir: Path, body: dict[str, Any], *, timeout_s: float = CLIENT_TIMEOUT_S) -> Any:
    """Ask the running agent; AgentNotRunning when none answers."""
    path = socket_path(state_dir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    with sock:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AgentNotRunning(str(path)) from exc
        sock.sendall(json.dumps(body).encode() + b"\n")
        return json.loads(_read_line(sock))


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too long")
    return data.split(b"\n", 1)[0]
