"""Sealed clips on disk: the file names and reading them back (docs/clip-pipeline.md).

Shared by the agent's sealed spool (which writes them), `doorwarden verify` and exports
(which read them), so there is one definition of the layout. Writing is the agent's
business (crash-safe, manifest last); this module only names and reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from doorwarden.crypto.errors import MalformedError

# Re-exported: the agent's uploader reads manifests within the same bound.
from doorwarden.crypto.manifest import MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES
from doorwarden.crypto.manifest import SignedManifest

MANIFEST_SUFFIX = ".manifest.json"
CLIP_SUFFIX = ".clip.dws"
THUMB_SUFFIX = ".thumb.dws"
SOURCE_SUFFIX = ".source"
READ_BLOCK = 1024 * 1024  # sealed files are streamed in blocks this size, never read whole
_NAME = re.compile(r"^(\d{12})\.manifest\.json$")


def stem(sequence: int) -> str:
    return f"{sequence:012d}"


@dataclass(frozen=True)
class SealedPaths:
    """Where one sealed clip's files are (they need not all exist)."""

    directory: Path
    sequence: int

    @property
    def manifest(self) -> Path:
        return self.directory / f"{stem(self.sequence)}{MANIFEST_SUFFIX}"

    @property
    def clip(self) -> Path:
        return self.directory / f"{stem(self.sequence)}{CLIP_SUFFIX}"

    @property
    def thumbnail(self) -> Path:
        return self.directory / f"{stem(self.sequence)}{THUMB_SUFFIX}"

    @property
    def source(self) -> Path:
        return self.directory / f"{stem(self.sequence)}{SOURCE_SUFFIX}"


def committed(directory: Path) -> list[SealedPaths]:
    """The sealed clips in `directory` whose manifest exists, in sequence order."""
    found = []
    for path in directory.glob(f"*{MANIFEST_SUFFIX}"):
        match = _NAME.match(path.name)
        if match:
            found.append(SealedPaths(directory, int(match.group(1))))
    return sorted(found, key=lambda p: p.sequence)


def read_manifest(path: Path) -> SignedManifest:
    """Parse a signed manifest file (structure only; verify the signature separately)."""
    with path.open("rb") as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise MalformedError(f"{path.name}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        return SignedManifest.loads(data)
    except MalformedError as exc:
        raise MalformedError(f"{path.name}: {exc}") from None


def read_blocks(path: Path, size: int = READ_BLOCK) -> Iterator[bytes]:
    """A file in blocks: how sealed clips are hashed, decrypted and copied."""
    with path.open("rb") as f:
        while block := f.read(size):
            yield block
