"""Standard Webhooks signatures against the specification's published example, and the
sealed secrets."""

from __future__ import annotations

import uuid

import pytest

from doorwarden.integrations.webhooks import signing

# The example the Standard Webhooks / Svix libraries test against.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_example_signs_as_published() -> None:
    assert signing.signature(signing.key_of(SECRET), MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_sign_then_verify_and_what_verify_refuses() -> None:
    key = signing.new_key()
    secret = signing.secret_text(key)
    signed = signing.sign([signing.new_key(), key], MSG_ID, TIMESTAMP, BODY)
    signing.verify(secret, signed.headers, BODY, now=TIMESTAMP + 10)
    with pytest.raises(signing.BadSignature):
        signing.verify(secret, signed.headers, BODY + b" ", now=TIMESTAMP)
    with pytest.raises(signing.BadSignature):
        signing.verify(secret, signed.headers, BODY, now=TIMESTAMP + signing.TOLERANCE_S + 1)
    with pytest.raises(signing.BadSignature):
        signing.verify(secret, {**signed.headers, "webhook-id": "msg_other"}, BODY, now=TIMESTAMP)
    with pytest.raises(ValueError, match=r"no '\.'"):
        signing.sign([key], "msg.with.dots", TIMESTAMP, BODY)


def test_a_sealed_secret_opens_only_with_its_instance_key_and_endpoint() -> None:
    endpoint = uuid.uuid4()
    key = signing.new_key()
    sealed = signing.seal(b"instance secret", endpoint, key)
    assert key not in sealed
    assert signing.unseal(b"instance secret", endpoint, sealed) == key
    with pytest.raises(signing.SecretUnreadable):
        signing.unseal(b"another secret", endpoint, sealed)
    with pytest.raises(signing.SecretUnreadable):
        signing.unseal(b"instance secret", uuid.uuid4(), sealed)
