"""The clips of a disclosure package: each checked as verify.py checks sealed clips, then
against what package.json says of it, then opened with its key from keys.json when the
provider could open it; and each camera's chain.

The device keys come from the package's devices.json. A loose export's devices.json
proves little (verify.py warns of it), but this one is listed, with its SHA-256, in the
package.json that the instance signed: once that signature and that list check out, the
keys are as good as pinned — by the instance, which had them from pairing.

A package holds the clips of a window, not a camera's whole history, so gaps between
its clips are expected (reported, not failed); consecutive clips must still link, and
two different clips with one sequence number are a fork.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doorwarden.crypto.errors import ChunkError, MalformedError, SealError
from doorwarden.crypto.keys import KEY_BYTES, b64d, key_id
from doorwarden.crypto.manifest import ChainProblem, Manifest, SignedManifest, check_chain
from doorwarden.crypto.seal import open_clip_with_key, open_thumbnail_with_key
from doorwarden.formats.clip_files import SealedPaths, read_blocks
from doorwarden.formats.package_files import (
    CLIPS_DIR,
    CONTENT_AVAILABLE,
    CONTENT_NOT_AVAILABLE,
    DEVICES_JSON,
    KEYS_JSON,
    clip_paths,
    clip_stem,
    safe_name,
)
from doorwarden.verify.clips import (
    Check,
    ClipReport,
    DeviceKey,
    Options,
    check_clip,
    index_files,
    load_manifest,
    parse_device_keys,
)
from doorwarden.verify.package_index import MAX_JSON_BYTES, parse_json

if TYPE_CHECKING:
    from doorwarden.formats.safezip import Unpacked

MAX_THUMBNAIL_BYTES = 16 * 1024 * 1024  # a JPEG preview; a "thumbnail" past this is junk


@dataclass
class PackageClipReport(ClipReport):
    entry: str = ""  # the manifest's name in the ZIP
    content: str | None = None  # as package.json states it

    @property
    def content_available(self) -> bool:
        return self.content == CONTENT_AVAILABLE

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "manifest": self.entry, "content": self.content}


@dataclass
class PackageDeviceReport:
    device: str
    key_id: str | None
    sequences: list[int]
    problems: list[ChainProblem] = field(default_factory=list)  # forks, broken links
    gaps: list[ChainProblem] = field(default_factory=list)  # expected: only a window

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        shown = [
            {"kind": p.kind, "sequence": p.sequence, "detail": p.detail}
            for p in self.problems + self.gaps
        ]
        return {
            "device": self.device,
            "key_id": self.key_id,
            "clips": len(self.sequences),
            "first_sequence": min(self.sequences, default=None),
            "last_sequence": max(self.sequences, default=None),
            "chain_ok": self.ok,
            "chain_problems": [p for p in shown if p["kind"] != "gap"],
            "gaps": [p for p in shown if p["kind"] == "gap"],
        }


@dataclass(frozen=True)
class _Listed:
    device: str
    sequence: int
    content: str
    thumbnail: bool
    item: dict[str, Any]


def _fail(name: str, message: str, code: str) -> Check:
    return Check(name, "fail", message, code)


def read_json(unpacked: Unpacked, name: str) -> tuple[object, Check | None]:
    """The JSON of entry `name`, or (None, the failed check saying why not)."""
    entry = unpacked.entries.get(name)
    if entry is None:
        return None, Check(name, "fail", f"{name} is missing", "missing")
    if entry.size > MAX_JSON_BYTES:
        return None, Check(name, "fail", f"larger than {MAX_JSON_BYTES} bytes", "malformed")
    return parse_json(entry.path.read_bytes(), name)


def _device_keys(unpacked: Unpacked, needed: bool, checks: list[Check]) -> dict[str, bytes]:
    if DEVICES_JSON not in unpacked.entries and not needed:
        return {}
    data, problem = read_json(unpacked, DEVICES_JSON)
    if problem is not None:
        checks.append(replace(problem, name="devices"))
        return {}
    try:
        keys = parse_device_keys(data, what=DEVICES_JSON)
    except MalformedError as exc:
        checks.append(_fail("devices", str(exc), exc.code))
        return {}
    checks.append(Check("devices", "pass", f"{len(keys)} camera key(s)"))
    return keys


def _clip_keys(unpacked: Unpacked, checks: list[Check]) -> dict[str, bytes | None]:
    """keys.json as {"<device>/<seq>": raw key, or None for an entry that is no key}."""
    if KEYS_JSON not in unpacked.entries:
        return {}
    data, problem = read_json(unpacked, KEYS_JSON)
    if problem is not None or not isinstance(data, dict):
        checks.append(
            replace(problem, name="keys")
            if problem
            else _fail("keys", "not an object", "malformed")
        )
        return {}
    keys: dict[str, bytes | None] = {}
    for name, text in data.items():
        try:
            keys[name] = b64d(text if isinstance(text, str) else "!", what=name, length=KEY_BYTES)
        except MalformedError as exc:
            checks.append(_fail("keys", f"{KEYS_JSON}: {exc}", exc.code))
            keys[name] = None
    return keys


def _listed(package: dict[str, Any], checks: list[Check]) -> list[_Listed]:
    items = package.get("clips")
    if not isinstance(items, list):
        checks.append(_fail("clips", "package.json has no clips list", "malformed"))
        return []
    out: list[_Listed] = []
    seen: set[tuple[str, int]] = set()
    for i, item in enumerate(items):
        where = f"package.json clips[{i}]"
        device = item.get("device") if isinstance(item, dict) else None
        sequence = item.get("sequence") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(device, str)
            or not safe_name(device, max_depth=1)
            or not isinstance(sequence, int)
            or isinstance(sequence, bool)
            or sequence < 0
        ):
            checks.append(_fail("clips", f"{where}: no usable device and sequence", "malformed"))
            continue
        manifest, clip, thumb = clip_paths(device, sequence)
        content = item.get("content")
        if (item.get("manifest"), item.get("clip")) != (manifest, clip) or item.get(
            "thumbnail"
        ) not in (thumb, None):
            checks.append(
                _fail("clips", f"{where}: files not where a package keeps them", "malformed")
            )
        elif content not in (CONTENT_AVAILABLE, CONTENT_NOT_AVAILABLE):
            checks.append(_fail("clips", f"{where}: content {content!a}", "malformed"))
        elif (device, sequence) in seen:
            checks.append(_fail("clips", f"{where}: listed twice", "malformed"))
        else:
            seen.add((device, sequence))
            out.append(_Listed(device, sequence, content, item["thumbnail"] is not None, item))
    return out


def _listing_check(listed: _Listed, m: Manifest) -> Check:
    """What the instance says of the clip against what the camera signed."""
    said = listed.item
    differs = [
        name
        for name, signed in (
            ("device", m.device),
            ("start", m.start_utc),
            ("end", m.end_utc),
            ("duration_ms", m.duration_ms),
            ("labels", list(m.labels)),
            ("thumbnail", m.thumbnail_size > 0),
        )
        if (listed.thumbnail if name == "thumbnail" else said.get(name)) != signed
    ]
    if differs:
        shown = ", ".join(differs)
        return _fail(
            "listing", f"package.json's {shown} differ from the manifest", "listing_mismatch"
        )
    return Check("listing", "pass", "package.json describes the clip as its camera signed it")


def _content_check(listed: _Listed, m: Manifest, has_key: bool) -> Check:
    if listed.content == CONTENT_AVAILABLE:
        if has_key:
            return Check("content", "pass", f"available: its key is in {KEYS_JSON}")
        missing = f"marked available but {KEYS_JSON} holds no key for it"
        return _fail("content", missing, "no_clip_key")
    if has_key:
        odd = f"marked not available to the provider, yet {KEYS_JSON} holds a key for it"
        return _fail("content", odd, "unexpected_clip_key")
    if m.mode == "standard":
        return Check("content", "warn", "marked not available, though sealed in standard mode")
    return Check(
        "content", "skip", "end-to-end encrypted: not available to the provider; checked on "
        "ciphertext only", CONTENT_NOT_AVAILABLE,
    )  # fmt: skip


def _write(target: Path | None, chunks: Iterator[bytes]) -> None:
    if target is None:
        for _ in chunks:
            pass  # only the checks matter; the plaintext is dropped chunk by chunk
        return
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            for chunk in chunks:
                f.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)  # a partial plaintext is void
        raise


def _decrypt_checks(
    report: PackageClipReport,
    signed: SignedManifest,
    public: bytes,
    key: bytes,
    staging: Path | None,
    listed: _Listed,
) -> list[Check]:
    by_name = {c.name: c for c in report.checks}
    if by_name["signature"].status != "pass":  # opening an unauthenticated clip proves nothing
        return [Check("decrypt", "skip", "the signature did not verify")]
    paths, m = report.files, signed.manifest
    base = staging / listed.device / f"{paths.clip.name.split('.')[0]}" if staging else None
    out: list[Check] = []
    try:
        blocks = read_blocks(paths.clip)
        _write(
            base.with_suffix(".mp4") if base else None,
            open_clip_with_key(signed, public, key, blocks),
        )
        out.append(Check("decrypt", "pass", f"{m.size} bytes, plaintext SHA-256 as signed"))
    except ChunkError as exc:
        if by_name["clip"].status == "pass":  # the ciphertext is as signed: the key is not
            out.append(
                _fail(
                    "decrypt", f"the key in {KEYS_JSON} does not open this clip", "wrong_clip_key"
                )
            )
        else:
            out.append(_fail("decrypt", str(exc), exc.code))
    except SealError as exc:
        out.append(_fail("decrypt", str(exc), exc.code))
    except OSError as exc:
        out.append(_fail("decrypt", f"{paths.clip.name}: {exc.strerror or exc}", "unreadable"))
    if m.thumbnail_size == 0:
        return out
    if by_name["thumbnail"].status != "pass" or m.thumbnail_size > MAX_THUMBNAIL_BYTES:
        out.append(Check("decrypt_thumbnail", "skip", "the thumbnail did not check out"))
        return out
    try:
        jpeg = open_thumbnail_with_key(signed, public, paths.thumbnail.read_bytes(), key)
        _write(base.with_suffix(".jpg") if base else None, iter([jpeg]))
        out.append(Check("decrypt_thumbnail", "pass", f"{len(jpeg)} bytes"))
    except ChunkError:
        out.append(
            _fail("decrypt_thumbnail", f"the key in {KEYS_JSON} does not open it", "wrong_clip_key")
        )
    except SealError as exc:
        out.append(_fail("decrypt_thumbnail", str(exc), exc.code))
    except OSError as exc:
        out.append(_fail("decrypt_thumbnail", str(exc.strerror or exc), "unreadable"))
    return out


def _signature_note(check: Check, device: str, authentic: bool) -> Check:
    if check.code == "no_device_key":
        return replace(check, message=f"{DEVICES_JSON} names no key for device {device}")
    if check.status != "pass":
        return check
    how = (
        "which the package signature authenticates"
        if authentic
        else "not authenticated: the package's own checks failed"
    )
    return replace(check, message=f"Ed25519, device key from {DEVICES_JSON}, {how}")


def check_clips(
    unpacked: Unpacked, package: dict[str, Any], staging: Path | None, *, authentic: bool
) -> tuple[list[PackageClipReport], list[PackageDeviceReport], list[Check]]:
    """Reports of each listed clip and each camera, and the package-level checks of the
    clip files (devices.json, keys.json, files no listed clip explains)."""
    checks: list[Check] = []
    listed = _listed(package, checks)
    device_keys = _device_keys(unpacked, bool(listed), checks)
    clip_keys = _clip_keys(unpacked, checks)
    parsed: list[tuple[_Listed, SealedPaths, SignedManifest]] = []
    reports: list[PackageClipReport] = []
    for item in listed:
        paths = SealedPaths(unpacked.root / CLIPS_DIR / item.device, item.sequence)
        entry = clip_paths(item.device, item.sequence)[0]
        loaded = load_manifest(paths.manifest)
        if isinstance(loaded, Check):
            reports.append(
                PackageClipReport(paths, checks=[loaded], entry=entry, content=item.content)
            )
        else:
            parsed.append((item, paths, loaded))
    index = index_files(s.manifest for _, _, s in parsed)
    for item, paths, signed in parsed:
        m = signed.manifest
        public = device_keys.get(m.device)
        key = DeviceKey(m.device, public, "pinned") if public is not None else None
        base = check_clip(paths, signed, key, index, Options())
        report = PackageClipReport(
            paths, base.device, base.start_utc, base.duration_ms, base.labels,
            [_signature_note(c, m.device, authentic) if c.name == "signature" else c
             for c in base.checks],
            entry=clip_paths(item.device, item.sequence)[0], content=item.content,
        )  # fmt: skip
        report.checks.append(_listing_check(item, m))
        name = clip_stem(item.device, item.sequence)
        has_key = name in clip_keys
        report.checks.append(_content_check(item, m, has_key))
        clip_key = clip_keys.get(name)
        if has_key and clip_key is None:
            report.checks.append(_fail("decrypt", f"{KEYS_JSON}: not a 32-byte key", "malformed"))
        elif clip_key is not None and public is not None:
            report.checks += _decrypt_checks(report, signed, public, clip_key, staging, item)
        reports.append(report)
    reports.sort(key=lambda r: (r.entry, r.sequence))
    explained = {p for i in listed for p in clip_paths(i.device, i.sequence)}
    for name in sorted(n for n in unpacked.names if n.startswith(f"{CLIPS_DIR}/")):
        if name not in explained:
            checks.append(_fail("clips", f"{name!a}: no clip in package.json", "orphan_file"))
    names = {clip_stem(i.device, i.sequence) for i in listed}
    for name in sorted(set(clip_keys) - names):
        checks.append(_fail("keys", f"{KEYS_JSON} names {name!a}, not a clip here", "orphan_key"))
    if listed and not any(c.name == "clips" for c in checks):
        checks.append(Check("clips", "pass", f"{len(listed)} clip(s), each file accounted for"))
    return reports, _devices(parsed, device_keys), checks


def _devices(
    parsed: list[tuple[_Listed, SealedPaths, SignedManifest]], keys: dict[str, bytes]
) -> list[PackageDeviceReport]:
    by_device: dict[str, list[Manifest]] = {}
    for _, _, signed in parsed:
        by_device.setdefault(signed.manifest.device, []).append(signed.manifest)
    devices = []
    for device, manifests in sorted(by_device.items()):
        problems = check_chain(manifests, from_start=False)
        public = keys.get(device)
        devices.append(
            PackageDeviceReport(
                device,
                key_id(public) if public is not None else None,
                sorted(m.sequence for m in manifests),
                [p for p in problems if p.kind != "gap"],
                [p for p in problems if p.kind == "gap"],
            )
        )
    return devices
