"""VAPID (RFC 8292): the instance's P-256 key and the JWT that names this server to a push
service.

The key is derived from the instance secret key (as `main.log_signer` derives the log
key), so every process of one instance signs with the same key, there is no key file to
back up or leak separately, and browsers' subscriptions (made against its public half)
survive restarts. Changing the secret key changes it: every browser must subscribe again.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from doorwarden.config import Settings

# Domain separation: the same secret also derives the log key and others; this label
# makes this one independent of them.
VAPID_KEY_INFO = b"doorwarden web push VAPID key (P-256) v1"
# The order of the P-256 group: a private scalar lies in [1, n-1].
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# RFC 8292 allows 24 h; a shorter token limits what a leaked header could be replayed for.
JWT_LIFETIME = timedelta(hours=12)
# A cached token is reused while it has at least this long left (one signature per push
# service per hours, not per message: the 1,000-subscription bench sends in a burst).
REUSE_MARGIN = timedelta(hours=1)
_JWT_HEADER = {"typ": "JWT", "alg": "ES256"}


def b64url(data: bytes) -> str:
    """Base64url without padding, as Web Push and JWT write binary values."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding; anything else (the standard alphabet, spaces,
    a wrong length) raises ValueError."""
    stripped = text.rstrip("=")
    if not stripped or any(c not in _B64URL for c in stripped) or len(stripped) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def derive_private_key(secret: bytes) -> ec.EllipticCurvePrivateKey:
    """The instance's VAPID key: HKDF-SHA256 of the secret, reduced into [1, n-1] (48
    bytes of output, so the reduction's bias is below 2^-128)."""
    if not secret:
        raise ValueError("secret: empty")
    okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=None, info=VAPID_KEY_INFO).derive(secret)
    scalar = int.from_bytes(okm, "big") % (P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def origin_of(endpoint: str) -> str:
    """The JWT audience: the push resource's origin (scheme, host and a non-default port)."""
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    port = parts.port
    default = {"https": 443, "http": 80}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


@dataclass
class VapidKey:
    """The signing half of VAPID, with the `sub` claim (a mailto: or https contact)."""

    private_key: ec.EllipticCurvePrivateKey
    subject: str
    _tokens: dict[str, tuple[datetime, str]] = field(default_factory=dict, repr=False)

    @property
    def public_bytes(self) -> bytes:
        """The uncompressed point (65 bytes): PushManager.subscribe's applicationServerKey."""
        return self.private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )

    @property
    def public_key_b64(self) -> str:
        return b64url(self.public_bytes)

    def token(self, audience: str, now: datetime) -> str:
        """A signed JWT for `audience`, reused while it has REUSE_MARGIN left."""
        cached = self._tokens.get(audience)
        if cached is not None and cached[0] - now >= REUSE_MARGIN:
            return cached[1]
        exp = int((now + JWT_LIFETIME).timestamp())
        claims = {"aud": audience, "exp": exp, "sub": self.subject}
        signing_input = (
            b64url(json.dumps(_JWT_HEADER, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        )
        der = self.private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)  # JWS wants r || s, 32 bytes each (RFC 7518 3.4)
        token = f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        if len(self._tokens) > 1000:  # one entry per push service: a handful in practice
            self._tokens.clear()
        # Cached until a little before its own exp (int() above rounded it down).
        self._tokens[audience] = (datetime.fromtimestamp(exp, now.tzinfo), token)
        return token

    def authorization(self, endpoint: str, now: datetime) -> str:
        """The Authorization header for a push to `endpoint` (RFC 8292 section 3)."""
        return f"vapid t={self.token(origin_of(endpoint), now)}, k={self.public_key_b64}"


def vapid_subject(settings: Settings) -> str:
    """Who to contact about this server's pushes: the operator's setting, else the
    instance's own address."""
    return settings.push_contact or settings.public_base_url.rstrip("/")


def vapid_key(settings: Settings) -> VapidKey:
    """The instance's VAPID key, derived from its secret key."""
    private = derive_private_key(settings.secret_key.get_secret_value().encode())
    return VapidKey(private, vapid_subject(settings))


@lru_cache(maxsize=8)
def _cached(secret: str, subject: str) -> VapidKey:
    return VapidKey(derive_private_key(secret.encode()), subject)


def instance_vapid_key(settings: Settings) -> VapidKey:
    """vapid_key, made once per secret and contact (and its JWTs cached with it)."""
    return _cached(settings.secret_key.get_secret_value(), vapid_subject(settings))
