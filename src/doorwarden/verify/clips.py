"""Offline verification of sealed clips (`doorwarden verify`): anyone holding an export or
an agent's sealed spool can check it without a server.

Pure reading and checking with the same crypto code the server uses; the result is a
`Report`, and printing it is the CLI's business (`cli/verify.py`). Every file here may
have been written by an attacker, so nothing is trusted before it is checked: files are
size-capped or streamed, and one bad clip never stops the others from being checked.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from doorwarden.crypto.errors import (
    HashMismatchError,
    MalformedError,
    NotARecipientError,
    SealError,
    TruncatedError,
)
from doorwarden.crypto.keys import KEY_BYTES, RecipientKey, b64d, key_id
from doorwarden.crypto.manifest import ChainProblem, Manifest, SignedManifest, check_chain
from doorwarden.crypto.seal import check_ciphertext, open_clip
from doorwarden.formats.clip_files import (
    CLIP_SUFFIX,
    MANIFEST_SUFFIX,
    THUMB_SUFFIX,
    SealedPaths,
    committed,
    read_manifest,
    stem,
)

DEVICES_FILE = "devices.json"
MAX_KEY_FILE_BYTES = 1024 * 1024  # devices.json for a few thousand cameras; refuse junk
BLOCK = 1024 * 1024  # clips are streamed: memory stays flat whatever their size

Status = Literal["pass", "fail", "skip", "warn"]
KeySource = Literal["pinned", "directory"]
KEY_SOURCES: dict[KeySource, str] = {
    "pinned": "pinned on the command line",
    "directory": f"from {DEVICES_FILE} in the directory, which an attacker who altered "
    "the clips could also have replaced",
}


class UsageError(Exception):
    """The arguments cannot be acted on (the CLI exits 2)."""


@dataclass(frozen=True)
class Check:
    name: str  # manifest, sequence, signature, clip, thumbnail, decrypt
    status: Status
    message: str
    code: str | None = None  # a crypto.errors code (or one of ours) when not passed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _failed(name: str, exc: SealError) -> Check:
    return Check(name, "fail", str(exc), exc.code)


@dataclass(frozen=True)
class DeviceKey:
    device: str
    public: bytes
    source: KeySource

    @property
    def source_text(self) -> str:
        return KEY_SOURCES[self.source]


@dataclass
class ClipReport:
    files: SealedPaths
    device: str | None = None  # None: the manifest could not be read
    start_utc: str | None = None
    duration_ms: int | None = None
    labels: tuple[str, ...] = ()
    checks: list[Check] = field(default_factory=list)

    @property
    def sequence(self) -> int:
        return self.files.sequence

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "manifest": str(self.files.manifest),
            "device": self.device,
            "start_utc": self.start_utc,
            "duration_ms": self.duration_ms,
            "labels": list(self.labels),
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass
class DeviceReport:
    device: str
    key: DeviceKey | None
    sequences: list[int]
    problems: list[ChainProblem]
    from_start: bool

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "key_source": self.key.source if self.key else None,
            "key_source_text": self.key.source_text if self.key else "no key",
            "key_id": key_id(self.key.public) if self.key else None,
            "clips": len(self.sequences),
            "first_sequence": min(self.sequences, default=None),
            "last_sequence": max(self.sequences, default=None),
            "from_start": self.from_start,
            "chain_ok": self.ok,
            "chain_problems": [
                {"kind": p.kind, "sequence": p.sequence, "detail": p.detail} for p in self.problems
            ],
        }


@dataclass
class Report:
    path: Path
    clips: list[ClipReport] = field(default_factory=list)
    devices: list[DeviceReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # worth reading; do not fail the run
    errors: list[str] = field(default_factory=list)  # fail the run, belong to no one clip

    @property
    def ok(self) -> bool:
        return not self.errors and all(c.ok for c in self.clips) and all(d.ok for d in self.devices)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "clips": [c.to_json() for c in self.clips],
            "devices": [d.to_json() for d in self.devices],
            "warnings": self.warnings,
            "errors": self.errors,
            "totals": {
                "clips": len(self.clips),
                "clips_passed": sum(c.ok for c in self.clips),
                "clips_failed": sum(not c.ok for c in self.clips),
                "devices": len(self.devices),
                "chain_problems": sum(len(d.problems) for d in self.devices),
                "warnings": len(self.warnings),
                "errors": len(self.errors),
            },
        }


@dataclass(frozen=True)
class Options:
    device_keys: Mapping[str, bytes] = field(default_factory=dict)  # pinned by the user
    recipient: RecipientKey | None = None  # decrypt too when given
    require_decrypt: bool = False  # "not a recipient" is then a failure
    from_start: bool = False  # the chain must start at sequence 0


# --- keys --------------------------------------------------------------------------------


def parse_device_keys(data: object, *, what: str) -> dict[str, bytes]:
    """`{"device", "public_key"}` or a list of them (the devices.json format) as
    {device: raw public key}; MalformedError names what is wrong."""
    entries = data if isinstance(data, list) else [data]
    keys: dict[str, bytes] = {}
    for i, entry in enumerate(entries):
        where = f"{what}[{i}]" if isinstance(data, list) else what
        if not isinstance(entry, dict) or not {"device", "public_key"} <= set(entry):
            raise MalformedError(f"{where}: expected an object with device and public_key")
        device, text = entry["device"], entry["public_key"]
        if not isinstance(device, str) or not device or not isinstance(text, str):
            raise MalformedError(f"{where}: device and public_key must be non-empty strings")
        public = check_public_key(text, what=f"{where}.public_key")
        if keys.setdefault(device, public) != public:
            raise MalformedError(f"{where}: two different keys for device {device}")
    return keys


def check_public_key(text: str, *, what: str) -> bytes:
    public = b64d(text.strip(), what=what, length=KEY_BYTES)
    try:  # refuse a point that is not a key now, not as an odd error mid-verification
        Ed25519PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise MalformedError(f"{what}: not an Ed25519 public key") from exc
    return public


def read_json_file(path: Path) -> object:
    """JSON from a small file; OSError or MalformedError."""
    with path.open("rb") as f:
        data = f.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise MalformedError(f"{path.name}: larger than {MAX_KEY_FILE_BYTES} bytes")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        raise MalformedError(f"{path.name}: not JSON ({exc})") from None


def resolve_keys(
    directory: Path, pinned: Mapping[str, bytes], report: Report
) -> dict[str, DeviceKey]:
    """Pinned keys first; devices.json fills in devices nobody pinned. Its problems are
    warnings: they only matter for a device left without a key, and that clip fails."""
    keys = {d: DeviceKey(d, k, "pinned") for d, k in pinned.items()}
    path = directory / DEVICES_FILE
    if not path.is_file():  # (nor a FIFO planted to hang us)
        return keys
    try:
        listed = parse_device_keys(read_json_file(path), what=DEVICES_FILE)
    except (OSError, SealError) as exc:
        report.warnings.append(f"{DEVICES_FILE} ignored: {exc}")
        return keys
    for device, public in listed.items():
        if device not in keys:
            keys[device] = DeviceKey(device, public, "directory")
        elif keys[device].public != public:
            report.warnings.append(
                f"{DEVICES_FILE} names a different key for device {device} than the pinned one"
            )
    return keys


# --- one clip ----------------------------------------------------------------------------


def _file_problem(name: str, path: Path) -> Check | None:
    """Why `path` cannot be read as a sealed file: missing, or not a regular file (a FIFO
    or a device planted under a clip's name would block or never end)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return Check(name, "fail", f"{path.name} is missing", "missing")
    except OSError as exc:
        return _unreadable(name, path, exc)
    if not stat.S_ISREG(mode):
        return Check(name, "fail", f"{path.name} is not a regular file", "not_a_file")
    return None


def _unreadable(name: str, path: Path, exc: OSError) -> Check:
    return Check(name, "fail", f"{path.name}: {exc.strerror or exc}", "unreadable")


def _read_blocks(f: IO[bytes], counted: list[int] | None = None) -> Iterator[bytes]:
    while block := f.read(BLOCK):
        if counted is not None:
            counted[0] += len(block)
        yield block


def load_manifest(path: Path) -> SignedManifest | Check:
    """The manifest's structure (not yet its signature), or the failed check saying why not."""
    problem = _file_problem("manifest", path)
    if problem is not None:
        return problem
    try:
        return read_manifest(path)
    except SealError as exc:
        return _failed("manifest", exc)
    except (ValueError, RecursionError) as exc:  # huge integers, nesting past the stack
        return Check("manifest", "fail", f"{path.name}: not a manifest ({exc})", "malformed")
    except OSError as exc:
        return _unreadable("manifest", path, exc)


def _check_digest(blocks: Iterable[bytes], size: int, sha256: str) -> None:
    digest, seen = hashlib.sha256(), 0
    for block in blocks:
        digest.update(block)
        seen += len(block)
    if seen != size or digest.hexdigest() != sha256:
        raise HashMismatchError("the file is not the one the manifest describes")


# (size, sha256) of every sealed file the manifests name -> "the clip of 000000000002",
# so a file moved from one clip to another is named for what it is.
FileIndex = dict[tuple[int, str], str]


def index_files(manifests: Iterable[Manifest]) -> FileIndex:
    index: FileIndex = {}
    for m in manifests:
        index.setdefault(
            (m.ciphertext_size, m.ciphertext_sha256), f"the clip of {stem(m.sequence)}"
        )
        if m.thumbnail_size:
            index.setdefault(
                (m.thumbnail_size, m.thumbnail_sha256), f"the thumbnail of {stem(m.sequence)}"
            )
    return index


def _identify(path: Path, size: int, index: FileIndex) -> str | None:
    """What a mismatching file really is; re-read only on this failure path, and only when
    some manifest names a file of its size."""
    if not any(s == size for s, _ in index):
        return None
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in _read_blocks(f):
                digest.update(block)
    except OSError:
        return None  # it changed under us; the mismatch itself is already reported
    return index.get((size, digest.hexdigest()))


def _content_check(
    name: str,
    path: Path,
    size: int,
    check: Callable[[Iterable[bytes]], None],
    index: FileIndex,
) -> Check:
    problem = _file_problem(name, path)
    if problem is not None:
        return problem
    counted = [0]
    try:
        with path.open("rb") as f:
            check(_read_blocks(f, counted))
        return Check(name, "pass", f"{size} bytes, SHA-256 as signed")
    except HashMismatchError as exc:
        seen = counted[0]
        actually = _identify(path, seen, index)
        if actually is not None:
            detail = f"{exc}: this file is {actually}"
        elif seen < size:  # the code the server answers for an upload cut short
            detail = f"{seen} bytes where the manifest names {size}: cut short or replaced"
            return Check(name, "fail", detail, TruncatedError.code)
        elif seen > size:
            detail = f"{exc} ({seen} bytes where the manifest names {size})"
        else:
            detail = f"{exc} (same size, different bytes)"
        return Check(name, "fail", detail, exc.code)
    except OSError as exc:
        return _unreadable(name, path, exc)


def _thumbnail_check(paths: SealedPaths, m: Manifest, index: FileIndex) -> Check:
    if m.thumbnail_size == 0:
        if paths.thumbnail.exists():  # unsigned bytes posing as part of the clip
            return Check(
                "thumbnail", "warn", "a thumbnail file is present but the manifest names none"
            )
        return Check("thumbnail", "skip", "none recorded")
    return _content_check(
        "thumbnail",
        paths.thumbnail,
        m.thumbnail_size,
        partial(_check_digest, size=m.thumbnail_size, sha256=m.thumbnail_sha256),
        index,
    )


def _signature_check(signed: SignedManifest, key: DeviceKey | None) -> Check:
    if key is None:
        missing = f"no public key for device {signed.manifest.device}: give --device-key"
        return Check("signature", "fail", missing, "no_device_key")
    try:
        signed.verify(key.public)
    except SealError as exc:
        return _failed("signature", exc)
    return Check("signature", "pass", f"Ed25519, device key {key.source_text}")


def _decrypt_check(
    signed: SignedManifest,
    key: DeviceKey | None,
    recipient: RecipientKey,
    paths: SealedPaths,
    options: Options,
) -> Check:
    """`key` is None unless the signature verified: open_clip checks it again, and a
    decryption under an unauthenticated manifest would prove nothing."""
    m = signed.manifest
    if key_id(recipient.public) not in {w.recipient for w in m.recipients}:
        status: Status = "fail" if options.require_decrypt else "skip"
        not_mine = "this key is not one of the clip's recipients"
        return Check("decrypt", status, not_mine, NotARecipientError.code)
    if key is None:
        return Check("decrypt", "skip", "the signature did not verify")
    problem = _file_problem("decrypt", paths.clip)
    if problem is not None:
        return Check("decrypt", "skip", f"nothing to decrypt: {problem.message}")
    try:
        with paths.clip.open("rb") as f:
            for _ in open_clip(signed, key.public, _read_blocks(f), recipient):
                pass  # only the checks matter; the plaintext is dropped chunk by chunk
    except SealError as exc:
        return _failed("decrypt", exc)
    except OSError as exc:
        return _unreadable("decrypt", paths.clip, exc)
    return Check("decrypt", "pass", f"{m.size} bytes, plaintext SHA-256 as signed")


def check_clip(
    paths: SealedPaths,
    signed: SignedManifest,
    key: DeviceKey | None,
    index: FileIndex,
    options: Options,
) -> ClipReport:
    """Every check of one clip whose manifest parsed; each runs whatever the others said,
    so the report shows all that is wrong (a wrong key leaves the hashes intact...)."""
    m = signed.manifest
    report = ClipReport(paths, m.device, m.start_utc, m.duration_ms, m.labels)
    report.checks.append(Check("manifest", "pass", "well-formed"))
    if m.sequence == paths.sequence:
        report.checks.append(Check("sequence", "pass", "matches the file name"))
    else:  # a manifest copied over another: its own checks would pass
        moved = f"{paths.manifest.name} holds the manifest of sequence {m.sequence}"
        report.checks.append(Check("sequence", "fail", moved, "sequence_mismatch"))
    signature = _signature_check(signed, key)
    report.checks.append(signature)
    check = partial(check_ciphertext, m)
    report.checks.append(_content_check("clip", paths.clip, m.ciphertext_size, check, index))
    report.checks.append(_thumbnail_check(paths, m, index))
    # With a key the clip is read a second time: the hash check above must stand on its
    # own for clips the key cannot open, and one more read is cheap next to AES and SHA.
    if options.recipient is not None:
        verified = key if signature.status == "pass" else None
        report.checks.append(_decrypt_check(signed, verified, options.recipient, paths, options))
    return report


# --- a directory -------------------------------------------------------------------------


def _targets(path: Path, report: Report) -> tuple[Path, list[SealedPaths]]:
    """The directory and the clips to check in it; UsageError for a path we cannot use."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(mode):
        try:
            names = sorted(p.name for p in path.iterdir())
        except OSError as exc:
            raise UsageError(f"cannot list {path}: {exc.strerror or exc}") from exc
        clips = committed(path)
        known = {p.manifest.name for p in clips}
        stems = {stem(p.sequence) for p in clips}
        for name in names:
            if name.endswith(MANIFEST_SUFFIX) and name not in known:
                report.warnings.append(f"ignored {name}: not named <12 digits>{MANIFEST_SUFFIX}")
            for suffix in (CLIP_SUFFIX, THUMB_SUFFIX):
                if name.endswith(suffix) and name.removesuffix(suffix) not in stems:
                    report.warnings.append(f"orphan file {name}: no manifest names it")
        return path, clips
    digits = path.name.removesuffix(MANIFEST_SUFFIX)
    if digits == path.name or len(digits) != 12 or not digits.isdigit():
        raise UsageError(
            f"{path} is neither a directory nor a sealed clip's <12 digits>{MANIFEST_SUFFIX}"
        )
    return path.parent, [SealedPaths(path.parent, int(digits))]


def verify_path(path: Path, options: Options) -> Report:
    """Check every sealed clip under `path` (a directory, or one manifest file)."""
    report = Report(path)
    directory, targets = _targets(path, report)
    keys = resolve_keys(directory, options.device_keys, report)
    parsed: list[tuple[SealedPaths, SignedManifest]] = []
    for paths in targets:
        loaded = load_manifest(paths.manifest)
        if isinstance(loaded, Check):  # nothing else about this clip can be checked
            report.clips.append(ClipReport(paths, checks=[loaded]))
        else:
            parsed.append((paths, loaded))
    index = index_files(s.manifest for _, s in parsed)
    for paths, signed in parsed:
        report.clips.append(
            check_clip(paths, signed, keys.get(signed.manifest.device), index, options)
        )
    report.clips.sort(key=lambda c: c.sequence)
    if not targets:
        spool = directory / "sealed"  # an agent's spool keeps its sealed clips in there
        hint = f" (try {spool})" if spool.is_dir() and committed(spool) else ""
        report.errors.append(f"no sealed clips found{hint}")
    by_device: dict[str, list[Manifest]] = {}
    for _, signed in parsed:
        by_device.setdefault(signed.manifest.device, []).append(signed.manifest)
    for device, manifests in sorted(by_device.items()):
        key = keys.get(device)
        if key is not None and key.source == "directory":
            report.warnings.append(f"device {device}: key {key.source_text}")
        problems = check_chain(manifests, from_start=options.from_start)
        sequences = sorted(m.sequence for m in manifests)
        report.devices.append(DeviceReport(device, key, sequences, problems, options.from_start))
    return report
