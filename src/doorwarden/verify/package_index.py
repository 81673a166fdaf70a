"""A disclosure package's index — package.sig and package.json — checked before anything of
the ZIP touches the disk, and what may be unpacked once it holds.

package.sig and package.json are read into memory straight from the ZIP, each within a
cap counted as it is read. Only when package.sig verifies and names package.json's
SHA-256 does package.json's `files` list say what gets unpacked: exactly those entries,
each up to its listed size, and only if their total is one the ZIP could hold and the
temporary folder has room for (docs/legal-process.md, "Verifying").
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from doorwarden.formats.checkpoint import MAX_NOTE_BYTES, CheckpointError, NoteKey, open_note
from doorwarden.formats.package_files import (
    PACKAGE_JSON,
    PACKAGE_SIG,
    SIGNED_ENTRIES,
    parse_sig_text,
)
from doorwarden.formats.safezip import Archive, Read, Unpacked
from doorwarden.verify.clips import Check

MAX_JSON_BYTES = 64 * 1024 * 1024  # package.json of ~50,000 clips; refuse anything huger
# Every entry of a package is STORED (ciphertext does not compress), so what its files list
# adds up to is at most the ZIP's own size. The factor and the allowance leave room for a
# package someone re-zipped with compression (its JSON and PDFs shrink a little); a ZIP
# bomb inflates a thousandfold.
EXPANSION = 8
ALLOWANCE = 1024 * 1024
NOT_UNPACKED = "not checked: the package signature did not verify, so nothing was unpacked"
Listing = dict[str, tuple[int, str]]  # path: (size, SHA-256) as package.json lists it


def parse_json(data: bytes, name: str) -> tuple[object, Check | None]:
    try:
        return json.loads(data), None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        return None, Check(name, "fail", f"not JSON ({exc})", "malformed")


def read_package_json(archive: Archive) -> tuple[Read, object, Check | None]:
    """package.json's bytes, its JSON, and the failed check if it has none."""
    body = archive.read(PACKAGE_JSON, MAX_JSON_BYTES)
    if body.too_large:
        big = f"larger than {MAX_JSON_BYTES} bytes"
        return body, None, Check(PACKAGE_JSON, "fail", big, "malformed")
    if body.data is None:
        return body, None, Check(PACKAGE_JSON, "fail", f"{PACKAGE_JSON} is missing", "missing")
    data, problem = parse_json(body.data, PACKAGE_JSON)
    return body, data, problem


def signature_checks(
    archive: Archive, body: Read, key: NoteKey | None, *, pinned: bool, package_id: str | None
) -> list[Check]:
    """`signature`, `package_id` and `package_json`: package.sig, read from the ZIP within
    the size of a signed note, against the instance key and package.json's bytes."""
    skipped = [
        Check(n, "skip", "the signature did not verify") for n in ("package_id", "package_json")
    ]
    sig = archive.read(PACKAGE_SIG, MAX_NOTE_BYTES)
    if sig.too_large:
        big = f"larger than {MAX_NOTE_BYTES} bytes"
        return [Check("signature", "fail", big, "malformed"), *skipped]
    if sig.data is None:
        return [Check("signature", "fail", f"{PACKAGE_SIG} is missing", "missing"), *skipped]
    if key is None:
        return [Check("signature", "fail", "no instance key", "no_instance_key"), *skipped]
    try:
        text = open_note(sig.data, key)
    except CheckpointError as exc:
        return [Check("signature", "fail", str(exc), "bad_signature"), *skipped]
    parsed = parse_sig_text(text)
    if parsed is None:
        shown = "not the text a package signature signs"
        return [Check("signature", "fail", shown, "malformed"), *skipped]
    signed_id, digest = parsed
    where = "pinned" if pinned else "named in package.json"
    checks = [Check("signature", "pass", f"Ed25519, instance key {where}")]
    if signed_id == package_id:
        checks.append(Check("package_id", "pass", f"{PACKAGE_SIG} names this package"))
    else:
        other = f"{PACKAGE_SIG} is the signature of package {signed_id!a}, not this one"
        checks.append(Check("package_id", "fail", other, "wrong_package"))
    if body.too_large:
        big = f"larger than {MAX_JSON_BYTES} bytes: not read"
        checks.append(Check("package_json", "fail", big, "malformed"))
    elif body.data is None:
        checks.append(Check("package_json", "fail", "missing", "missing"))
    elif hashlib.sha256(body.data).hexdigest() == digest:
        checks.append(Check("package_json", "pass", "SHA-256 as signed"))
    else:
        changed = f"{PACKAGE_JSON} is not the one {PACKAGE_SIG} signed (SHA-256 differs)"
        checks.append(Check("package_json", "fail", changed, "hash_mismatch"))
    return checks


