"""Chunked AES-256-GCM (the STREAM construction): encrypt a clip as it is read.

Layout: a 16-byte header, then chunks of `chunk_size` plaintext bytes each followed by
its 16-byte GCM tag, then a last chunk shorter than `chunk_size` (possibly empty: always
having one means the encryptor never has to hold a chunk back to learn whether it is the
last, so aligned input is encrypted without a copy). The header is

    b"DWS1" | chunk_size (u32, big-endian) | nonce prefix (8 random bytes)

and every chunk is authenticated with the header as associated data and the nonce

    nonce prefix[:7] | chunk index (u32, big-endian) | 1 if last chunk else 0

so a chunk moved elsewhere (reordered, dropped, taken from another clip) fails its tag,
and a stream cut at a chunk boundary is caught because its new last chunk was sealed as
"not last". Each clip has a fresh key, so nonces never repeat under one key.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from doorwarden.crypto.errors import ChunkError, MalformedError, TruncatedError

MAGIC = b"DWS1"
HEADER_BYTES = 16
TAG_BYTES = 16
DEFAULT_CHUNK = 256 * 1024  # big enough to amortise per-call cost, small to stream
MAX_CHUNK = 16 * 1024 * 1024
MAX_CHUNKS = 2**32


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= MAX_CHUNKS:
        raise MalformedError("too many chunks for one clip")
    return prefix[:7] + struct.pack(">IB", index, int(last))


def _pieces(blocks: Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """`blocks` cut into pieces of exactly `size`, each with whether it is the last, the
    last one being the remainder (possibly short or empty); for reading sealed streams,
    where the last piece is only known once the input has ended."""
    buf = bytearray()
    pending: bytes | None = None
    for block in blocks:
        buf += block
        while len(buf) >= size:
            if pending is not None:
                yield pending, False
            pending = bytes(buf[:size])
            del buf[:size]
    if pending is not None:
        if not buf:
            yield pending, True
            return
        yield pending, False
    yield bytes(buf), True


def encrypt(
    key: bytes, blocks: Iterable[bytes], chunk_size: int = DEFAULT_CHUNK
) -> Iterator[bytes]:
    """The sealed stream of `blocks`: the header first, then one bytes per chunk.

    Blocks must not change after they are handed over (bytes from `read()` never do).
    """
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise MalformedError(f"chunk size must be 1..{MAX_CHUNK}")
    header = MAGIC + struct.pack(">I", chunk_size) + os.urandom(8)
    yield header
    aead = AESGCM(key)
    prefix = header[8:]
    index = 0
    buf = bytearray()
    for block in blocks:
        view = memoryview(block)
        if buf:  # top up the partial chunk left by the previous block
            take = min(chunk_size - len(buf), len(view))
            buf += view[:take]
            view = view[take:]
            if len(buf) < chunk_size:
                continue
            yield aead.encrypt(_nonce(prefix, index, False), bytes(buf), header)
            index += 1
            buf.clear()
        full = len(view) // chunk_size * chunk_size
        for start in range(0, full, chunk_size):  # aligned: straight from the caller's block
            yield aead.encrypt(
                _nonce(prefix, index, False), view[start : start + chunk_size], header
            )
            index += 1
        buf += view[full:]
    yield aead.encrypt(_nonce(prefix, index, True), bytes(buf), header)


def read_header(header: bytes) -> int:
    """The chunk size a header announces; MalformedError for anything else."""
    if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
        raise MalformedError("not a sealed clip (bad header)")
    chunk_size = int.from_bytes(header[4:8], "big")
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise MalformedError(f"chunk size {chunk_size} out of range")
    return chunk_size


def decrypt(key: bytes, blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The plaintext of a sealed stream, chunk by chunk; raises on the first bad chunk.

    A consumer must treat what it has received as void when this raises: the chunks
    before were authentic, but the clip as a whole is not.
    """
    it = iter(blocks)
    head = bytearray()
    for block in it:
        head += block
        if len(head) >= HEADER_BYTES:
            break
    if len(head) < HEADER_BYTES:
        raise TruncatedError("the sealed clip ends inside its header")
    header = bytes(head[:HEADER_BYTES])
    chunk_size = read_header(header)
    aead = AESGCM(key)
    prefix = header[8:]
    sealed = _pieces(_flatten(head[HEADER_BYTES:], it), chunk_size + TAG_BYTES)
    for index, (chunk, last) in enumerate(sealed):
        if len(chunk) < TAG_BYTES:
            raise TruncatedError("the sealed clip ends inside a chunk")
        if last and len(chunk) == chunk_size + TAG_BYTES:
            # A full last chunk: the stream was cut after it (the real last one is short).
            if _authentic_as_middle(aead, prefix, index, chunk, header):
                raise TruncatedError(f"the sealed clip was cut after chunk {index}")
            raise ChunkError(f"chunk {index} failed authentication")
        try:
            yield aead.decrypt(_nonce(prefix, index, last), chunk, header)
        except InvalidTag:
            raise ChunkError(f"chunk {index} failed authentication") from None


