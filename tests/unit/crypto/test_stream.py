"""Chunked AES-256-GCM: round trip, and every way of cutting or shuffling the stream fails."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doorwarden.crypto import stream
from doorwarden.crypto.errors import ChunkError, MalformedError, TruncatedError

CHUNK = 64


def seal(data: bytes, key: bytes, chunk: int = CHUNK, pieces: int = 3) -> list[bytes]:
    step = max(1, len(data) // pieces)
    blocks = [data[i : i + step] for i in range(0, len(data), step)]
    return list(stream.encrypt(key, blocks, chunk))


def unseal(parts: list[bytes], key: bytes) -> bytes:
    return b"".join(stream.decrypt(key, parts))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=700), chunk=st.integers(1, 200), pieces=st.integers(1, 9))
def test_round_trip_for_any_length_and_any_block_boundaries(
    data: bytes, chunk: int, pieces: int
) -> None:
    key = stream.new_key()
    sealed = seal(data, key, chunk, pieces)
    assert unseal(sealed, key) == data
    # Read back in other block sizes too (an upload arrives in its own pieces).
    joined = b"".join(sealed)
    assert unseal([joined[i : i + 7] for i in range(0, len(joined), 7)], key) == data


def test_ciphertext_size_is_header_plus_a_tag_per_chunk() -> None:
    key = stream.new_key()
    # Always a short (possibly empty) last chunk, so aligned input needs no hold-back.
    for size, chunks in ((0, 1), (1, 1), (CHUNK, 2), (CHUNK + 1, 2), (3 * CHUNK, 4)):
        sealed = b"".join(seal(os.urandom(size), key))
        assert len(sealed) == stream.HEADER_BYTES + size + chunks * stream.TAG_BYTES


def chunks_of(sealed: list[bytes]) -> tuple[bytes, list[bytes]]:
    body = b"".join(sealed[1:])
    size = CHUNK + stream.TAG_BYTES
    return sealed[0], [body[i : i + size] for i in range(0, len(body), size)]


DATA = os.urandom(5 * CHUNK + 10)


def test_a_flipped_byte_anywhere_is_detected() -> None:
    key = stream.new_key()
    sealed = b"".join(seal(DATA, key))
    for position in (0, 5, stream.HEADER_BYTES, stream.HEADER_BYTES + 70, len(sealed) - 1):
        bad = bytearray(sealed)
        bad[position] ^= 0x01
        with pytest.raises((ChunkError, MalformedError)):
            unseal([bytes(bad)], key)


def test_reordered_chunks_are_detected() -> None:
    key = stream.new_key()
    header, chunks = chunks_of(seal(DATA, key))
    chunks[1], chunks[2] = chunks[2], chunks[1]
    with pytest.raises(ChunkError, match="chunk 1"):
        unseal([header, *chunks], key)


def test_a_dropped_middle_chunk_is_detected() -> None:
    key = stream.new_key()
    header, chunks = chunks_of(seal(DATA, key))
    del chunks[2]
    with pytest.raises(ChunkError, match="chunk 2"):
        unseal([header, *chunks], key)


def test_cutting_at_a_chunk_boundary_is_truncation_not_a_shorter_clip() -> None:
    key = stream.new_key()
    header, chunks = chunks_of(seal(DATA, key))
    with pytest.raises(TruncatedError, match="cut after chunk 2"):
        unseal([header, *chunks[:3]], key)
    with pytest.raises(TruncatedError):
        unseal([header[:10]], key)
    with pytest.raises(TruncatedError):
        unseal([header, chunks[0][:8]], key)


def test_appended_bytes_are_detected() -> None:
    key = stream.new_key()
    sealed = seal(DATA, key)
    with pytest.raises(ChunkError):
        unseal([*sealed, os.urandom(CHUNK + stream.TAG_BYTES)], key)


def test_a_chunk_from_another_clip_under_the_same_key_fails() -> None:
    """Even if a key were reused, the random nonce prefix keeps clips apart."""
    key = stream.new_key()
    header_a, chunks_a = chunks_of(seal(DATA, key))
    _, chunks_b = chunks_of(seal(DATA, key))
    with pytest.raises(ChunkError):
        unseal([header_a, chunks_a[0], chunks_b[1], *chunks_a[2:]], key)


def test_the_wrong_key_fails_on_the_first_chunk() -> None:
    sealed = seal(DATA, stream.new_key())
    with pytest.raises(ChunkError, match="chunk 0"):
        unseal(sealed, stream.new_key())


@pytest.mark.parametrize(
    "header",
    [b"XXXX" + bytes(12), b"DWS1" + (0).to_bytes(4, "big") + bytes(8),
     b"DWS1" + (2**31).to_bytes(4, "big") + bytes(8)],
)  # fmt: skip
def test_bad_headers_are_malformed(header: bytes) -> None:
    with pytest.raises(MalformedError):
        unseal([header, bytes(40)], stream.new_key())


def test_chunk_size_is_bounded_when_sealing() -> None:
    with pytest.raises(MalformedError):
        list(stream.encrypt(stream.new_key(), [b"x"], 0))


def test_any_chunk_decrypts_on_its_own_for_seeking() -> None:
    key = stream.new_key()
    data = os.urandom(5 * CHUNK + 10)
    sealed = b"".join(seal(data, key))
    header = sealed[: stream.HEADER_BYTES]
    count = stream.chunk_count(len(data), CHUNK)
    assert count == 6
    pieces = []
    for index in range(count):
        start, end = stream.sealed_span(index, len(data), CHUNK)
        pieces.append(
            stream.decrypt_chunk(key, header, index, index == count - 1, sealed[start:end])
        )
    assert b"".join(pieces) == data
    start, end = stream.sealed_span(2, len(data), CHUNK)
    with pytest.raises(ChunkError):  # a chunk presented at another index
        stream.decrypt_chunk(key, header, 3, False, sealed[start:end])
    with pytest.raises(ChunkError):  # a middle chunk presented as the last
        stream.decrypt_chunk(key, header, 2, True, sealed[start:end])
