"""Web Push's protocol parts against the RFCs: the VAPID key and JWT (RFC 8292), the
aes128gcm body (RFC 8291, its Appendix A vector), and which endpoints may be reached."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from doorwarden.formats.checkpoint import log_key
from doorwarden.notify.push import EndpointRefused, _check_resolved, check_endpoint, encrypt
from doorwarden.notify.vapid import (
    JWT_LIFETIME,
    VapidKey,
    b64url,
    b64url_decode,
    derive_private_key,
    origin_of,
)
from tests.push_service import PushError, b64u_decode, decrypt_aes128gcm, verify_vapid

SECRET = b"a test secret key that is long enough for the instance"

# RFC 8291 Appendix A.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS"
    "6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qu"
    "lcy4a-fN"
)


def _private(b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64u_decode(b64), "big"), ec.SECP256R1())


def test_the_test_receiver_decrypts_the_rfc_8291_example() -> None:
    body = b64u_decode(RFC_BODY)
    assert decrypt_aes128gcm(body, _private(RFC_UA_PRIVATE), b64u_decode(RFC_AUTH)) == RFC_PLAINTEXT


def test_the_encoder_reproduces_the_rfc_8291_example() -> None:
    # The encoder the server uses, given the example's ephemeral key and salt.
    body = http_ece.encrypt(
        RFC_PLAINTEXT,
        salt=b64u_decode(RFC_SALT),
        private_key=_private(RFC_AS_PRIVATE),
        dh=b64u_decode(RFC_UA_PUBLIC),
        auth_secret=b64u_decode(RFC_AUTH),
        version="aes128gcm",
        rs=4096,
    )
    assert body == b64u_decode(RFC_BODY)


def test_a_body_encrypted_for_one_browser_decrypts_there_only() -> None:
    browser = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    auth = b"0123456789abcdef"
    point = VapidKey(browser, "mailto:x@example.org").public_bytes
    body = encrypt(b'{"v":1}', p256dh=point, auth=auth)
    assert decrypt_aes128gcm(body, browser, auth) == b'{"v":1}'
    assert encrypt(b'{"v":1}', p256dh=point, auth=auth) != body  # fresh key and salt
    with pytest.raises(PushError):
        decrypt_aes128gcm(body, other, auth)
    with pytest.raises(PushError):
        decrypt_aes128gcm(body, browser, b"fedcba9876543210")
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(PushError):
        decrypt_aes128gcm(tampered, browser, auth)


def test_the_vapid_key_is_derived_from_the_secret_and_only_from_it() -> None:
    one = VapidKey(derive_private_key(SECRET), "mailto:ops@example.org")
    again = VapidKey(derive_private_key(SECRET), "mailto:ops@example.org")
    other = VapidKey(derive_private_key(SECRET + b"!"), "mailto:ops@example.org")
    assert one.public_bytes == again.public_bytes != other.public_bytes
    assert len(one.public_bytes) == 65 and one.public_bytes[0] == 4
    assert b64url_decode(one.public_key_b64) == one.public_bytes
    # Domain-separated from the log key derived from the same secret.
    _, log_private = log_key(SECRET, "example.org/log")
    scalar = one.private_key.private_numbers().private_value
    assert scalar.to_bytes(32, "big") != log_private
    with pytest.raises(ValueError, match="empty"):
        derive_private_key(b"")


def test_the_jwt_verifies_for_its_audience_within_twelve_hours() -> None:
    key = VapidKey(derive_private_key(SECRET), "mailto:ops@example.org")
    now = datetime.now(UTC)
    header = key.authorization("https://push.example.net:8443/wpush/v2/abc?x=1", now)
    claims = verify_vapid(header, audience="https://push.example.net:8443", now=time.time())
    assert claims["sub"] == "mailto:ops@example.org"
    assert now.timestamp() < claims["exp"] <= (now + JWT_LIFETIME).timestamp()
    assert header.split("k=")[1] == key.public_key_b64
    with pytest.raises(PushError, match="aud"):
        verify_vapid(header, audience="https://other.example.net", now=time.time())
    # Another key's k= does not verify this token.
    forged = (
        header.split("k=")[0] + "k=" + b64url(VapidKey(derive_private_key(b"x"), "").public_bytes)
    )
    with pytest.raises(PushError, match="signature"):
        verify_vapid(forged, audience="https://push.example.net:8443", now=time.time())
    # Reused for the same push service while it has time left; renewed near its end.
    assert key.authorization("https://push.example.net:8443/other", now) == header
    later = key.authorization("https://push.example.net:8443/x", now + timedelta(hours=11.5))
    assert later != header


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", "https://fcm.googleapis.com"),
        ("https://Push.Example.net:443/a", "https://push.example.net"),
        ("http://127.0.0.1:8080/push/x", "http://127.0.0.1:8080"),
        ("https://[2001:db8::1]:8443/p", "https://[2001:db8::1]:8443"),
    ],
)
def test_the_audience_is_the_endpoint_origin(endpoint: str, origin: str) -> None:
    assert origin_of(endpoint) == origin


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc:def",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://web.push.apple.com/QGx",
        "https://8.8.8.8/push",
        "https://[2606:4700::1111]/push",
    ],
)
def test_public_https_endpoints_are_allowed(endpoint: str) -> None:
    check_endpoint(endpoint, development=False)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.net/x",  # not https
        "ftp://push.example.net/x",
        "https://user:pw@push.example.net/x",  # userinfo
        "https://push.example.net@10.0.0.1/x",
        "https://10.0.0.1/x",  # private
        "https://192.168.1.2/x",
        "https://172.16.0.1/x",
        "https://127.0.0.1/x",  # loopback
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",  # mapped loopback
        "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "https://[fe80::1]/x",
        "https://0.0.0.0/x",
        "https://100.64.0.1/x",  # carrier-grade NAT
        "https://224.0.0.1/x",  # multicast
        "https://localhost/x",
        "https://push.localhost/x",
        "https://printer.local/x",
        "https://db.internal/x",
        "https://2130706433/x",  # 127.0.0.1 as one number
        "https://127.1/x",
        "https://0x7f.1/x",
        "https://intranet/x",  # one label
        "https:///x",
        "https://push.example.net:0/x",
        "https://push.example.net:99999/x",
        "https://push.example.net/x#frag",
        "not a url",
    ],
)
def test_endpoints_that_could_aim_the_server_inside_are_refused(endpoint: str) -> None:
    with pytest.raises(EndpointRefused):
        check_endpoint(endpoint, development=False)


def test_development_allows_plain_http_on_loopback_but_never_userinfo() -> None:
    assert check_endpoint("http://127.0.0.1:9/push/x", development=True) == "127.0.0.1"
    with pytest.raises(EndpointRefused):
        check_endpoint("http://u:p@127.0.0.1:9/push/x", development=True)
    with pytest.raises(EndpointRefused):
        check_endpoint("file:///etc/passwd", development=True)


async def test_a_name_that_resolves_to_a_private_address_is_refused_at_send() -> None:
    # `localhost` stands for any public-looking name whose DNS answer is internal: the
    # sender resolves it first and refuses (check_endpoint alone refuses it by name).
    assert await _check_resolved("localhost", 443) == "endpoint_private_address"
    assert await _check_resolved("127.0.0.1", 443) == "endpoint_private_address"
    unresolved = await _check_resolved("no-such-host.invalid", 443)
    assert unresolved is not None and unresolved.startswith("resolve")
