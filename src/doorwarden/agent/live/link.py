"""Live view's control connection: one outbound WebSocket from the agent to its server.

docs/live-view.md is the protocol. The agent dials out (no port opens at home), says
hello with its camera names, and streams a camera's fMP4 (live.py) while the server says
someone watches it. Three threads meet here, and none may wait on another's network:

* camera threads call `feed`: the camera's `LiveTap` muxes, and what comes out goes into
  a bounded `SendQueue` (live_queue.py). A camera thread never blocks on the network:
  when the queue is full (a slow uplink), fragments are dropped until a keyframe;
* the link thread connects, reads the server's start/stop, and reconnects with
  exponential backoff;
* a sender thread per connection drains the queue into the socket.

A 401 at the handshake means the camera was removed from its household (or the token is
wrong): retrying cannot help, so the link stops, saying so as the uploader does. A 403
means the server wants TLS; the same. The device token is a bearer secret, so plain ws://
is refused to a host that is not this machine unless the operator allowed plain http at
pairing (`insecure_http`, as `agent pair --insecure-http`).

In an end-to-end household (the device state's mode is "e2e") each stream is sealed
under a fresh session key wrapped to the members' keys (crypto/live.py): the init message
gains a signed "e2e" block and every payload is ciphertext. Without the device key or a
member key to seal to, the camera says so to its viewers and sends no video: an e2e
household's video never leaves the agent in clear.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import httpx
import structlog
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

from doorwarden import __version__
from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.media import Sample, StreamInfo
from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.delivery.identity import DeviceIdentity
from doorwarden.agent.delivery.pairing import PairingError, server_url
from doorwarden.agent.delivery.uploader import Outcome, OutcomeKind, error_of
from doorwarden.agent.live.seal_live import E2EUnavailable, StreamSeals
from doorwarden.agent.live.send_queue import SendQueue
from doorwarden.agent.live.tap import Emit, Fragment, InitSegment, LiveError, LiveOutput, LiveTap
from doorwarden.crypto.keys import SigningKey

log = structlog.get_logger("doorwarden.agent.live.link")

LIVE_PATH = "/api/v1/device/live"
PROTOCOL_VERSION = 1
INIT, KEYFRAME, DELTA = 0x00, 0x01, 0x02  # the first byte of each binary message
REVOKED_MESSAGE = "This camera was removed from its household; pair it again."
MAX_CAMERAS = 64  # as the server accepts in a hello (the camera index is one byte)
SNAPSHOT = b"\x20"  # a zone editor's picture (docs/live-view.md)
NO_SNAPSHOT = (
    "This household is end-to-end encrypted: the camera sends no pictures to the server. "
    "Draw the zones on a frame of a clip or of live view instead."
)


class LiveLinkError(Exception):
    """The link cannot be set up (a URL the token must not be sent to)."""


class HasInfo(Protocol):
    """A source (capture.VideoSource): its `info` changes when it reconnects."""

    @property
    def info(self) -> StreamInfo: ...


def live_url(server: str, *, insecure_http: bool = False) -> str:
    """ws(s)://.../api/v1/device/live for the paired server; LiveLinkError when the
    token would cross a network in clear (the rule pairing applies to http)."""
    try:
        base = server_url(server, insecure_http=insecure_http)
    except PairingError as exc:
        raise LiveLinkError(str(exc).replace("plain http", "plain ws://")) from None
    scheme, rest = base.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest + LIVE_PATH


# -- the link --------------------------------------------------------------------------


class LiveLink:
    """The agent's live-view connection for `cameras` (names, in config order)."""

    def __init__(
        self,
        identity: DeviceIdentity,
        cameras: Sequence[str],
        *,
        masks: Mapping[str, PrivacyMask] | None = None,
        insecure_http: bool = False,
        queue_bytes: int = 1024 * 1024,
        backoff: Backoff | None = None,
        ping_interval_s: float = 10.0,
        open_timeout_s: float = 10.0,
        stable_s: float = 30.0,
        stall_s: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        signing_key: SigningKey | None = None,
        identity_of: Callable[[], DeviceIdentity] | None = None,
    ) -> None:
        if len(cameras) > MAX_CAMERAS or len(set(cameras)) != len(cameras):
            raise LiveLinkError(f"live view takes at most {MAX_CAMERAS} uniquely named cameras")
        self.url = live_url(identity.server, insecure_http=insecure_http)
        self.server = identity.server
        self._token = identity.token
        # The mode and member keys as they are when a stream starts (the delivery's
        # refreshed identity, agent/app.py), and the device key that signs each session.
        self.seals = StreamSeals(identity_of or (lambda: identity), signing_key)
        self._restart: set[int] = set()  # streams to restart with a new init (seal_live.py)
        self.cameras = list(cameras)
        self.queue = SendQueue(self.cameras, queue_bytes)
        masks = masks or {}
        self.taps = {
            name: LiveTap(name, self._emitter(index), mask=masks.get(name))
            for index, name in enumerate(self.cameras)
        }
        self.backoff = backoff or Backoff(1.0, 60.0)
        self.ping_interval_s = ping_interval_s
        self.open_timeout_s = open_timeout_s
        self.stable_s = stable_s  # a connection up this long resets the backoff
        self.stall_s = stall_s  # a send stuck this long means a dead peer: reconnect
        self.ssl_context = ssl_context
        self.blocked: Outcome | None = None  # why the link gave up, if it did
        self.connections = 0  # handshakes that succeeded
        self._sources: dict[str, HasInfo] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ws: ClientConnection | None = None
        self._sending_since: float | None = None
        self._thread: threading.Thread | None = None
        # Server messages other than start/stop, by type (the doorbell's "event_ack"):
        # each handler runs on the link thread with the parsed message, and must be quick.
        self.handlers: dict[str, Callable[[dict[str, object]], None]] = {}
        # Binary messages from the server, by their first byte (talk audio, 0x10): each
        # handler runs on the link thread with the whole message, and must be quick.
        self.binary_handlers: dict[int, Callable[[bytes], None]] = {}
        self._greeted: ClientConnection | None = None  # the connection that sent its hello

    # -- the agent's side ----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="doorwarden-live", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Close the connection and stop every camera's stream; True if the thread ended."""
        self._stop.set()
        with self._lock:
            ws = self._ws
        if ws is not None:
            _close(ws)
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        for tap in self.taps.values():
            tap.stop()
        self.queue.discard()
        return thread is None or not thread.is_alive()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def done(self) -> bool:
        """The link thread ended (stopped, or gave up: see `blocked`)."""
        return self._thread is not None and not self._thread.is_alive()

    def send_text(self, text: str) -> bool:
        """Send a control message now (a doorbell event: it must not wait behind queued
        video); False when there is no connection or it just dropped. websockets
        serialises whole messages, so this never interleaves with the sender thread's."""
        with self._lock:
            ws = self._greeted if self._ws is not None else None
        if ws is None:
            return False  # not connected, or the hello (which must come first) not sent yet
        try:
            ws.send(text)
        except (ConnectionClosed, OSError):
            return False
        return True

    def send_binary(self, data: bytes) -> bool:
        """Send a binary message now, as `send_text` (a snapshot, 0x20): not queued behind
        video, False when there is no connection, or when it is a picture and the
        household is end-to-end (the server must not see one)."""
        if data[:1] == SNAPSHOT and self.seals.sealing:
            log.warning("live.snapshot_withheld", reason="end-to-end household")
            return False
        with self._lock:
            ws = self._greeted if self._ws is not None else None
        if ws is None:
            return False
        try:
            ws.send(data)
        except (ConnectionClosed, OSError):
            return False
        return True

    def opened(self, camera: str, source: HasInfo) -> None:
        """A camera's source is open (CameraRunner's on_open)."""
        self._sources[camera] = source

    def closed(self, camera: str) -> None:
        """A camera's source closed: a viewer keeps waiting for it to come back."""
        self._sources.pop(camera, None)
        tap = self.taps.get(camera)
        if tap is not None:
            tap.reset()

    def feed(self, camera: str, sample: Sample) -> None:
        """Every sample of a camera, on its thread; references a packet when unwatched."""
        source = self._sources.get(camera)
        tap = self.taps.get(camera)
        if source is None or tap is None:
            return
        try:
            tap.feed(sample, source.info)
            if self._restart:
                self._restart_changed(camera, tap)
        except Exception:  # a bug in live view must not stop the camera's recording
            log.exception("live.feed_failed", camera=camera)
            tap.stop()

    def _restart_changed(self, camera: str, tap: LiveTap) -> None:
        """The household's mode or member keys changed under a running stream: a new
        init (sealed for the new set, or not), from the keyframe just muxed."""
        index = self.cameras.index(camera)
        if index in self._restart:
            self._restart.discard(index)
            if tap.running:
                log.info("live.rekeyed", camera=camera, reason="mode or member keys changed")
                tap.start()

    def _emitter(self, index: int) -> Emit:
        name = self.cameras[index]
        head = bytes([index])

        def emit(output: LiveOutput) -> None:
            if isinstance(output, Fragment):
                kind = KEYFRAME if output.keyframe else DELTA
                if output.keyframe and self.seals.changed(index):
                    self._restart.add(index)  # after the tap's call: feed() restarts it
                    return
                data = self.seals.fragment(index, kind, output.data)
                if data is not None:  # None: an e2e stream that cannot be sealed
                    self.queue.put_fragment(index, bytes([kind]) + head + data, output.keyframe)
            elif isinstance(output, InitSegment):
                message: dict[str, object] = {
                    "type": "init", "camera": name, "mime": output.mime,
                    "width": output.width, "height": output.height, "audio": output.audio,
                }  # fmt: skip
                data = output.data
                try:
                    sealer = self.seals.new_stream(index)  # a fresh session key, if e2e
                except E2EUnavailable as exc:
                    log.error("live.e2e_unavailable", camera=name, reason=str(exc))
                    error = {"type": "error", "camera": name, "message": str(exc)}
                    self.queue.put_control(index, json.dumps(error))
                    return
                if sealer is not None:
                    message["e2e"] = sealer.block
                    data = sealer.seal(INIT, data)
                self.queue.put_control(index, json.dumps(message), bytes([INIT]) + head + data)
            elif isinstance(output, LiveError):
                message = {"type": "error", "camera": name, "message": output.message}
                self.queue.put_control(index, json.dumps(message))

        return emit

    # -- the link thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                error = self._connect()
            except InvalidStatus as exc:
                if self._refused(exc.response.status_code, bytes(exc.response.body or b"")):
                    return
                error = str(exc)
            except (OSError, WebSocketException) as exc:  # timeouts, TLS errors: OSErrors
                error = str(exc) or type(exc).__name__
            except Exception as exc:  # a bug must not end live view for good
                log.exception("live.failed")
                error = f"{type(exc).__name__}: {exc}"
            if self._stop.is_set():
                return
            delay = self.backoff.next_delay()
            log.warning("live.disconnected", server=self.server, error=error, retry_in=delay)
            self._stop.wait(delay)

    def _connect(self) -> str:
        """One connection, from the handshake to its end; why it ended."""
        with connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self._token}"},
            user_agent_header=f"doorwarden-agent/{__version__}",
            compression=None,  # fMP4 is compressed already: deflate would only cost CPU
            open_timeout=self.open_timeout_s,
            ping_interval=self.ping_interval_s,
            ping_timeout=self.ping_interval_s * 2,
            close_timeout=2,
            # The server sends JSON only, the largest a camera's signed settings document
            # (at most 96 KiB, crypto/settings_sig.py) inside its `settings` message.
            max_size=256 * 1024,
            ssl=self.ssl_context,
        ) as ws:
            started = time.monotonic()
            error = self._session(ws)
            if time.monotonic() - started >= self.stable_s:
                self.backoff.reset()
            return error

    def _refused(self, status: int, body: bytes) -> bool:
        """A refusal at the handshake; True when retrying cannot help (the link stops)."""
        code, message, _ = error_of(httpx.Response(status, content=body))
        if status == 401:
            if code in ("device_revoked", f"http_{status}"):
                message = message if code == "device_revoked" else REVOKED_MESSAGE
                log.error("live.revoked", message=message, effect="live view stopped")
            else:
                log.error("live.unauthorized", code=code, message=message, hint="pair again")
        elif status == 403:
            log.error(
                "live.forbidden", code=code, message=message,
                hint="the server takes live view over TLS only: pair with its https:// address",
            )  # fmt: skip
        else:
            return False
        self.blocked = Outcome(OutcomeKind.stopped, status=status, code=code, message=message)
        return True

    def _session(self, ws: ClientConnection) -> str:
        """Hello, then start/stop from the server until the connection ends; why it ended."""
        with self._lock:
            if self._stop.is_set():
                _close(ws)
                return "stopping"
            self._ws = ws
        self.connections += 1
        sender = threading.Thread(target=self._send_loop, args=(ws,), name="doorwarden-live-send")
        reason = "the server closed the connection"
        try:
            ws.send(
                json.dumps({"type": "hello", "cameras": self.cameras, "version": PROTOCOL_VERSION})
            )
            self._greeted = ws
            log.info("live.connected", server=self.server, cameras=self.cameras)
            sender.start()
            while not self._stop.is_set():
                try:
                    message = ws.recv(timeout=1.0)
                except TimeoutError:
                    self._check_stall(ws)
                    continue
                self._handle(ws, message)
        except ConnectionClosed as exc:
            reason = f"{reason} ({exc})"
        except OSError as exc:
            reason = str(exc) or type(exc).__name__
        finally:
            with self._lock:
                self._ws = None
            for tap in self.taps.values():
                tap.stop()  # nobody can receive them now; the server restarts what it needs
            self.queue.discard()
            _close(ws)
            if sender.is_alive():
                sender.join()
        return reason

    def _handle(self, ws: ClientConnection, message: str | bytes) -> None:
        if isinstance(message, bytes):
            binary = self.binary_handlers.get(message[0]) if message else None
            if binary is None:
                log.warning("live.unexpected_binary", size=len(message))
                return
            try:
                binary(message)
            except Exception:  # a bug in a handler must not end the link
                log.exception("live.handler_failed", type=message[0])
            return
        try:
            body = json.loads(message)
            kind, camera = body["type"], body.get("camera")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("live.bad_message", message=message[:200])
            return
        if kind == "snapshot" and self.seals.sealing:
            self._no_snapshot(ws, body)  # a plaintext picture must not reach the server
            return
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            try:
                handler(body)
            except Exception:  # a bug in a handler must not end the link
                log.exception("live.handler_failed", type=kind)
            return
        if kind not in ("start", "stop"):
            log.info("live.unknown_message", type=kind)
            return
        tap = self.taps.get(camera) if isinstance(camera, str) else None
        if tap is None:
            # The server only asks for cameras named in the hello: a bug on either side,
            # and an error message about a camera it does not know would end the link.
            log.warning("live.unknown_camera", camera=camera, type=kind)
            return
        index = self.cameras.index(tap.camera)
        if kind == "start":
            log.info("live.start", camera=camera)
            self.queue.discard(index)  # the new init must not follow an old stream's tail
            tap.start()
        else:
            log.info("live.stop", camera=camera, dropped=self.queue.dropped[index])
            tap.stop()
            self.queue.discard(index)

    def _no_snapshot(self, ws: ClientConnection, body: dict[str, object]) -> None:
        answer = {"type": "snapshot_error", "camera": body.get("camera"), "id": body.get("id"),
                  "message": NO_SNAPSHOT}  # fmt: skip
        with contextlib.suppress(ConnectionClosed, OSError):
            ws.send(json.dumps(answer))

    def _send_loop(self, ws: ClientConnection) -> None:
        while self._ws is ws:
            item = self.queue.get(timeout=0.5)
            if item is None:
                continue
            self._sending_since = time.monotonic()
            try:
                ws.send(item.payload)
            except (ConnectionClosed, OSError):
                return  # the link thread sees the connection end and reconnects
            finally:
                self._sending_since = None

    def _check_stall(self, ws: ClientConnection) -> None:
        """A peer that stops reading leaves a send blocked for ever (TCP keeps probing a
        zero window), and pings queue behind it: after `stall_s`, drop the connection."""
        since = self._sending_since
        if since is not None and time.monotonic() - since > self.stall_s:
            log.warning(
                "live.stalled", server=self.server, stalled_s=round(time.monotonic() - since)
            )
            _abort(ws)


def _abort(ws: ClientConnection) -> None:
    """Break the connection now: wakes a sender blocked in a full socket."""
    with contextlib.suppress(OSError):  # already closed
        ws.socket.shutdown(socket.SHUT_RDWR)


def _close(ws: ClientConnection, grace_s: float = 2.0) -> None:
    """A close frame, or an abort after `grace_s`: a sender blocked in a full socket
    holds the connection's lock, and a polite close would wait behind it for ever."""
    timer = threading.Timer(grace_s, _abort, args=(ws,))
    timer.daemon = True
    timer.start()
    try:
        ws.close()
    finally:
        timer.cancel()
