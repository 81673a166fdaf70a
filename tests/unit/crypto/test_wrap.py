"""Clip keys wrapped to recipients: only the named recipient opens them."""

from __future__ import annotations

import pytest

from doorwarden.crypto import stream
from doorwarden.crypto.errors import MalformedError, NotARecipientError
from doorwarden.crypto.keys import RecipientKey
from doorwarden.crypto.wrap import WrappedKey, unwrap_key, wrap_key


def test_the_recipient_unwraps_the_clip_key() -> None:
    member, key = RecipientKey.generate(), stream.new_key()
    wrapped = wrap_key(key, member.public)
    assert unwrap_key(wrapped, member) == key
    assert unwrap_key(WrappedKey.from_json(wrapped.to_json()), member) == key
    assert key not in wrapped.ciphertext and wrapped.ciphertext != key


def test_each_wrap_is_fresh() -> None:
    member, key = RecipientKey.generate(), stream.new_key()
    a, b = wrap_key(key, member.public), wrap_key(key, member.public)
    assert a.ephemeral != b.ephemeral and a.ciphertext != b.ciphertext


def test_another_key_cannot_unwrap() -> None:
    member, stranger = RecipientKey.generate(), RecipientKey.generate()
    wrapped = wrap_key(stream.new_key(), member.public)
    with pytest.raises(NotARecipientError):
        unwrap_key(wrapped, stranger)
    # Relabelling the wrap for the stranger does not help: the KEK binds both keys.
    relabelled = WrappedKey(
        WrappedKey.from_json(wrap_key(b"x" * 32, stranger.public).to_json()).recipient,
        wrapped.ephemeral,
        wrapped.ciphertext,
    )
    with pytest.raises(NotARecipientError):
        unwrap_key(relabelled, stranger)


def test_a_tampered_wrap_fails() -> None:
    member = RecipientKey.generate()
    wrapped = wrap_key(stream.new_key(), member.public)
    bad = WrappedKey(
        wrapped.recipient,
        wrapped.ephemeral,
        bytes([wrapped.ciphertext[0] ^ 1]) + wrapped.ciphertext[1:],
    )
    with pytest.raises(NotARecipientError):
        unwrap_key(bad, member)


@pytest.mark.parametrize(
    "data",
    [None, [], {"recipient": "a"}, {"recipient": "a", "ephemeral": "!!", "wrapped": "AA"},
     {"recipient": "a", "ephemeral": "AAAA", "wrapped": "AAAA"},
     {"recipient": 1, "ephemeral": "AAAA", "wrapped": "AAAA"}],
)  # fmt: skip
def test_malformed_wraps_are_refused(data: object) -> None:
    with pytest.raises(MalformedError):
        WrappedKey.from_json(data)
