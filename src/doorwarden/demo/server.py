"""The real app under uvicorn, in a thread of the demo's process, configured as
`doorwarden serve` configures it. The main thread keeps the signals (Ctrl-C), so the
demo decides the order things stop in: cameras first, while the server still takes
their last clips, then the server."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI


class ServerError(Exception):
    """The server could not start; the message says why."""


def check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServerError(
                f"cannot listen on {host}:{port} ({exc.strerror}): is something else using "
                "it? Choose another with --port."
            ) from None


class ServerThread:
    def __init__(self, app: FastAPI, host: str, port: int, *, ping_s: float) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            ws_per_message_deflate=False,  # live video does not compress (as `serve`)
            ws_ping_interval=ping_s,
            ws_ping_timeout=ping_s,
        )
        self.url = f"http://{host}:{port}"
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="demo-server", daemon=True)

    def start(self, timeout_s: float = 60.0) -> None:
        """Start serving; return once /healthz answers."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if not self._thread.is_alive():
                raise ServerError("the server stopped while starting (see the log)")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"the server did not answer within {timeout_s:.0f} s")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 15.0) -> bool:
        """Stop accepting, finish the requests in flight, run the shutdown; True if done."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()
