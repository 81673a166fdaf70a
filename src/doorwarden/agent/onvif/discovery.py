"""WS-Discovery for ONVIF cameras: a Probe for `dn:NetworkVideoTransmitter` sent to the
multicast group 239.255.255.250:3702 (the LAN) or to given addresses (a camera on a
routed network, the tests' responder), and the ProbeMatches that come back within the
timeout, parsed and merged by endpoint reference (a camera answering twice, on two
interfaces or to two probes, is one camera).

Replies are untrusted datagrams from anyone on the LAN: each is parsed with a parser
that resolves no entities, loads no DTD and fetches nothing, a reply with a DOCTYPE is
refused outright, and sizes and counts are capped. Whatever is not a ProbeMatches (an
SSDP answer, noise, another protocol) is counted and skipped.
"""

from __future__ import annotations

import select
import socket
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import structlog
from lxml import etree  # type: ignore[import-untyped]  # comes with onvif-zeep-async

log = structlog.get_logger("doorwarden.agent.onvif.discovery")

MULTICAST = ("239.255.255.250", 3702)
PORT = 3702
MAX_DATAGRAM = 65535
MAX_DEVICES = 256
MAX_ITEMS = 32  # XAddrs or scopes per camera
MAX_TEXT = 4096  # characters of one XAddrs or Scopes list
PROBE_TYPES = "dn:NetworkVideoTransmitter"


@dataclass
class Discovered:
    """One camera: its endpoint reference (urn:uuid:...), service addresses and scopes."""

    endpoint: str
    xaddrs: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    sender: str = ""  # the address the reply came from

    @property
    def name(self) -> str | None:
        return _scope(self.scopes, "name")

    @property
    def hardware(self) -> str | None:
        return _scope(self.scopes, "hardware")

    @property
    def location(self) -> str | None:
        return _scope(self.scopes, "location")

    def device_address(self) -> tuple[str, int] | None:
        """(host, port) of the first http(s) XAddr, preferring the replying address's
        own (a camera with several interfaces lists them all)."""
        parsed = []
        for xaddr in self.xaddrs:
            try:
                parts = urlsplit(xaddr)
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                continue
            if parts.scheme in ("http", "https") and parts.hostname:
                parsed.append((parts.hostname, port))
        for host, port in parsed:
            if host == self.sender:
                return host, port
        return parsed[0] if parsed else None


@dataclass
class Discovery:
    cameras: list[Discovered]
    ignored: int  # datagrams that were not a usable ProbeMatches
    probes: int  # probes sent


def _scope(scopes: list[str], kind: str) -> str | None:
    prefix = f"onvif://www.onvif.org/{kind}/"
    for scope in scopes:
        if scope.lower().startswith(prefix):
            value = unquote(scope[len(prefix) :]).replace("_", " ").strip()
            if value:
                return value[:128]
    return None


def probe_message(message_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        "<s:Header>"
        '<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>'
        f"<a:MessageID>{message_id}</a:MessageID>"
        "<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
        "</a:Address></a:ReplyTo>"
        '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>'
        "</s:Header>"
        f"<s:Body><d:Probe><d:Types>{PROBE_TYPES}</d:Types></d:Probe></s:Body>"
        "</s:Envelope>"
    ).encode()


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )  # fmt: skip


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse_probe_matches(data: bytes, sender: str = "") -> list[Discovered] | None:
    """The cameras in one ProbeMatches datagram; None when it is not one (not XML, a
    DOCTYPE, another message)."""
    if len(data) > MAX_DATAGRAM or b"<!DOCTYPE" in data[:4096].upper():
        return None
    try:
        root = etree.fromstring(data, parser=_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None or root.getroottree().docinfo.doctype:
        return None
    matches = [e for e in root.iter() if _local(e.tag) == "ProbeMatch"]
    if not matches:
        return None
    found = []
    for match in matches[:MAX_DEVICES]:
        fields = {_local(e.tag): (e.text or "") for e in match.iter() if _local(e.tag)}
        endpoint = next(
            (
                (e.text or "").strip()
                for e in match.iter()
                if _local(e.tag) == "Address" and _local(e.getparent().tag) == "EndpointReference"
            ),
            "",
        )[:256]
        xaddrs = _words(fields.get("XAddrs", ""))
        if not endpoint and not xaddrs:
            continue
        found.append(
            Discovered(
                endpoint=endpoint or xaddrs[0],
                xaddrs=xaddrs,
                scopes=_words(fields.get("Scopes", "")),
                types=_words(fields.get("Types", "")),
                sender=sender,
            )
        )
    return found


def _words(text: str) -> list[str]:
    return [w[:512] for w in text[:MAX_TEXT].split()][:MAX_ITEMS]


def _merge(into: dict[str, Discovered], camera: Discovered) -> None:
    known = into.get(camera.endpoint)
    if known is None:
        if len(into) < MAX_DEVICES:
            into[camera.endpoint] = camera
        return
    for attr in ("xaddrs", "scopes", "types"):
        have: list[str] = getattr(known, attr)
        have += [v for v in getattr(camera, attr) if v not in have][: MAX_ITEMS - len(have)]


def _target(address: str) -> tuple[str, int]:
    """ "IP", "IP:PORT" or "[IPv6]:PORT" -> (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or PORT)
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, int(port)
    return address, PORT


def discover(
    timeout_s: float = 3.0,
    addresses: list[str] | None = None,
    *,
    interface: str | None = None,
    repeat: int = 2,
) -> Discovery:
    """Probe and collect ProbeMatches for `timeout_s`. `addresses`: unicast targets
    ("IP" or "IP:PORT") instead of the multicast group. Probes are sent `repeat` times
    (UDP may drop one; the answers are merged). OSError when no socket can be opened."""
    targets = [_target(a) for a in addresses] if addresses else [MULTICAST]
    family = socket.AF_INET6 if any(":" in h for h, _ in targets) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))  # noqa: S104 - replies come from the LAN
        if not addresses:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
            if interface:
                sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface)
                )
        message_id = f"urn:uuid:{uuid.uuid4()}"
        probe = probe_message(message_id)
        probes = 0
        for _ in range(max(1, repeat)):
            for target in targets:
                try:
                    sock.sendto(probe, target)
                    probes += 1
                except OSError as exc:
                    log.warning("onvif.probe_failed", target=f"{target[0]}:{target[1]}",
                                error=str(exc))  # fmt: skip
        return _collect(sock, timeout_s, probes)
    finally:
        sock.close()


def _collect(sock: socket.socket, timeout_s: float, probes: int) -> Discovery:
    found: dict[str, Discovered] = {}
    ignored = 0
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            break
        try:
            data, sender = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            continue  # an ICMP "port unreachable" from a unicast target: keep listening
        cameras = parse_probe_matches(data, str(sender[0]))
        if cameras is None:
            ignored += 1
            continue
        for camera in cameras:
            _merge(found, camera)
    return Discovery(list(found.values()), ignored, probes)