def listing(package: dict[str, Any]) -> tuple[Listing | None, list[Check]]:
    """package.json's `files`, and a failed check for each item that is not one."""
    files = package.get("files")
    if not isinstance(files, list):
        return None, [Check("files", "fail", "package.json has no files list", "malformed")]
    problems: list[Check] = []
    listed: Listing = {}
    for i, item in enumerate(files):
        path = item.get("path") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        sha = item.get("sha256") if isinstance(item, dict) else None
        if (
            not isinstance(path, str)
            or not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(sha, str)
        ):
            problems.append(
                Check("files", "fail", f"files[{i}]: not path, size, sha256", "malformed")
            )
        elif path in listed or path in SIGNED_ENTRIES:
            problems.append(Check("files", "fail", f"{path!a} listed twice", "malformed"))
        else:
            listed[path] = (size, sha)
    return listed, problems


def budget_problem(
    total: int, archive: Archive, *, free: int, needed: int, max_bytes: int
) -> str | None:
    """Why `total` bytes, what package.json lists of the ZIP's entries, will not be
    unpacked at all; None if they may be. `needed`: the disk they take, with room for
    the decrypted clips when those are extracted too."""
    said = f"refused: package.json lists {total} bytes of files"
    if total > max_bytes:
        return f"{said}, more than {max_bytes}"
    if total > archive.size * EXPANSION + ALLOWANCE:
        return (
            f"{said}, more than a ZIP of {archive.size} bytes holds with its entries stored as "
            "the format has them (a ZIP bomb?): nothing was unpacked"
        )
    if needed > free:
        return (
            f"{said} and needs {needed} bytes of disk; the temporary folder has {free} bytes "
            "free: nothing was unpacked"
        )
    return None


def files_checks(
    listed: Listing, problems: list[Check], archive: Archive, unpacked: Unpacked
) -> tuple[list[Check], bool]:
    """package.json's `files` (and the `problems` of its items) against the ZIP's other
    entries, as unpacked; whether every listed file is there as listed and nothing else is."""
    problems = list(problems)
    for path, (size, sha) in sorted(listed.items()):
        entry = unpacked.entries.get(path)
        if path in unpacked.too_large:
            big = f"{path!a} is larger than the {size} bytes package.json lists: not unpacked"
            problems.append(Check("files", "fail", big, "hash_mismatch"))
        elif entry is None and path not in archive.names:  # else refused: in the errors
            problems.append(Check("files", "fail", f"{path!a} is missing", "missing"))
        elif entry is not None and (entry.size, entry.sha256) != (size, sha):
            changed = f"{path!a} is not the file package.json lists ({entry.size} bytes)"
            problems.append(Check("files", "fail", changed, "hash_mismatch"))
    for name in sorted(set(archive.usable) - SIGNED_ENTRIES - set(listed)):
        added = f"{name!a} is not listed in package.json: added after signing (not unpacked)"
        problems.append(Check("files", "fail", added, "unlisted_file"))
    refused = set(archive.names) - set(unpacked.entries) - SIGNED_ENTRIES
    checks = problems or [
        Check("files", "pass", f"{len(listed)} files, sizes and SHA-256 as listed")
    ]
    return checks, not problems and not refused
