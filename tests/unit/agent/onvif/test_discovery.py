"""WS-Discovery over loopback: our Probe goes out as a UDP datagram to a real responder
(tests/onvif_responder.py) which answers with ProbeMatches; noise, hostile XML and
duplicates on the same socket are skipped or merged, never fatal."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from doorwarden.agent.onvif.discovery import Discovered, discover, parse_probe_matches
from tests.onvif_responder import DiscoveryResponder, probe_matches

FRONT = (
    "urn:uuid:11111111-2222-3333-4444-555555555555",
    ["http://127.0.0.1:8080/onvif/device_service"],
    [
        "onvif://www.onvif.org/type/video_encoder",
        "onvif://www.onvif.org/name/Front%20Door",
        "onvif://www.onvif.org/hardware/DS-2CD2143",
        "onvif://www.onvif.org/location/porch",
    ],
)
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Body><d:ProbeMatches><d:ProbeMatch>
<a:EndpointReference><a:Address>urn:uuid:evil</a:Address></a:EndpointReference>
<d:XAddrs>http://&lol3;/onvif/device_service</d:XAddrs></d:ProbeMatch></d:ProbeMatches>
</s:Body></s:Envelope>"""
EXTERNAL_ENTITY = BILLION_LAUGHS.replace(
    b'<!ENTITY lol "lol">', b'<!ENTITY lol SYSTEM "file:///etc/passwd">'
)
SSDP = b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nLOCATION: http://127.0.0.1/\r\n\r\n"


@pytest.fixture
def responder() -> Iterator[DiscoveryResponder]:
    duplicate = probe_matches(
        "urn:uuid:x", FRONT[0], ["http://[fe80::1]:8080/onvif/device_service"], FRONT[2][:1]
    )
    junk = [SSDP, b"\x00\xff" * 40, BILLION_LAUGHS, EXTERNAL_ENTITY, b"<a><b>truncated", duplicate]
    r = DiscoveryResponder([FRONT], extra=junk)
    yield r
    r.close()


def test_a_probe_to_a_unicast_address_finds_the_camera(responder: DiscoveryResponder) -> None:
    found = discover(1.0, [responder.address], repeat=1)
    [camera] = found.cameras
    assert camera.endpoint == FRONT[0]
    assert camera.name == "Front Door"
    assert camera.hardware == "DS-2CD2143"
    assert camera.location == "porch"
    # The duplicate (same endpoint, another interface) is merged into one camera.
    assert set(camera.xaddrs) == {FRONT[1][0], "http://[fe80::1]:8080/onvif/device_service"}
    assert camera.device_address() == ("127.0.0.1", 8080)  # the replying address's own
    assert found.ignored == 5  # SSDP, binary noise, two hostile DTDs, truncated XML
    # Our probe was a real WS-Discovery Probe for video transmitters.
    [probe] = responder.probes
    assert b"dn:NetworkVideoTransmitter" in probe and b"discovery/Probe" in probe


def test_probes_repeat_and_answers_merge(responder: DiscoveryResponder) -> None:
    found = discover(1.0, [responder.address], repeat=2)
    assert len(responder.probes) == 2
    assert [c.endpoint for c in found.cameras] == [FRONT[0]]


def test_two_cameras_at_two_addresses() -> None:
    other = ("urn:uuid:other", ["http://127.0.0.2:80/onvif/device_service"], [])
    a, b = DiscoveryResponder([FRONT]), DiscoveryResponder([other])
    try:
        found = discover(1.0, [a.address, b.address], repeat=1)
    finally:
        a.close()
        b.close()
    assert sorted(c.endpoint for c in found.cameras) == sorted([FRONT[0], other[0]])


def test_nobody_answers_within_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # takes the probe, says nothing
        port = silent.getsockname()[1]
        started = time.monotonic()
        found = discover(0.5, [f"127.0.0.1:{port}"])
    assert found.cameras == []
    assert 0.4 < time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, b"", b"not xml", b"<a>", SSDP, b"<x/>" * 20000,
     b"<?xml version='1.0'?><Envelope><Body><Hello/></Body></Envelope>"],
)  # fmt: skip
def test_what_is_not_a_probe_match_is_refused(data: bytes) -> None:
    assert parse_probe_matches(data) is None


def test_a_match_without_an_address_is_skipped_and_entities_stay_unexpanded() -> None:
    empty = probe_matches("urn:uuid:x", "", [], [])
    assert parse_probe_matches(empty) == []
    # An entity reference without a DOCTYPE is not expanded (nothing to expand it from).
    sneaky = probe_matches("urn:uuid:x", "urn:uuid:e", ["http://&xxe;/x"], [])
    assert parse_probe_matches(sneaky) is None  # undefined entity: not well-formed


def test_oversized_lists_are_capped() -> None:
    many = [f"http://10.0.0.{i % 250}:80/onvif/device_service" for i in range(500)]
    [camera] = parse_probe_matches(probe_matches("x", "urn:uuid:big", many, ["s"] * 500)) or []
    assert len(camera.xaddrs) <= 32 and len(camera.scopes) <= 32


def test_device_address_skips_what_is_not_http() -> None:
    cam = Discovered("urn:uuid:x", ["soap.udp://1.2.3.4", "http://host:bad/", "https://cam/x"])
    assert cam.device_address() == ("cam", 443)
    assert Discovered("urn:uuid:y", ["ftp://x"]).device_address() is None
