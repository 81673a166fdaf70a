"""Disclosure packages: the names inside the ZIP and the text the instance signs
(docs/legal-process.md, "Disclosure packages").

Shared by the server, which builds packages (legal/package.py), and `doorwarden verify`,
which checks them offline (verify_package.py), so there is one definition of the format.
Pure: names and strings, no I/O.
"""

from __future__ import annotations

import re

from doorwarden.formats.clip_files import CLIP_SUFFIX, MANIFEST_SUFFIX, THUMB_SUFFIX, stem

FORMAT = "doorwarden-disclosure-package"
VERSION = 1
PACKAGE_JSON = "package.json"
PACKAGE_SIG = "package.sig"
REQUEST_JSON = "request.json"
CUSTODY_JSON = "custody.json"
DEVICES_JSON = "devices.json"
KEYS_JSON = "keys.json"
SUBSCRIBERS_JSON = "subscribers.json"
README_TXT = "README.txt"
CLIPS_DIR = "clips"
DOCUMENTS_DIR = "documents"
SIGNED_ENTRIES = frozenset({PACKAGE_JSON, PACKAGE_SIG})  # the rest is listed in `files`
SIG_HEADER = f"doorwarden disclosure package v{VERSION}"
CONTENT_AVAILABLE = "available"
CONTENT_NOT_AVAILABLE = "not_available_to_provider"

# Every entry name is segments of these characters (the object-key alphabet): nothing
# that could climb out of a folder, name a drive or carry a control character.
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def safe_name(name: str, *, max_depth: int = 3) -> bool:
    """Whether `name` is an entry name a package may hold."""
    segments = name.split("/")
    return 0 < len(segments) <= max_depth and all(_SEGMENT.fullmatch(s) for s in segments)


def clip_stem(device: str, sequence: int) -> str:
    """`<device>/<12-digit sequence>`: a clip's name in keys.json and under clips/."""
    return f"{device}/{stem(sequence)}"


def clip_paths(device: str, sequence: int) -> tuple[str, str, str]:
    """(manifest, sealed clip, sealed thumbnail) entry names of one clip."""
    base = f"{CLIPS_DIR}/{clip_stem(device, sequence)}"
    return base + MANIFEST_SUFFIX, base + CLIP_SUFFIX, base + THUMB_SUFFIX


def document_path(kind: str, sha256: str) -> str:
    return f"{DOCUMENTS_DIR}/{kind}-{sha256[:12]}.pdf"


def sig_text(package_id: str, package_json_sha256: str) -> bytes:
    """The text package.sig signs: it binds the package id to package.json's bytes, and
    package.json's `files` binds every other entry."""
    return f"{SIG_HEADER}\n{package_id}\n{package_json_sha256}\n".encode()


def parse_sig_text(text: bytes) -> tuple[str, str] | None:
    """(package id, package.json SHA-256) from a signed text, or None if it is not one."""
    try:
        lines = text.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return None
    if len(lines) != 4 or lines[0] != SIG_HEADER or lines[3] != "":
        return None
    if not lines[1] or not _HEX64.fullmatch(lines[2]):
        return None
    return lines[1], lines[2]