def _flatten(first: bytes | bytearray, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield bytes(first)
    yield from rest


def _authentic_as_middle(
    aead: AESGCM, prefix: bytes, index: int, chunk: bytes, header: bytes
) -> bool:
    try:
        aead.decrypt(_nonce(prefix, index, False), chunk, header)
    except InvalidTag:
        return False
    return True


def chunk_count(plaintext_size: int, chunk_size: int) -> int:
    """Chunks in a sealed stream of `plaintext_size` bytes (the last one always short)."""
    return plaintext_size // chunk_size + 1


def sealed_span(index: int, plaintext_size: int, chunk_size: int) -> tuple[int, int]:
    """(start, end) byte offsets of chunk `index` in the sealed stream, end exclusive: what
    to fetch to decrypt one chunk, so a plaintext range needs only its own chunks."""
    start = HEADER_BYTES + index * (chunk_size + TAG_BYTES)
    plain = min(chunk_size, plaintext_size - index * chunk_size)
    return start, start + plain + TAG_BYTES


def decrypt_chunk(key: bytes, header: bytes, index: int, last: bool, sealed: bytes) -> bytes:
    """One chunk on its own (random access for seeking); the same checks as `decrypt`."""
    read_header(header)
    try:
        return AESGCM(key).decrypt(_nonce(header[8:], index, last), sealed, header)
    except InvalidTag:
        raise ChunkError(f"chunk {index} failed authentication") from None


class Decryptor:
    """`decrypt` pushed rather than pulled: feed the sealed stream in pieces of any size
    (`update`, the plaintext of every chunk it completes), then `finish` (the last chunk).
    The same checks as `decrypt`. A chunk is held back until a byte after it arrives,
    since only the end of the stream tells the last chunk: at most one sealed chunk
    (`buffered`) is held."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._buf = bytearray()
        self._header = b""
        self._sealed = 0  # sealed chunk size, once the header is read
        self._index = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _open(self, chunk: bytes | bytearray | memoryview, last: bool) -> bytes:
        nonce = _nonce(self._header[8:], self._index, last)
        try:
            plain = self._aead.decrypt(nonce, chunk, self._header)
        except InvalidTag:
            raise ChunkError(f"chunk {self._index} failed authentication") from None
        self._index += 1
        return plain

    def update(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        view = memoryview(data)
        out: list[bytes] = []
        if not self._header:
            need = HEADER_BYTES - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) < HEADER_BYTES:
                return out
            self._header = bytes(self._buf)
            self._sealed = read_header(self._header) + TAG_BYTES
            self._buf.clear()
        sealed = self._sealed
        if self._buf:  # top up the held chunk; open it only if more bytes follow it
            take = min(sealed - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < sealed or not view:
                return out
            out.append(self._open(self._buf, False))
            self._buf.clear()
        # Straight from the caller's bytes: every whole chunk followed by at least a byte.
        whole = (len(view) - 1) // sealed if view else 0
        for at in range(0, whole * sealed, sealed):
            out.append(self._open(view[at : at + sealed], False))
        self._buf += view[whole * sealed :]
        return out

    def finish(self) -> bytes:
        """The last chunk's plaintext; `TruncatedError` or `ChunkError` if the stream
        does not end as a sealed stream ends."""
        if not self._header:
            raise TruncatedError("the sealed clip ends inside its header")
        chunk = bytes(self._buf)
        self._buf.clear()
        if len(chunk) < TAG_BYTES:
            raise TruncatedError("the sealed clip ends inside a chunk")
        if len(chunk) == self._sealed:
            if _authentic_as_middle(self._aead, self._header[8:], self._index, chunk, self._header):
                raise TruncatedError(f"the sealed clip was cut after chunk {self._index}")
            raise ChunkError(f"chunk {self._index} failed authentication")
        return self._open(chunk, True)
