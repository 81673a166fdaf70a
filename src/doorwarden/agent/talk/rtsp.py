"""An RTSP/1.0 client connection over one TCP socket (RFC 2326), with RTP interleaved on
it (`$`, channel, length, packet): just what an ONVIF backchannel needs, on a plain
socket because FFmpeg's RTSP client cannot send media to a camera.

A reader thread parses what the camera sends: responses go to the request waiting for
them; interleaved frames (RTCP from the camera) are dropped. Credentials in the URL are
used for Basic or Digest authentication when the camera answers 401, and never appear in
a log line or an error message (capture.rtsp's redact_url / redact_text).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import queue
import re
import secrets
import socket
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import structlog

from doorwarden.agent.capture.rtsp import redact_text, redact_url
from doorwarden.agent.talk.output import TalkError

log = structlog.get_logger("doorwarden.agent.talk.rtsp")

USER_AGENT = "doorwarden-agent"
MAX_HEADER_BYTES = 64 * 1024  # a camera's reply is small; more is not RTSP
CHALLENGE = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class RtspConnection:
    """One connection to `url` (rtsp://user:password@host:port/path)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "rtsp" or not parts.hostname:
            raise TalkError(f"the talk URL must be rtsp://host/path, not {redact_url(url)}")
        self.secret_url = url
        self.host = parts.hostname
        self.port = parts.port or 554
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        netloc = self.host if ":" not in self.host else f"[{self.host}]"
        self.url = f"rtsp://{netloc}:{self.port}{parts.path or '/'}"
        if parts.query:
            self.url += "?" + parts.query
        self.timeout_s = timeout_s
        self._cseq = 0
        self._auth: tuple[str, dict[str, str]] | None = None  # scheme, challenge
        self._nc = 0
        self._sock: socket.socket | None = None
        self._responses: queue.Queue[Response | None] = queue.Queue()
        self._send_lock = threading.Lock()
        self._request_lock = threading.Lock()
        self.dead: str | None = None  # why the connection ended, once it has
        self._reader: threading.Thread | None = None

    # -- connection ---------------------------------------------------------------------

    def connect(self) -> None:
        try:
            self._sock = socket.create_connection((self.host, self.port), self.timeout_s)
        except TimeoutError:
            raise TalkError(f"the camera at {self.host} did not answer in time") from None
        except OSError as exc:
            raise TalkError(
                f"cannot reach the camera at {self.host}: {exc.strerror or exc}"
            ) from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # voice, not bulk
        self._reader = threading.Thread(target=self._read, name="doorwarden-talk-rtsp", daemon=True)
        self._reader.start()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(1.0)

    # -- requests -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        wait: bool = True,
        timeout_s: float | None = None,
    ) -> Response | None:
        """Send a request and return its response (None with `wait=False`: a keep-alive
        whose answer the reader drops). A 401 is answered once with the credentials."""
        url = url or self.url
        with self._request_lock:
            response = self._exchange(method, url, headers or {}, wait, timeout_s)
            if response is not None and response.status == 401 and self._challenge(response):
                response = self._exchange(method, url, headers or {}, wait, timeout_s)
            return response

    def _exchange(
        self, method: str, url: str, headers: dict[str, str], wait: bool, timeout_s: float | None
    ) -> Response | None:
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        authorization = self._authorization(method, url)
        if authorization:
            lines.append(f"Authorization: {authorization}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode())
        if not wait:
            return None
        cseq = str(self._cseq)
        while True:
            try:
                response = self._responses.get(timeout=timeout_s or self.timeout_s)
            except queue.Empty:
                raise TalkError(f"the camera did not answer {method} in time") from None
            if response is None:
                raise TalkError(f"the camera closed the connection ({self.dead})")
            if response.header("CSeq") == cseq:
                return response
            # an earlier keep-alive's answer: not ours

    def send_interleaved(self, channel: int, packet: bytes) -> None:
        self._send(b"$" + bytes([channel]) + len(packet).to_bytes(2, "big") + packet)

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None or self.dead is not None:
            raise TalkError(f"the camera closed the connection ({self.dead or 'closed'})")
        try:
            with self._send_lock:
                sock.sendall(data)
        except TimeoutError:
            raise TalkError(
                "the camera stopped taking audio (it did not read for a while)"
            ) from None
        except OSError as exc:
            raise TalkError(f"the connection to the camera broke: {exc.strerror or exc}") from None

    # -- authentication -----------------------------------------------------------------

    def _challenge(self, response: Response) -> bool:
        """Take the 401's challenge; False when retrying cannot help."""
        if self._auth is not None or not self.user:
            return False  # the credentials were refused, or there are none
        offers = response.all("WWW-Authenticate")
        digest = next((o for o in offers if o.lower().startswith("digest")), None)
        if digest is not None:
            params = {m[0].lower(): m[1] or m[2] for m in CHALLENGE.findall(digest[6:])}
            if "nonce" in params:
                self._auth = ("digest", params)
                return True
        if any(o.lower().startswith("basic") for o in offers):
            self._auth = ("basic", {})
            return True
        return False

    def _authorization(self, method: str, url: str) -> str | None:
        if self._auth is None:
            return None
        scheme, params = self._auth
        if scheme == "basic":
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return f"Basic {token}"
        algorithm = params.get("algorithm", "MD5")
        digest = hashlib.sha256 if algorithm.upper().startswith("SHA-256") else hashlib.md5

        def h(text: str) -> str:
            return digest(text.encode()).hexdigest()

        realm, nonce = params.get("realm", ""), params["nonce"]
        ha1 = h(f"{self.user}:{realm}:{self.password}")
        ha2 = h(f"{method}:{url}")
        fields = {"username": self.user, "realm": realm, "nonce": nonce, "uri": url}
        if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
            self._nc += 1
            nc, cnonce = f"{self._nc:08x}", secrets.token_hex(8)
            fields["response"] = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
        else:
            fields["response"] = h(f"{ha1}:{nonce}:{ha2}")
            extra = ""
        if "opaque" in params:
            fields["opaque"] = params["opaque"]
        if "algorithm" in params:
            extra += f", algorithm={algorithm}"
        return "Digest " + ", ".join(f'{k}="{v}"' for k, v in fields.items()) + extra

    # -- the reader thread --------------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        sock = self._sock
        reason = "closed by the camera"
        try:
            while sock is not None:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue  # a quiet camera is fine: we send, it listens
                if not data:
                    break
                buffer = self._parse(buffer + data)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
        except TalkError as exc:
            reason = str(exc)
        self.dead = reason if self._sock is not None else "closed"
        self._responses.put(None)  # wakes a request waiting for its answer

    def _parse(self, buffer: bytes) -> bytes:
        """Take every whole message off the front of `buffer`; the rest."""
        while buffer:
            if buffer[0] == 0x24:  # '$': an interleaved frame (RTCP from the camera)
                if len(buffer) < 4:
                    return buffer
                size = int.from_bytes(buffer[2:4], "big")
                if len(buffer) < 4 + size:
                    return buffer
                buffer = buffer[4 + size :]
                continue
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise TalkError("the camera sent something that is not RTSP")
                return buffer
            head = buffer[:end].decode("utf-8", "replace").split("\r\n")
            headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in head[1:])]
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0") or 0)
            if len(buffer) < end + 4 + length:
                return buffer
            body = buffer[end + 4 : end + 4 + length]
            buffer = buffer[end + 4 + length :]
            first = head[0].split(" ", 2)
            if first[0].startswith("RTSP/") and len(first) >= 2 and first[1].isdigit():
                reason = first[2] if len(first) > 2 else ""
                self._responses.put(Response(int(first[1]), reason, headers, body))
            else:  # a request from the camera (ANNOUNCE, SET_PARAMETER): not for a talker
                log.debug("talk.camera_request", line=self.redact(head[0])[:100])
        return buffer

    def redact(self, text: str) -> str:
        return redact_text(text, self.secret_url)
