"""`make_store`: the clip store named by a URL, so the backend is one setting.

    make_store("/var/lib/doorwarden/clips")              # a local directory
    make_store("file:///var/lib/doorwarden/clips")       # the same, as a URL
    make_store("s3://doorwarden-clips",                  # an S3-compatible bucket
               endpoint_url="https://s3.eu-west-1.amazonaws.com",
               region="eu-west-1",
               access_key_id=..., secret_access_key=...)
    make_store("s3://shared-bucket/doorwarden")          # keys under a prefix in the bucket

Credentials are passed as options, never in the URL, so the URL can be logged and shown
in the admin UI as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict, Unpack
from urllib.parse import unquote, urlsplit

from doorwarden.storage.base import ClipStore
from doorwarden.storage.local import LocalClipStore
from doorwarden.storage.s3 import S3ClipStore


class S3Options(TypedDict, total=False):
    """Keyword options of `S3ClipStore` that `make_store` passes through (the bucket and
    the prefix come from the URL)."""

    endpoint_url: str | None
    region: str | None
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    allow_http: bool
    timeout_s: float
    connect_timeout_s: float
    max_retries: int


def make_store(url: str, **s3_options: Unpack[S3Options]) -> ClipStore:
    """The store at `url`: `s3://bucket[/prefix]`, `file:///absolute/path` or a plain path.

    `s3_options` apply to `s3://` only; giving them with a local URL is an error rather
    than silently ignored (it would mean the setting is not doing what its author thinks).
    """
    if not url:
        raise ValueError("the clip store URL is empty")
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc or "@" in parts.netloc:
            raise ValueError("an s3:// URL names a bucket (s3://bucket[/prefix]), nothing else")
        if parts.query or parts.fragment:
            raise ValueError("an s3:// URL takes no query or fragment; pass options instead")
        return S3ClipStore(parts.netloc, prefix=parts.path.strip("/"), **s3_options)
    if s3_options:
        raise ValueError(f"options {sorted(s3_options)} apply only to an s3:// store")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError("a file:// URL must name a local path (file:///path)")
        return LocalClipStore(Path(unquote(parts.path)))
    if parts.scheme == "":
        return LocalClipStore(Path(url))
    raise ValueError(f"unsupported clip store URL scheme {parts.scheme!r} (use s3:// or a path)")
