"""Checking a staged clip at completion, in the order that tells whose fault a mismatch is.

1. The staged bytes against the journal of what was received (staging.py), and the
   staged thumbnail against the manifest's hash it matched on receipt. A mismatch here is
   the server's storage failing (a lost tail, a torn or flipped block): `StagedDamaged`,
   answered 503 with no alert; the camera sends the clip again.
2. Only then every byte against the signed manifest (`seal_errors.SealError`): bytes the
   server received intact that still fail are the camera's, and the owner is alerted.
   Before such a verdict the journal check runs once more, so a disk that returns
   different bytes on a second read is not blamed on the camera either.

Blocking: runs in a worker thread. Read errors propagate as `OSError` (503 upstream).
"""

from __future__ import annotations

import hashlib
import os
import uuid

from doorwarden.clips.staging import Staging
from doorwarden.crypto import errors as seal_errors
from doorwarden.crypto.keys import RecipientKey
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.seal import check_ciphertext, open_clip, open_thumbnail
from doorwarden.formats.clip_files import READ_BLOCK, read_blocks


class StagedDamaged(Exception):
    """The staged copy no longer holds what the camera sent."""


def check_received(
    staging: Staging,
    device_id: uuid.UUID,
    sequence: int,
    *,
    ciphertext_size: int,
    thumbnail_size: int,
    thumbnail_sha256: str,
) -> None:
    """The staged data is exactly the parts the journal recorded, and the thumbnail is
    the one received; `StagedDamaged` otherwise."""
    parts = staging.parts(device_id, sequence)
    covered = parts[-1].offset + parts[-1].length if parts else 0
    with staging.clip_path(device_id, sequence).open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if covered != ciphertext_size or size != covered:
            raise StagedDamaged(
                f"the journal covers {covered} bytes, the data file holds {size}, "
                f"the clip has {ciphertext_size}"
            )
        for part in parts:
            f.seek(part.offset)
            digest = hashlib.sha256()
            left = part.length
            while left:
                block = f.read(min(READ_BLOCK, left))
                if not block:
                    raise StagedDamaged(f"the data file ends inside the part at {part.offset}")
                digest.update(block)
                left -= len(block)
            if digest.digest() != part.sha256:
                raise StagedDamaged(f"the part at offset {part.offset} changed on disk")
    if thumbnail_size:
        thumb = staging.thumb_path(device_id, sequence).read_bytes()
        if len(thumb) != thumbnail_size or hashlib.sha256(thumb).hexdigest() != thumbnail_sha256:
            raise StagedDamaged("the staged thumbnail changed on disk")


def _against_manifest(
    signed: SignedManifest,
    device_public: bytes,
    household: RecipientKey | None,
    staging: Staging,
    device_id: uuid.UUID,
) -> None:
    """Every byte against the manifest. In standard mode open_clip checks the ciphertext
    hash, every chunk and the plaintext hash in one pass; in end-to-end mode (no
    `household` key) only the ciphertext can be checked."""
    sequence = signed.manifest.sequence
    clip_path = staging.clip_path(device_id, sequence)
    if household is None:
        check_ciphertext(signed.manifest, read_blocks(clip_path))
        return
    for _ in open_clip(signed, device_public, read_blocks(clip_path), household):
        pass
    if signed.manifest.thumbnail_size:
        thumb = staging.thumb_path(device_id, sequence).read_bytes()
        open_thumbnail(signed, device_public, thumb, household)


def verify_staged(
    signed: SignedManifest,
    device_public: bytes,
    household: RecipientKey | None,
    staging: Staging,
    device_id: uuid.UUID,
) -> None:
    """Raises `StagedDamaged` (the server's fault), `SealError` (the camera's) or
    `OSError` (the storage could not be read)."""
    manifest = signed.manifest

    def received() -> None:
        check_received(
            staging,
            device_id,
            manifest.sequence,
            ciphertext_size=manifest.ciphertext_size,
            thumbnail_size=manifest.thumbnail_size,
            thumbnail_sha256=manifest.thumbnail_sha256,
        )

    received()
    try:
        _against_manifest(signed, device_public, household, staging, device_id)
    except seal_errors.SealError:
        received()  # the bytes failing now must still be the bytes received
        raise
