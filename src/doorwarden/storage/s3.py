"""`S3ClipStore`: objects in an S3-compatible bucket (AWS, MinIO, Garage, Ceph...), through
`obstore`'s async API.

Atomicity comes from S3 itself: a PUT, or a multipart upload's completion, makes the
whole object visible at once, and obstore aborts a multipart upload whose source fails
(a cancelled put is turned into exactly that, so no unseen parts are left to pay for).
Small objects (under one part) are buffered and sent in one PUT: no multipart overhead
for thumbnails, and a source that fails early never starts an upload at all.

Objects are written with the bucket's defaults: no ACL is ever sent, so nothing is public
unless the bucket itself is (keep S3 Block Public Access on). Error messages are built
here, redacted, and raised without the original exception attached, because obstore's
messages quote the server's reply, which can echo the access key id.
"""

from __future__ import annotations

import asyncio
import builtins
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NoReturn, TypeVar

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from doorwarden.storage.base import (
    DEFAULT_CHUNK_SIZE,
    ObjectNotFound,
    StorageError,
    check_chunk_size,
    check_range_arguments,
    resolve_range,
)
from doorwarden.storage.keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, RetryConfig, S3Config

# S3's minimum part size. Bigger parts mean fewer requests but more memory per upload:
# at most PART_SIZE * MAX_PART_UPLOADS bytes are buffered for one put.
PART_SIZE = 5 * 1024 * 1024
MAX_PART_UPLOADS = 4

# obstore's default (30 s) covers a whole request, body included, so it would cut off a
# clip streamed to a slow client. Connecting gets a short limit of its own.
DEFAULT_TIMEOUT_S = 900.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
# How long a cancelled put waits for obstore to abort its multipart upload.
ABORT_WAIT_S = 10.0

# The errors obstore raises: its own, plus the built-ins its docs name.
_BACKEND_ERRORS = (ObstoreError, FileNotFoundError, ValueError)
_USERINFO = re.compile(r"://[^/@\s]*@")
_T = TypeVar("_T")


