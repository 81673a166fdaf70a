"""What can be wrong with a sealed clip, each kind its own class so callers (the server's
ingest, `doorwarden verify`) can answer with a specific reason."""

from __future__ import annotations


class SealError(Exception):
    """A sealed clip or manifest failed a check."""

    code = "seal_invalid"


class MalformedError(SealError):
    code = "malformed"


class SignatureError(SealError):
    code = "bad_signature"


class HashMismatchError(SealError):
    code = "hash_mismatch"


class ChunkError(SealError):
    """A chunk failed authentication: altered, reordered, dropped or from another clip."""

    code = "chunk_tampered"


class TruncatedError(SealError):
    code = "truncated"


class NotARecipientError(SealError):
    code = "not_a_recipient"


class NotFoundInClipError(SealError):
    """The clip has no such part (a thumbnail that was never recorded)."""

    code = "not_in_clip"
