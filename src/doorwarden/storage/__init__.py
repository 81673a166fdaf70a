"""The server's clip object store: sealed clip files (ciphertext, encrypted by the camera),
thumbnails and disclosure packages, kept as whole objects under validated keys.

Two backends implement one protocol (`ClipStore`): a local directory, the default on one
machine, and any S3-compatible bucket through `obstore`, for scale (DESIGN.md, "Storage").
`make_store(url, ...)` picks one from a URL, so the choice is a setting.

Guarantees both backends give, and the tests check on both:

* an object becomes visible only once it is complete (a reader never sees half a clip,
  and a failed or cancelled upload leaves nothing behind);
* every key is validated before any storage is touched (`validate_key`), so no key can
  reach outside the store's root or bucket prefix;
* errors are `StorageError`s whose messages never carry credentials.
"""

from __future__ import annotations

from doorwarden.storage.base import (
    DEFAULT_CHUNK_SIZE,
    ClipStore,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    StorageError,
    StorageFull,
)
from doorwarden.storage.factory import make_store
from doorwarden.storage.keys import MAX_KEY_LENGTH, object_key, validate_key, validate_prefix
from doorwarden.storage.local import LocalClipStore
from doorwarden.storage.s3 import S3ClipStore

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_KEY_LENGTH",
    "ClipStore",
    "InvalidKey",
    "InvalidRange",
    "LocalClipStore",
    "ObjectNotFound",
    "S3ClipStore",
    "StorageError",
    "StorageFull",
    "make_store",
    "object_key",
    "validate_key",
    "validate_prefix",
]