class S3ClipStore:
    """A `ClipStore` in an S3 bucket, optionally under a key prefix.

    Credentials left out are taken from the environment (AWS_ACCESS_KEY_ID...) or the
    instance's role, as the AWS SDKs do. `allow_http` permits a plain-HTTP endpoint,
    meant for a local test server; with it, requests are still signed but not encrypted.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        prefix: str = "",
        allow_http: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_retries: int = 10,
    ) -> None:
        self.bucket = bucket
        self.prefix = validate_prefix(prefix)
        self.endpoint_url = _USERINFO.sub("://", endpoint_url) if endpoint_url else None
        self._secrets = tuple(s for s in (access_key_id, secret_access_key, session_token) if s)
        client: ClientConfig = {
            "allow_http": allow_http,
            "timeout": timedelta(seconds=timeout_s),
            "connect_timeout": timedelta(seconds=connect_timeout_s),
        }
        retry: RetryConfig = {"max_retries": max_retries}
        config: S3Config = {}
        if endpoint_url is not None:
            config["endpoint"] = endpoint_url
        if region is not None:
            config["region"] = region
        if access_key_id is not None:
            config["access_key_id"] = access_key_id
        if secret_access_key is not None:
            config["secret_access_key"] = secret_access_key
        if session_token is not None:
            config["session_token"] = session_token
        self._store = S3Store(
            bucket,
            prefix=self.prefix or None,
            config=config,
            client_options=client,
            retry_config=retry,
        )

    def __repr__(self) -> str:
        # Never the credentials, and never the raw obstore store (its repr may change).
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3ClipStore(bucket={self.bucket!r}, prefix={self.prefix!r}{where})"

    async def put(self, key: str, chunks: AsyncIterable[bytes] | bytes) -> int:
        validate_key(key)
        if isinstance(chunks, bytes | bytearray | memoryview):
            upload = obstore.put_async(
                self._store, key, chunks, chunk_size=PART_SIZE, max_concurrency=MAX_PART_UPLOADS
            )
            await self._call("put", key, upload)
            return len(chunks)
        source = _Source(chunks)
        head = await source.read_head(PART_SIZE)
        if source.exhausted:
            await self._call("put", key, obstore.put_async(self._store, key, head))
            return len(head)
        await self._put_multipart(key, source, head)
        return source.total

    async def _put_multipart(self, key: str, source: _Source, head: bytes) -> None:
        upload = asyncio.ensure_future(
            obstore.put_async(
                self._store,
                key,
                source.rest(head),
                use_multipart=True,
                chunk_size=PART_SIZE,
                max_concurrency=MAX_PART_UPLOADS,
            )
        )
        # Retrieve the outcome even if nobody awaits it any more (see below).
        upload.add_done_callback(_consume_outcome)
        try:
            await asyncio.shield(upload)
        except asyncio.CancelledError:
            # Dropping obstore's upload would leave its parts in the bucket, unseen but
            # paid for. Failing its source instead makes obstore abort the upload; give
            # that a moment, then let the cancellation through.
            source.stop()
            await asyncio.wait([upload], timeout=ABORT_WAIT_S)
            raise
        except BaseException as exc:
            # The source's own failure propagates unchanged, however obstore passed it on
            # (obstore has aborted the multipart upload by then).
            if source.error is not None:
                raise source.error from None
            if isinstance(exc, _BACKEND_ERRORS):
                self._fail("put", key, exc)
            raise

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        validate_key(key)
        check_range_arguments(key, start, end)
        if start == end:
            # S3 has no empty range; check the range against the object and read nothing.
            resolve_range(key, start, end, await self.size(key))
            return b""
        result = await self._get("read", key, start, end, {"range": (start, end)})
        try:
            return bytes(await result.bytes_async())
        except _BACKEND_ERRORS as exc:
            self._fail("read", key, exc)

    def stream(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        check_range_arguments(key, start, end)
        check_chunk_size(chunk_size)
        return self._stream(key, start, end, chunk_size)

    async def _stream(
        self, key: str, start: int, end: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        if start == end:
            resolve_range(key, start, end, await self.size(key))
            return
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)
        elif start > 0:
            options["range"] = {"offset": start}
        try:
            result = await self._get("read", key, start, end, options)
        except _EmptyTail:
            return
        # One GET: the stream is one version of the object even if it is replaced meanwhile.
        chunks = result.stream(min_chunk_size=chunk_size)
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except _BACKEND_ERRORS as exc:
                self._fail("read", key, exc)
            yield chunk

    async def _get(
        self, op: str, key: str, start: int, end: int | None, options: GetOptions
    ) -> obstore.GetResult:
        """GET with a range, refusing ranges past the end (S3 shortens them silently)."""
        try:
            result = await obstore.get_async(self._store, key, options=options)
        except _BACKEND_ERRORS as exc:
            if isinstance(exc, FileNotFoundError):
                raise ObjectNotFound(key) from None
            # S3 answers 416 to a range starting at or past the end; look at the object to
            # tell a bad range from a missing object or a real failure.
            size = await self.size(key)
            if end is None and start == size:
                raise _EmptyTail from None
            resolve_range(key, start, end, size)
            self._fail(op, key, exc)
        resolve_range(key, start, end, result.meta["size"])
        return result

    async def size(self, key: str) -> int:
        validate_key(key)
        meta = await self._call("stat", key, obstore.head_async(self._store, key))
        return meta["size"]

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            await self._call("delete", key, obstore.delete_async(self._store, key))
        except ObjectNotFound:
            return  # S3 itself says OK for a missing key; other stores may not

    async def list(self, prefix: str = "") -> builtins.list[str]:
        trimmed = validate_prefix(prefix)
        listing = obstore.list(self._store, prefix=trimmed or None)
        metas = await self._call("list", prefix, listing.collect_async())
        return sorted(meta["path"] for meta in metas)

    async def list_objects(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        """As `list`, with each object's size and last modification time (one listing:
        upload staging reads its parts' sizes and ages from it)."""
        trimmed = validate_prefix(prefix)
        listing = obstore.list(self._store, prefix=trimmed or None)
        metas = await self._call("list", prefix, listing.collect_async())
        found = [ObjectInfo(m["path"], m["size"], m["last_modified"]) for m in metas]
        return sorted(found, key=lambda info: info.key)

    async def copy(self, source: str, key: str) -> None:
        """Copy an object within the bucket, server-side (no bytes pass through here);
        atomic as a PUT is. `ObjectNotFound` if `source` is missing."""
        validate_key(source)
        validate_key(key)
        await self._call("copy", source, obstore.copy_async(self._store, source, key))

    async def _call(self, op: str, key: str, operation: Awaitable[_T]) -> _T:
        try:
            return await operation
        except _BACKEND_ERRORS as exc:
            self._fail(op, key, exc)

    def _fail(self, op: str, key: str, exc: BaseException) -> NoReturn:
        if isinstance(exc, FileNotFoundError):
            raise ObjectNotFound(key) from None
        summary = redact(str(exc), self._secrets)
        # `from None`: the original message is unredacted and must not reach a log.
        raise StorageError(
            f"S3 {op} of {key!r} in bucket {self.bucket!r} failed: {summary}"
        ) from None


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class _EmptyTail(Exception):
    """A stream from the very end of an object: nothing to read (S3 would answer 416)."""


class _Source:
    """The caller's chunks, counted, with the first part read ahead to choose between
    one PUT and a multipart upload."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._iterator = aiter(chunks)
        self.total = 0
        self.exhausted = False
        self.error: BaseException | None = None
        self._stopped = False
        self._pending: asyncio.Future[bytes] | None = None

    async def _next(self) -> bytes | None:
        if self._stopped:
            raise asyncio.CancelledError
        # A future of our own, so that stop() can interrupt a source that is waiting.
        self._pending = asyncio.ensure_future(anext(self._iterator))
        try:
            chunk = await self._pending
        except StopAsyncIteration:
            self.exhausted = True
            return None
        except BaseException as exc:
            if not self._stopped:
                self.error = exc
            raise
        finally:
            self._pending = None
        self.total += len(chunk)
        return chunk

    def stop(self) -> None:
        """Fail the next (or the pending) read, so that the upload reading it aborts."""
        self._stopped = True
        if self._pending is not None:
            self._pending.cancel()

    async def read_head(self, limit: int) -> bytes:
        parts: builtins.list[bytes] = []
        size = 0
        while size < limit:
            chunk = await self._next()
            if chunk is None:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    async def rest(self, head: bytes) -> AsyncIterator[bytes]:
        yield head
        while (chunk := await self._next()) is not None:
            if chunk:
                yield chunk


def _consume_outcome(upload: asyncio.Future[_T]) -> None:
    # An abandoned upload's failure is expected; retrieving it keeps asyncio from logging
    # "exception was never retrieved".
    if not upload.cancelled():
        upload.exception()


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """A one-line summary of an obstore error message that is safe to log: no secrets,
    no user:password in URLs, and not the XML error body the server sent back."""
    line = text.split("\n", 1)[0].split(": <", 1)[0]
    line = _USERINFO.sub("://", line)
    for secret in secrets:
        line = line.replace(secret, "[redacted]")
    return line[:300]
