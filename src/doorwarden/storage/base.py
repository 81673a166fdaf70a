"""The `ClipStore` protocol and the errors every backend raises.

The server depends on this protocol only; the backend is chosen by a setting
(`make_store`). Both backends are tested against the same cases
(tests/unit/storage/test_contract.py), so the semantics below are a contract, not a hope.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, runtime_checkable

# 1 MiB: the size of one upload request in the clip protocol, and small enough that a
# slow client streaming a clip holds little memory per connection.
DEFAULT_CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """A storage operation failed. The base of every error this package raises.

    Messages name the operation and the key, never credentials: they end up in logs and,
    through careless handlers, in responses.
    """


class StorageFull(StorageError):
    """The backend has no room left (ENOSPC, a quota): retry once room is made."""


class ObjectNotFound(StorageError):
    """No complete object exists under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object at key {key!r}")
        self.key = key


class InvalidKey(StorageError, ValueError):
    """The key (or list prefix) is not one this store accepts; nothing was touched.

    Also a ValueError: it is the caller's mistake, never a storage failure.
    """


class InvalidRange(StorageError, ValueError):
    """The requested byte range is not within the object.

    The server maps it to 416 when the range came from a client's Range header.
    """

    def __init__(self, key: str, start: int, end: int | None, size: int | None) -> None:
        shown_end = "end" if end is None else str(end)
        where = "" if size is None else f" of {size} bytes"
        super().__init__(f"byte range [{start}, {shown_end}) is outside the object {key!r}{where}")
        self.key = key
        self.start = start
        self.end = end
        self.size = size


def check_range_arguments(key: str, start: int, end: int | None) -> None:
    """Refuse a range that no object could satisfy, before any I/O."""
    if start < 0 or (end is not None and end < start):
        raise InvalidRange(key, start, end, None)


def resolve_range(key: str, start: int, end: int | None, size: int) -> int:
    """The exclusive end of [start, end) within an object of `size` bytes.

    Valid ranges satisfy 0 <= start <= end <= size; an empty range is allowed and reads
    nothing. A range reaching past the end is an error, not silently shortened (as HTTP
    and S3 would do), so a caller never mistakes a short read for the whole range.
    """
    resolved = size if end is None else end
    if start < 0 or resolved < start or resolved > size:
        raise InvalidRange(key, start, end, size)
    return resolved


def check_chunk_size(chunk_size: int) -> None:
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")


@runtime_checkable
class ClipStore(Protocol):
    """Whole objects under validated keys (see `doorwarden.storage.keys`).

    Every method validates its key (or prefix) first and raises `InvalidKey` before
    touching storage.
    """

    async def put(self, key: str, chunks: AsyncIterable[bytes] | bytes) -> int:
        """Store the object and return its size in bytes.

        The object appears atomically once complete: readers see the previous object (or
        none) until then. If `chunks` raises, or the put fails or is cancelled, nothing
        new is visible and nothing partial is left behind; the exception propagates (the
        source's own unchanged, backend failures as `StorageError`). A put cancelled in
        its final step (the rename, or S3's completion request) may still take effect,
        as with any I/O. Putting an existing key replaces it; of concurrent puts to one
        key, exactly one complete object wins.
        """
        ...

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object (end exclusive).

        `InvalidRange` unless 0 <= start <= end <= size; `ObjectNotFound` if missing.
        """
        ...

    def stream(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        """The bytes [start, end) of the object (to its end when `end` is None), in chunks.

        The key and arguments are checked when called; `ObjectNotFound` and
        `InvalidRange` are raised by the first iteration, since only then is the object
        read. The stream reads one version of the object even if it is replaced
        meanwhile. `chunk_size` is a target: the local store yields chunks of exactly
        that size (but the last), S3 of at least it.
        """
        ...

    async def size(self, key: str) -> int:
        """The object's size in bytes; `ObjectNotFound` if missing."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether a complete object is stored under the key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object. Idempotent: a missing object is not an error."""
        ...

    async def list(self, prefix: str = "") -> builtins.list[str]:
        """Keys under `prefix`, sorted.

        The prefix is whole key segments ("households/<id>" lists everything under that
        household, never "households/<id>x/..."); a trailing "/" is optional and "" lists
        everything. Objects still being written are never listed.
        """
        ...
