"""Sealing one clip (encrypt, hash, wrap its key, describe it) and opening it again.

Both directions stream: a clip is never held in memory whole. The plaintext hash and
the ciphertext hash are computed on the way through; the manifest is built once the
stream has been consumed.

SHA-256 runs at about a sixth of AES-GCM's speed here, so two hashes would halve the
throughput of sealing; the plaintext is hashed on a second thread (hashlib releases the
GIL), overlapping the encryption and the ciphertext hash on the caller's thread.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from doorwarden.crypto import stream
from doorwarden.crypto.errors import (
    HashMismatchError,
    MalformedError,
    NotARecipientError,
    NotFoundInClipError,
    SealError,
)
from doorwarden.crypto.keys import KEY_BYTES, RecipientKey, key_id
from doorwarden.crypto.manifest import Manifest, Mode, SignedManifest
from doorwarden.crypto.wrap import unwrap_key, wrap_key

MAX_HASH_BACKLOG = 8  # blocks handed to the hashing thread and not yet hashed


@dataclass(frozen=True)
class ClipFacts:
    """What the agent knows about a clip, for its manifest."""

    device: str
    sequence: int
    previous: str
    start_utc: str
    end_utc: str
    duration_ms: int
    labels: tuple[str, ...]
    motion_score: int
    codec: str
    width: int
    height: int


class ClipSeal:
    """Seal one clip: iterate `encrypt(blocks)` to the end, then take `manifest(facts)`."""

    def __init__(
        self, recipients: Sequence[bytes], *, mode: Mode, chunk_size: int = stream.DEFAULT_CHUNK
    ) -> None:
        if not recipients:
            raise ValueError("a clip needs at least one recipient")
        self.mode = mode
        self.chunk_size = chunk_size
        self._key = stream.new_key()
        self._wrapped = tuple(wrap_key(self._key, r) for r in recipients)
        self._plain = hashlib.sha256()
        self._cipher = hashlib.sha256()
        self._size = self._cipher_size = 0
        self._thumbnail = b""
        self._done = False

    def _hash_aside(self, blocks: Iterable[bytes], pool: ThreadPoolExecutor) -> Iterator[bytes]:
        pending: deque[Future[None]] = deque()
        for block in blocks:
            self._size += len(block)
            pending.append(pool.submit(self._plain.update, block))  # one worker: in order
            if len(pending) > MAX_HASH_BACKLOG:  # bounded memory if hashing falls behind
                pending.popleft().result()
            yield block
        for future in pending:
            future.result()

    def encrypt(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        with ThreadPoolExecutor(1, thread_name_prefix="seal-hash") as pool:
            for out in stream.encrypt(self._key, self._hash_aside(blocks, pool), self.chunk_size):
                self._cipher.update(out)
                self._cipher_size += len(out)
                yield out
        self._done = True

    def seal_thumbnail(self, jpeg: bytes) -> bytes:
        """The thumbnail sealed under the clip's key (its own stream, so its own nonces);
        the manifest then carries its hash. At most one per clip."""
        if self._thumbnail:
            raise RuntimeError("a clip has one thumbnail")
        self._thumbnail = b"".join(stream.encrypt(self._key, [jpeg], self.chunk_size))
        return self._thumbnail

    def manifest(self, facts: ClipFacts) -> Manifest:
        if not self._done:
            raise RuntimeError("encrypt() must run to its end before the manifest is made")
        return Manifest(
            device=facts.device,
            sequence=facts.sequence,
            start_utc=facts.start_utc,
            end_utc=facts.end_utc,
            duration_ms=facts.duration_ms,
            size=self._size,
            sha256=self._plain.hexdigest(),
            ciphertext_size=self._cipher_size,
            ciphertext_sha256=self._cipher.hexdigest(),
            thumbnail_size=len(self._thumbnail),
            thumbnail_sha256=hashlib.sha256(self._thumbnail).hexdigest(),
            previous=facts.previous,
            labels=facts.labels,
            motion_score=facts.motion_score,
            codec=facts.codec,
            width=facts.width,
            height=facts.height,
            mode=self.mode,
            recipients=self._wrapped,
        )


def check_ciphertext(manifest: Manifest, blocks: Iterable[bytes]) -> None:
    """Size and SHA-256 of the ciphertext, as the manifest states (no key needed: the
    server checks this in end-to-end mode too)."""
    digest, size = hashlib.sha256(), 0
    for block in blocks:
        digest.update(block)
        size += len(block)
    if size != manifest.ciphertext_size or digest.hexdigest() != manifest.ciphertext_sha256:
        raise HashMismatchError("the ciphertext is not the one the manifest describes")


def clip_key(signed: SignedManifest, device_public: bytes, recipient: RecipientKey) -> bytes:
    """The clip's AES key for `recipient`, after checking the manifest's signature."""
    manifest = signed.verify(device_public)
    mine = [w for w in manifest.recipients if w.recipient == key_id(recipient.public)]
    if not mine:
        raise NotARecipientError("this key is not among the clip's recipients")
    return unwrap_key(mine[0], recipient)


def open_thumbnail(
    signed: SignedManifest, device_public: bytes, sealed: bytes, recipient: RecipientKey
) -> bytes:
    """The thumbnail JPEG, checked against the signed manifest."""
    key = clip_key(signed, device_public, recipient)
    return _open_thumbnail(signed.manifest, sealed, key)


def open_thumbnail_with_key(
    signed: SignedManifest, device_public: bytes, sealed: bytes, key: bytes
) -> bytes:
    """As `open_thumbnail`, with the clip's raw 32-byte key instead of a recipient key
    (a disclosure package carries the keys of the clips the provider could open)."""
    signed.verify(device_public)
    return _open_thumbnail(signed.manifest, sealed, _check_key(key))


def _check_key(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise MalformedError(f"clip key: expected {KEY_BYTES} bytes, got {len(key)}")
    return key


def _open_thumbnail(manifest: Manifest, sealed: bytes, key: bytes) -> bytes:
    if (
        len(sealed) != manifest.thumbnail_size
        or hashlib.sha256(sealed).hexdigest() != manifest.thumbnail_sha256
    ):
        raise HashMismatchError("the thumbnail is not the one the manifest describes")
    if manifest.thumbnail_size == 0:
        raise NotFoundInClipError("this clip has no thumbnail")
    return b"".join(stream.decrypt(key, [sealed]))


def open_clip(
    signed: SignedManifest,
    device_public: bytes,
    blocks: Iterable[bytes],
    recipient: RecipientKey,
) -> Iterator[bytes]:
    """The clip's plaintext, checked against its signed manifest on the way.

    Raises (SignatureError, NotARecipientError, ChunkError, TruncatedError,
    HashMismatchError) at the first problem; what was yielded before is then void.
    """
    key = clip_key(signed, device_public, recipient)
    yield from _open_clip(signed.manifest, blocks, key)


def open_clip_with_key(
    signed: SignedManifest, device_public: bytes, key: bytes, blocks: Iterable[bytes]
) -> Iterator[bytes]:
    """As `open_clip`, with the clip's raw 32-byte key instead of a recipient key. The
    signature is still checked first: a key opens ciphertext, it does not vouch for it."""
    signed.verify(device_public)
    yield from _open_clip(signed.manifest, blocks, _check_key(key))


def _open_clip(manifest: Manifest, blocks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    cipher, cipher_size = hashlib.sha256(), 0
    plain, plain_size = hashlib.sha256(), 0

    def counted() -> Iterator[bytes]:
        nonlocal cipher_size
        for block in blocks:
            cipher.update(block)
            cipher_size += len(block)
            yield block

    # As when sealing: the plaintext is hashed on a second thread, beside the decryption.
    with ThreadPoolExecutor(1, thread_name_prefix="open-hash") as pool:
        pending: deque[Future[None]] = deque()
        for chunk in stream.decrypt(key, counted()):
            plain_size += len(chunk)
            pending.append(pool.submit(plain.update, chunk))
            if len(pending) > MAX_HASH_BACKLOG:
                pending.popleft().result()
            yield chunk
        for future in pending:
            future.result()
    if cipher_size != manifest.ciphertext_size or cipher.hexdigest() != manifest.ciphertext_sha256:
        raise HashMismatchError("the ciphertext is not the one the manifest describes")
    if plain_size != manifest.size or plain.hexdigest() != manifest.sha256:
        raise HashMismatchError("the decrypted clip is not the one the manifest describes")


class ClipVerifier:
    """`open_clip`'s checks pushed rather than pulled, for a clip that arrives in parts:
    feed the ciphertext in order (`update`), then `finish` raises what `open_clip` (with
    `key`) or `check_ciphertext` (without: end-to-end mode) would have raised. The
    signature and the key are the caller's to check first (`clip_key`).

    `update` never raises: the first failure is kept and raised by `finish`, so a caller
    feeding parts as they arrive refuses the clip at its completion, as before."""

    def __init__(self, manifest: Manifest, key: bytes | None) -> None:
        self._manifest = manifest
        self._cipher, self._cipher_size = hashlib.sha256(), 0
        self._plain, self._plain_size = hashlib.sha256(), 0
        self._decryptor = stream.Decryptor(_check_key(key)) if key is not None else None
        self.error: SealError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held back (at most one sealed chunk)."""
        return self._decryptor.buffered if self._decryptor is not None else 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self.error is not None:
            return
        self._cipher.update(data)
        self._cipher_size += len(data)
        if self._cipher_size > self._manifest.ciphertext_size:
            self.error = HashMismatchError("the ciphertext is not the one the manifest describes")
            return
        if self._decryptor is not None:
            try:
                for chunk in self._decryptor.update(data):
                    self._plain.update(chunk)
                    self._plain_size += len(chunk)
            except SealError as exc:
                self.error = exc

    def finish(self) -> None:
        if self.error is not None:
            raise self.error
        manifest = self._manifest
        if self._decryptor is not None:
            last = self._decryptor.finish()
            self._plain.update(last)
            self._plain_size += len(last)
        if (
            self._cipher_size != manifest.ciphertext_size
            or self._cipher.hexdigest() != manifest.ciphertext_sha256
        ):
            raise HashMismatchError("the ciphertext is not the one the manifest describes")
        if self._decryptor is not None and (
            self._plain_size != manifest.size or self._plain.hexdigest() != manifest.sha256
        ):
            raise HashMismatchError("the decrypted clip is not the one the manifest describes")
