"""A real RFC 8030 push service on loopback, for tests and benches (as moto is for S3).

`PushService` is an HTTP/1.1 server (keep-alive, a thread per connection) that accepts
`POST /push/<token>`, checks the VAPID Authorization (RFC 8292: the ES256 JWT verified
against its k= key, aud equal to this service's origin, exp in the future and at most
24 h ahead, a sub), checks TTL / Urgency / Content-Encoding, and decrypts the aes128gcm
body (RFC 8188 + RFC 8291) with the subscription's private key and auth secret. It is
written from the RFCs with `cryptography` alone, independently of the server's encoder
(http_ece) and JWT code, so a mistake on one side does not cancel out on the other.

Each accepted push is recorded as a `Received` (payload, headers, claims, time); each
refused one as a `Refusal`. `respond(token, status)` makes a token answer 404, 410, 429,
500 ... instead of 201. `subscribe()` makes a browser-like subscription: its keys and
the PushSubscription.toJSON() a browser would send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

URGENCIES = ("very-low", "low", "normal", "high")
MAX_BODY = 4096  # what RFC 8030 7.2 obliges a push service to take
MAX_JWT_LIFETIME_S = 24 * 3600


class PushError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def decrypt_aes128gcm(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """RFC 8291 sections 3.3-3.4 and RFC 8188 section 2: the user agent's side."""
    if len(body) < 21:
        raise PushError(400, "body shorter than the aes128gcm header")
    salt, (rs,), idlen = body[:16], struct.unpack("!I", body[16:20]), body[20]
    keyid, ciphertext = body[21 : 21 + idlen], body[21 + idlen :]
    if idlen != 65 or rs < 18:
        raise PushError(400, f"keyid length {idlen} or record size {rs} not Web Push's")
    try:
        as_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), keyid)
    except ValueError as exc:
        raise PushError(400, "keyid is not a P-256 point") from exc
    ecdh_secret = ua_private.exchange(ec.ECDH(), as_public)
    ua_public = _point(ua_private.public_key())
    # HKDF written out (extract = HMAC(salt, ikm), expand one block = HMAC(prk, info||1)).
    prk_key = _hmac(auth, ecdh_secret)
    key_info = b"WebPush: info\x00" + ua_public + keyid
    ikm = _hmac(prk_key, key_info + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    records = [ciphertext[i : i + rs] for i in range(0, len(ciphertext), rs)]
    if not records:
        raise PushError(400, "no records")
    plaintext = b""
    for seq, record in enumerate(records):
        iv = (int.from_bytes(nonce, "big") ^ seq).to_bytes(12, "big")
        try:
            padded = AESGCM(cek).decrypt(iv, record, None)
        except InvalidTag as exc:
            raise PushError(400, f"record {seq} does not decrypt") from exc
        data = padded.rstrip(b"\x00")
        last = seq == len(records) - 1
        if not data or data[-1:] != (b"\x02" if last else b"\x01"):
            raise PushError(400, f"record {seq} has the wrong padding delimiter")
        plaintext += data[:-1]
    return plaintext


def verify_vapid(authorization: str, *, audience: str, now: float) -> dict[str, Any]:
    """RFC 8292 section 3: `vapid t=<JWT>, k=<key>`; returns the claims, or PushError."""
    scheme, _, params = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise PushError(401, f"authorization scheme {scheme!r} is not vapid")
    values = {}
    for part in params.split(","):
        name, _, value = part.strip().partition("=")
        values[name.strip()] = value.strip()
    if "t" not in values or "k" not in values:
        raise PushError(401, "vapid needs t= and k=")
    try:
        header_b64, claims_b64, signature_b64 = values["t"].split(".")
        header = json.loads(b64u_decode(header_b64))
        claims = json.loads(b64u_decode(claims_b64))
        signature = b64u_decode(signature_b64)
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64u_decode(values["k"]))
    except ValueError as exc:
        raise PushError(401, f"malformed vapid token: {exc}") from exc
    if header.get("alg") != "ES256" or len(signature) != 64:
        raise PushError(401, "the JWT is not ES256")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise PushError(403, "the JWT's signature does not match k=") from exc
    if claims.get("aud") != audience:
        raise PushError(403, f"aud {claims.get('aud')!r} is not {audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now or exp > now + MAX_JWT_LIFETIME_S:
        raise PushError(403, f"exp {exp!r} is not within 24 h from now")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:", "http:")):
        raise PushError(403, f"sub {sub!r} is no contact")
    return claims


@dataclass
class BrowserSubscription:
    """What a browser keeps (private key, auth secret) and what it sends the server."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def p256dh(self) -> bytes:
        return _point(self.private_key.public_key())

    def to_json(self, label: str | None = None) -> dict[str, Any]:
        """PushSubscription.toJSON(), plus a label if given."""
        body: dict[str, Any] = {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64u_encode(self.p256dh), "auth": b64u_encode(self.auth)},
        }
        if label is not None:
            body["label"] = label
        return body


@dataclass(frozen=True)
class Received:
    token: str
    payload: bytes
    headers: dict[str, str]
    claims: dict[str, Any]
    vapid_key: str  # the k= value
    at: float  # time.monotonic() when it arrived
    wall: float
    peer_port: int  # the sender's port: one per connection, so reuse shows

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class Refusal:
    token: str
    status: int
    reason: str


@dataclass
class PushService:
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    _keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = field(default_factory=dict)
    _answers: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    _stalls: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    # -- life --------------------------------------------------------------------------
    def start(self) -> PushService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: a sender may reuse the connection

            def log_message(self, *_args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                service._handle(self)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    # -- what tests set up and read ----------------------------------------------------
    def subscribe(self) -> BrowserSubscription:
        """A new browser-like subscription to this service."""
        token = uuid.uuid4().hex
        private = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        with self._lock:
            self._keys[token] = (private, auth)
        return BrowserSubscription(token, f"{self.origin}/push/{token}", private, auth)

    def respond(self, token: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer `status` for this token from now on (201: accept again)."""
        with self._lock:
            self._answers[token] = (status, headers or {})

    def stall(self, token: str, seconds: float) -> None:
        """Hold this token's answers back for `seconds` (a push service that hangs)."""
        with self._lock:
            self._stalls[token] = seconds

    def for_token(self, token: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.token == token]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        """Block until `count` pushes have arrived (for a sender on another thread)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout_s)
            return list(self.received)

    # -- the protocol ------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        token = request.path.rsplit("/", 1)[-1] if request.path.startswith("/push/") else ""
        length = int(request.headers.get("content-length") or 0)
        with self._lock:
            stall = self._stalls.get(token)
        if stall:
            time.sleep(stall)
        body = request.rfile.read(length) if 0 < length <= 1 << 20 else b""
        try:
            status, extra = self._accept(token, request, body, length)
        except PushError as exc:
            with self._lock:
                self.refused.append(Refusal(token, exc.status, exc.reason))
            status, extra = exc.status, {}
            reason = exc.reason.encode()
            self._answer(request, status, extra, reason)
            return
        self._answer(request, status, extra, b"")

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _accept(
        self, token: str, request: BaseHTTPRequestHandler, body: bytes, length: int
    ) -> tuple[int, dict[str, str]]:
        with self._lock:
            keys = self._keys.get(token)
            answer = self._answers.get(token)
        if keys is None:
            raise PushError(404, "no such subscription")
        if answer is not None and answer[0] != 201:
            return answer  # what the test asked this token to say (404, 410, 429, 500 ...)
        if length > MAX_BODY:
            raise PushError(413, f"body of {length} bytes")
        headers = {k.lower(): v for k, v in request.headers.items()}
        claims = verify_vapid(
            headers.get("authorization", ""), audience=self.origin, now=time.time()
        )
        ttl = headers.get("ttl", "")
        if not ttl.isdigit():
            raise PushError(400, "TTL header missing or not a number")
        if headers.get("urgency", "normal") not in URGENCIES:
            raise PushError(400, f"urgency {headers.get('urgency')!r}")
        if headers.get("content-encoding") != "aes128gcm":
            raise PushError(415, f"content-encoding {headers.get('content-encoding')!r}")
        payload = decrypt_aes128gcm(body, keys[0], keys[1])
        k = headers["authorization"].split("k=", 1)[1].split(",")[0].strip()
        peer = request.client_address[1]
        message = Received(token, payload, headers, claims, k, time.monotonic(), time.time(), peer)
        with self._arrived:
            self.received.append(message)
            self._arrived.notify_all()
        return 201, {"Location": f"{self.origin}/message/{uuid.uuid4().hex}"}
