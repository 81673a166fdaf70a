"""A real HTTPS webhook receiver on loopback, for the webhook tests.

TLS with a certificate made here with `cryptography` (a throwaway CA, and a server
certificate for `hooks.test`, `localhost` and 127.0.0.1 signed by it; the server trusts
the CA through settings.webhook_ca_file). Every request is recorded with the TLS name
the client asked for (SNI), its headers and body, and whether its Standard Webhooks
signature verifies. The check is written here from the specification (HMAC-SHA256 of
`{id}.{timestamp}.{body}`, `v1,<base64>` entries, the `whsec_` secret base64-decoded),
independently of the server's signing module, so a mistake on one side does not cancel
out on the other. `answer(path, *statuses)` scripts the answers of a path (200 once the
script is used up); a status may carry headers (a redirect's Location). `hold(path)`
keeps its answers back until the test lets them go.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TOLERANCE_S = 300


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) as PEM files in `directory`."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("doorwarden test webhook CA"))
        .issuer_name(_name("doorwarden test webhook CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("hooks.test"), x509.DNSName("localhost")]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("hooks.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


def check_signature(secret: str, headers: dict[str, str], body: bytes, now: float) -> str | None:
    """Why the request does not verify, or None (Standard Webhooks, symmetric v1)."""
    try:
        msg_id = headers["webhook-id"]
        timestamp = headers["webhook-timestamp"]
        signatures = headers["webhook-signature"]
    except KeyError as exc:
        return f"missing header {exc}"
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_S:
        return f"timestamp {timestamp} outside {TOLERANCE_S} s of {int(now)}"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return None
    return "no v1 signature matches"


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    sni: str | None
    problem: str | None  # why the signature does not verify; None: it does

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    directory: Path
    now: Callable[[], float]
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # path -> whsec_...
    _script: dict[str, deque[tuple[int, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _holds: dict[str, threading.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ca_file, cert, key = make_certificates(self.directory)
        self._sni: dict[int, str | None] = {}
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = self._note_sni
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                sni = receiver._sni.get(id(self.connection))
                receiver._record(self.path, headers, body, sni)
                held = receiver._holds.get(self.path)
                if held is not None:
                    held.wait(10)
                status, extra = receiver._next(self.path)
                payload = b"ignored by the sender " * 200  # a long body it must not keep
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _note_sni(self, conn: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: Any) -> None:
        self._sni[id(conn)] = name

    def _record(self, path: str, headers: dict[str, str], body: bytes, sni: str | None) -> None:
        secret = self.secrets.get(path)
        problem = "no secret for this path" if secret is None else None
        if secret is not None:
            problem = check_signature(secret, headers, body, self.now())
        with self._lock:
            self.requests.append(Request(path, headers, body, sni, problem))

    def _next(self, path: str) -> tuple[int, dict[str, str]]:
        with self._lock:
            script = self._script[path]
            return script.popleft() if script else (200, {})

    def answer(self, path: str, *statuses: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            for status in statuses:
                self._script[path].append(status if isinstance(status, tuple) else (status, {}))

    def hold(self, path: str) -> threading.Event:
        """The path's answers wait (up to 10 s) until the returned event is set."""
        self._holds[path] = threading.Event()
        return self._holds[path]

    def url(self, path: str, host: str | None = None) -> str:
        return f"https://{host or self.host}:{self.port}{path}"

    def to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
