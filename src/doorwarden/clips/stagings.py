"""Which upload staging a server uses: the clip store's S3 bucket (under `staging/`) when
the store is S3, so that a clip's parts may reach any instance; else a local directory,
one machine, as the local store is."""

from __future__ import annotations

from pathlib import Path

from doorwarden.clips.completion import AnyStaging
from doorwarden.clips.staging import Staging
from doorwarden.clips.staging_s3 import S3Staging
from doorwarden.storage.base import ClipStore
from doorwarden.storage.s3 import S3ClipStore


def make_staging(root: Path, store: ClipStore) -> AnyStaging:
    if isinstance(store, S3ClipStore):
        return S3Staging(store)
    return Staging(root)
