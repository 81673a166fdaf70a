"""A real doorwarden server on a free loopback port, in a thread of this process, on the
test's own database: for clients that speak real HTTP (schema fuzzing)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from doorwarden.config import Settings
from doorwarden.main import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(settings: Settings, *, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """The server's base URL; with `tls` (certificate, key files) it serves https/wss."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws_per_message_deflate=False,  # as `doorwarden serve`
        ws_ping_interval=settings.live_ping_s,
        ws_ping_timeout=settings.live_ping_s,
        proxy_headers=False,  # as `doorwarden serve`: our settings decide which proxy to believe
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="doorwarden-test-server", daemon=True)
    thread.start()
    base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
            health = httpx.get(f"{base_url}/healthz", timeout=1, verify=verify)
            if health.status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield base_url
    finally:
        # Connections the test has just closed are still being finished by their
        # handlers (a viewer's closing audit): let them end, as a real shutdown drains,
        # before stopping. uvicorn's shutdown sends a close to every WebSocket, and one
        # that is closing already raises in the server's thread (InvalidState).
        drained = time.monotonic() + 3
        while server.server_state.connections and time.monotonic() < drained:
            time.sleep(0.02)
        server.should_exit = True
        thread.join(timeout=10)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files (for TLS on loopback)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
