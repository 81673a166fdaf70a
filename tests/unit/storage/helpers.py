"""Chunk sources for puts: well-behaved, failing midway, or parked until released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


class SourceFailed(Exception):
    """Raised by a source midway through a put, as a dropped upload connection would."""


async def chunked(data: bytes, size: int, *, interleave: bool = False) -> AsyncIterator[bytes]:
    """`data` in chunks of `size`; with `interleave`, yield to the event loop between
    chunks so concurrent puts really overlap."""
    for offset in range(0, len(data), size):
        if interleave:
            await asyncio.sleep(0)
        yield data[offset : offset + size]


async def failing(data: bytes, size: int, fail_after: int) -> AsyncIterator[bytes]:
    """Yields `data` in chunks of `size` until `fail_after` bytes, then raises."""
    sent = 0
    for offset in range(0, len(data), size):
        if sent >= fail_after:
            raise SourceFailed(f"connection dropped after {sent} bytes")
        chunk = data[offset : offset + size]
        sent += len(chunk)
        yield chunk
    raise SourceFailed("connection dropped at the end")


class Parked:
    """A source that yields `first`, signals `started`, then waits for `release` before
    yielding `rest`: a put held in mid-flight."""

    def __init__(self, first: bytes, rest: bytes = b"") -> None:
        self.first = first
        self.rest = rest
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        self.started.set()
        await self.release.wait()
        if self.rest:
            yield self.rest


class Untouchable:
    """A source that fails the test if a put ever reads it."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        raise AssertionError("the store read the source of a put it should have refused")
