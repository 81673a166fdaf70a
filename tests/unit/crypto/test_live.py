"""crypto/live.py: an end-to-end live session, sealed as the agent does and opened as a
member's page does (static/e2e/live.js is its twin), with the relay's strict check."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from doorwarden.crypto.errors import MalformedError, NotARecipientError, SignatureError
from doorwarden.crypto.keys import RecipientKey, SigningKey, b64d, b64e
from doorwarden.crypto.live import (
    COUNTER,
    DELTA,
    HEAD_BYTES,
    INIT,
    KEYFRAME,
    MAX_RECIPIENTS,
    LiveOpener,
    LiveSealer,
    LiveTamperedError,
    aad,
    check_block,
    signed_part,
)
from doorwarden.crypto.wrap import WrappedKey, unwrap_key

INIT_SEGMENT = b"\x00\x00\x00\x18ftypiso5" + bytes(12) + b"\x00\x00\x00\x08moov"
FRAGMENT = b"\x00\x00\x00\x10moof" + bytes(8) + b"\x00\x00\x00\x0cmdat" + b"abcd"


@pytest.fixture
def device() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def members() -> list[RecipientKey]:
    return [RecipientKey.generate(), RecipientKey.generate()]


def sealer_for(members: list[RecipientKey], device: SigningKey) -> LiveSealer:
    return LiveSealer([m.public for m in members], "dev-1", device)


def test_every_member_opens_the_stream_and_the_bytes_match(
    members: list[RecipientKey], device: SigningKey
) -> None:
    sealer = sealer_for(members, device)
    sealed = [sealer.seal(INIT, INIT_SEGMENT), sealer.seal(KEYFRAME, FRAGMENT)]
    sealed.append(sealer.seal(DELTA, FRAGMENT))
    for member in members:
        opener = LiveOpener(copy.deepcopy(sealer.block), device.public, member)
        assert opener.device == "dev-1"
        assert opener.open(INIT, sealed[0]) == INIT_SEGMENT
        assert opener.open(KEYFRAME, sealed[1]) == FRAGMENT
        assert opener.open(DELTA, sealed[2]) == FRAGMENT


def test_the_format_is_counter_nonce_aes_gcm_with_the_session_kind_and_counter_bound(
    members: list[RecipientKey], device: SigningKey
) -> None:
    """A vector decoded by hand, without LiveOpener: what the page implements."""
    sealer = sealer_for(members, device)
    sealer.seal(INIT, INIT_SEGMENT)
    payload = sealer.seal(DELTA, FRAGMENT)
    assert COUNTER.unpack_from(payload)[0] == 1
    assert len(payload) == 8 + 12 + len(FRAGMENT) + 16
    session = b64d(sealer.block["session"], what="session", length=16)
    mine = WrappedKey.from_json(sealer.block["recipients"][0])
    key = unwrap_key(mine, members[0])
    nonce, body = payload[8:HEAD_BYTES], payload[HEAD_BYTES:]
    assert AESGCM(key).decrypt(nonce, body, session + b"\x02" + (1).to_bytes(8, "big")) == FRAGMENT
    assert aad(session, DELTA, 1) == session + b"\x02" + (1).to_bytes(8, "big")
    assert FRAGMENT not in payload and b"moof" not in payload


def test_each_stream_has_its_own_key_and_session(
    members: list[RecipientKey], device: SigningKey
) -> None:
    one, two = sealer_for(members, device), sealer_for(members, device)
    assert one.block["session"] != two.block["session"]
    payload = one.seal(INIT, INIT_SEGMENT)
    opener = LiveOpener(two.block, device.public, members[0])
    with pytest.raises(LiveTamperedError):  # another stream's key, another session
        opener.open(INIT, payload)


def test_reordered_replayed_relabelled_or_altered_payloads_are_refused(
    members: list[RecipientKey], device: SigningKey
) -> None:
    sealer = sealer_for(members, device)
    init, key1, delta2 = (
        sealer.seal(INIT, INIT_SEGMENT), sealer.seal(KEYFRAME, FRAGMENT),
        sealer.seal(DELTA, FRAGMENT),
    )  # fmt: skip
    opener = LiveOpener(sealer.block, device.public, members[0])
    opener.open(INIT, init)
    with pytest.raises(LiveTamperedError, match="does not open"):  # a delta called keyframe
        opener.open(KEYFRAME, delta2)
    flipped = bytearray(key1)
    flipped[-1] ^= 1
    with pytest.raises(LiveTamperedError, match="does not open"):
        opener.open(KEYFRAME, bytes(flipped))
    renumbered = COUNTER.pack(5) + key1[8:]  # the counter is in the tag's data
    with pytest.raises(LiveTamperedError, match="does not open"):
        opener.open(KEYFRAME, renumbered)
    opener.open(DELTA, delta2)  # a gap (the queue dropped 1) is fine
    with pytest.raises(LiveTamperedError, match="out of order"):
        opener.open(KEYFRAME, key1)
    with pytest.raises(LiveTamperedError, match="out of order"):
        opener.open(DELTA, delta2)  # a replay
    with pytest.raises(LiveTamperedError, match="at least"):
        opener.open(DELTA, delta2[:30])


def test_a_block_the_camera_did_not_sign_or_not_for_me_is_refused(
    members: list[RecipientKey], device: SigningKey
) -> None:
    sealer = sealer_for(members[:1], device)
    with pytest.raises(NotARecipientError):
        LiveOpener(sealer.block, device.public, members[1])
    with pytest.raises(SignatureError):
        LiveOpener(sealer.block, SigningKey.generate().public, members[0])
    # A server that adds itself as a recipient breaks the signature.
    forged = copy.deepcopy(sealer.block)
    intruder = sealer_for([RecipientKey.generate()], device).block["recipients"][0]
    forged["recipients"].append(intruder)
    with pytest.raises(SignatureError):
        LiveOpener(forged, device.public, members[0])
    assert signed_part("s", [], "d") == b'{"device":"d","recipients":[],"session":"s"}'


def test_the_relay_check_is_strict_about_shape_and_size(
    members: list[RecipientKey], device: SigningKey
) -> None:
    block = sealer_for(members, device).block
    assert check_block(block) == block
    bad: list[object] = [
        None, [], {**block, "extra": 1}, {k: v for k, v in block.items() if k != "device"},
        {**block, "session": b64e(bytes(15))}, {**block, "signature": "!!"},
        {**block, "device": ""}, {**block, "device": "x" * 65}, {**block, "recipients": []},
        {**block, "recipients": [block["recipients"][0]] * (MAX_RECIPIENTS + 1)},
        {**block, "recipients": [{**block["recipients"][0], "more": "x"}]},
        {**block, "recipients": [{**block["recipients"][0], "recipient": "Z" * 32}]},
        {**block, "recipients": [{**block["recipients"][0], "wrapped": b64e(bytes(40))}]},
        {**block, "session": 5},
    ]  # fmt: skip
    for value in bad:
        with pytest.raises(MalformedError):
            check_block(value)


def test_a_sealer_needs_a_member_key() -> None:
    with pytest.raises(ValueError, match="at least one"):
        LiveSealer([], "dev", SigningKey.generate())
