"""Where a webhook may be sent (server-side request forgery): checked when an endpoint is
registered and again at every attempt, on the address actually connected to.

Outside development: https only; no user name, password or fragment; the host a public
DNS name or a public address. A name is resolved once per attempt, every address it
resolves to must be public (loopback, private, link-local (169.254.169.254, the cloud
metadata service), unique-local, multicast, reserved, unspecified, carrier-grade NAT,
and IPv6 forms that embed one of those: IPv4-mapped, 6to4, Teredo, NAT64), and the
connection goes to that checked address with the name sent as Host and TLS SNI (and the
certificate checked against the name): a DNS answer that changes between the check and
the connection (rebinding) is never used. In development all of this is relaxed except
the pinning (loopback receivers, the demo).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2000
# Names that are never a public receiver: they name this machine or its network.
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet")
NAT64 = ipaddress.ip_network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class Refused(ValueError):
    """An endpoint the server will not send to; the message says why, for the owner."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case, no trailing dot, no brackets
    port: int
    path: str  # path and query, at least "/"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Pinned:
    """Where to connect (a checked address) and what to call the host there."""

    target: Target
    address: str

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.target.scheme}://{host}:{self.target.port}{self.target.path}"


def _embedded(address: Address) -> Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    inner = _embedded(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def check_url(url: str, *, development: bool) -> Target:
    """The URL's parts if it may be registered, else Refused (no DNS here)."""
    if len(url) > MAX_URL:
        raise Refused(f"The URL is longer than {MAX_URL} characters.")
    if any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
        raise Refused("The URL has spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused("The URL is not valid.") from exc
    scheme = parts.scheme.lower()
    if scheme not in (("https", "http") if development else ("https",)):
        raise Refused("The URL must start with https://.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise Refused("The URL has no host.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refused("The URL may not carry a user name or password.")
    if parts.fragment or url.endswith("#"):
        raise Refused("The URL may not have a fragment (#...).")
    if port == 0:
        raise Refused("The URL's port is not valid.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target = Target(scheme, host, port or (443 if scheme == "https" else 80), path)
    if development:
        return target
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not is_public(literal):
            raise Refused("The URL points at a private, loopback or reserved address.")
        return target
    labels = host.split(".")
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        raise Refused("The URL names this machine or a local network.")
    if len(labels) < 2 or not labels[-1][:1].isalpha() or not all(labels):
        # Resolvers read `2130706433` or `127.1` as 127.0.0.1: a public name ends in letters.
        raise Refused("The URL's host is not a public DNS name.")
    return target


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolver_with(overrides: Mapping[str, str], fallback: Resolver = system_resolver) -> Resolver:
    """DNS with fixed answers for some names (settings.webhook_resolve, like curl's
    --resolve): their address is still checked like any answer."""

    async def resolve(host: str, port: int) -> list[str]:
        if host in overrides:
            return [overrides[host]]
        return await fallback(host, port)

    return resolve


async def pin(target: Target, *, development: bool, resolver: Resolver) -> Pinned:
    """The address to connect to: Refused if the host does not resolve or any of its
    addresses is not public (outside development)."""
    try:
        literal: Address | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        answers = [literal]
    else:
        try:
            found = await resolver(target.host, target.port)
        except OSError as exc:
            raise Refused(f"The host does not resolve ({exc.strerror or exc}).") from exc
        answers = []
        for text in found:
            try:
                answers.append(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError as exc:
                raise Refused("The host resolves to something that is not an address.") from exc
        if not answers:
            raise Refused("The host does not resolve.")
    if not development and not all(is_public(a) for a in answers):
        raise Refused("The host resolves to a private, loopback or reserved address.")
    return Pinned(target, str(answers[0]))
