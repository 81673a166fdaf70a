"""Pairing this camera with a household (`doorwarden agent pair`).

The household's owner makes a one-time code on the server; the agent sends it with a
name and the public half of a new Ed25519 device key, and receives the device token,
the household's recipient keys and the plan (docs/clip-pipeline.md).

* Every pairing makes a new key (see identity.py: a key the previous household could
  hold is never reused). The new key stays in memory until the server accepted it: a
  mistyped, expired or used code, or a server that cannot be reached, leaves the current
  pairing as it was. Only then is the old pairing forgotten and the new one written (key
  first, then `device.json`). A crash between the server's answer and those writes
  leaves a device on the server that no agent holds: the owner removes it from the
  household's cameras, and the camera is paired again with a new code.
* The token and the keys must not cross a network in clear: plain http is refused unless
  the server is on this machine (loopback) or the operator says `--insecure-http`.
  Certificates are always checked (SSL_CERT_FILE names a private CA's certificate).
"""

from __future__ import annotations

import ipaddress
import ssl
from urllib.parse import urlsplit, urlunsplit

import httpx

from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore, write_atomic
from doorwarden.agent.delivery.uploader import UploadStatus, error_of, http_client
from doorwarden.crypto.keys import SigningKey, b64e

PAIR_PATH = "/api/v1/devices/pair"


class PairingError(Exception):
    """Pairing failed; the message says why and what to do, for the person pairing."""


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_url(url: str, *, insecure_http: bool = False) -> str:
    """The server's base URL, normalised (no trailing slash); PairingError if it is not
    one this agent may send its token to."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        _ = parts.port  # a bad port raises ValueError
    except ValueError as exc:
        raise PairingError(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise PairingError(
            f"{url!r} is not a server URL; give one such as https://doorwarden.example.org"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise PairingError("the server URL must not carry a user, a password, a query or a #")
    if parts.scheme == "http" and not (insecure_http or is_loopback(host)):
        raise PairingError(
            f"refusing plain http to {host}: the device token and keys would cross the "
            "network unencrypted. Use https://, or pass --insecure-http if this network "
            "is private and trusted."
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def explain_transport_error(exc: httpx.RequestError, server: str) -> str:
    """A transport failure as a person can act on it."""
    tls = _tls_error(exc)
    if tls is not None:
        reason = getattr(tls, "verify_message", None) or tls.reason or str(tls)
        hint = (
            " The server's certificate is not trusted here: if it comes from a private CA, "
            "set SSL_CERT_FILE to that CA's certificate; check the host name and this "
            "machine's clock."
            if isinstance(tls, ssl.SSLCertVerificationError)
            else " Is the server speaking https on that port?"
        )
        return f"TLS error talking to {server}: {reason}.{hint}"
    if isinstance(exc, httpx.TimeoutException):
        return f"the server at {server} did not answer in time ({type(exc).__name__})"
    return f"cannot reach the server at {server}: {exc or type(exc).__name__}"


def pair(
    store: IdentityStore,
    *,
    server: str,
    code: str,
    name: str,
    insecure_http: bool = False,
    client: httpx.Client | None = None,
) -> DeviceIdentity:
    """Pair with a household using a one-time code; the saved identity. PairingError
    (the current pairing, if any, unchanged) when it fails."""
    base = server_url(server, insecure_http=insecure_http)
    key = SigningKey.generate()
    owned = client is None
    http = client or http_client()
    try:
        response = http.post(
            base + PAIR_PATH,
            json={"code": code.strip(), "name": name.strip(), "public_key": b64e(key.public)},
        )
    except httpx.RequestError as exc:
        raise PairingError(explain_transport_error(exc, base)) from None
    finally:
        if owned:
            http.close()
    if response.status_code != 201:
        error_code, message, _ = error_of(response)
        if error_code == "invalid_pairing_code":
            raise PairingError(message)
        if error_code == f"http_{response.status_code}":
            raise PairingError(
                f"{base} answered {response.status_code} without a doorwarden error: "
                "is this the doorwarden server's address?"
            )
        raise PairingError(f"the server refused pairing ({error_code}): {message}")
    try:
        body = response.json()
        identity = DeviceIdentity.from_json(
            {
                "server": base,
                "device_id": body["device_id"],
                "household_id": body["household_id"],
                "token": body["token"],
                "mode": body.get("mode", "standard"),
                "recipients": body["recipients"],
                "plan": body["plan"],
                # The server's key for camera settings (kept: docs/camera-settings.md).
                "settings_key": body.get("settings_key"),
            }
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PairingError(f"{base} sent a pairing answer this agent cannot use: {exc}") from None
    if not identity.recipients:
        raise PairingError("the server named no key to seal clips to; pairing is unusable")
    _install(store, key, identity)
    return identity


def _install(store: IdentityStore, key: SigningKey, identity: DeviceIdentity) -> None:
    """Replace the pairing: the old key and state go, the new key, then the new state."""
    store.forget()
    store.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    UploadStatus.clear(store.state_dir)  # the previous pairing's upload troubles
    write_atomic(store.key_path, key.private_bytes(), replace=False)
    store.save(identity)
