"""A verified clip as its camera sealed it, packed for offline checking.

The ZIP holds the docs/clip-pipeline.md layout (`<seq>.manifest.json`, `<seq>.clip.dws`,
`<seq>.thumb.dws`) and `devices.json` with the camera's public key, so `doorwarden verify`
runs on the unpacked folder with no server. Stored, not compressed: ciphertext does not
compress. Built in memory: a clip is bounded by the cameras' max_clip_s (tens of MB).
"""

from __future__ import annotations

import io
import json
import zipfile

from doorwarden.clips.models import Clip
from doorwarden.formats.clip_files import CLIP_SUFFIX, MANIFEST_SUFFIX, THUMB_SUFFIX, stem
from doorwarden.storage.base import ClipStore


async def sealed_zip(clip: Clip, device_public_key: str, store: ClipStore) -> bytes:
    name = stem(clip.sequence)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{name}{MANIFEST_SUFFIX}", clip.manifest)
        with archive.open(f"{name}{CLIP_SUFFIX}", "w", force_zip64=True) as out:
            async for block in store.stream(clip.object_key):
                out.write(block)
        if clip.thumbnail_key:
            thumb = await store.get_range(clip.thumbnail_key, 0, clip.thumbnail_size)
            archive.writestr(f"{name}{THUMB_SUFFIX}", thumb)
        devices = [{"device": str(clip.device_id), "public_key": device_public_key}]
        archive.writestr("devices.json", json.dumps(devices, indent=2))
    return buffer.getvalue()
