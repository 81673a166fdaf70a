"""Offline verification of a disclosure package (`doorwarden verify PACKAGE.zip`).

Whoever holds a package — the agency, its lawyers, a court, the defence — can check it
with no server: the instance's signature over package.json, package.json's list of every
other file with its SHA-256, the request it answers, and each clip as verify.py checks
sealed clips (camera signature, hashes, chain), decrypting the clips the provider could
open with the keys the package carries. The format is docs/legal-process.md,
"Disclosure packages".

The ZIP may have been written by an attacker, so it is unpacked by safezip (caps, an
allow-list of names) into a temporary folder that is removed afterwards, and every check
runs whatever the others found: the report lists all that is wrong. Printing it is the
CLI's business (cli/verify_package.py).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from doorwarden.formats.checkpoint import (
    MAX_NOTE_BYTES,
    CheckpointError,
    NoteKey,
    open_checkpoint,
    open_note,
)
from doorwarden.formats.package_files import (
    CLIPS_DIR,
    CUSTODY_JSON,
    FORMAT,
    PACKAGE_JSON,
    PACKAGE_SIG,
    REQUEST_JSON,
    SIGNED_ENTRIES,
    SUBSCRIBERS_JSON,
    VERSION,
    parse_sig_text,
)
from doorwarden.formats.safezip import MAX_BYTES, MAX_ENTRIES, NotAZip, Unpacked, unpack
from doorwarden.verify.clips import Check, UsageError
from doorwarden.verify.package_clips import (
    PackageClipReport,
    PackageDeviceReport,
    check_clips,
    read_json,
)

KeySource = Literal["pinned", "package"]
KEY_SOURCE_TEXT: dict[KeySource, str] = {
    "pinned": "pinned on the command line",
    "package": f"from {PACKAGE_JSON}'s instance_key: self-asserted, since whoever made a "
    "forged package would name their own key there; pin the instance's published key "
    "with --instance-key",
}


@dataclass(frozen=True)
class PackageOptions:
    instance_key: NoteKey | None = None  # pinned by the user
    extract: Path | None = None  # write the decrypted clips here if everything holds
    max_entries: int = MAX_ENTRIES
    max_bytes: int = MAX_BYTES


@dataclass
class PackageReport:
    path: Path
    package_id: str | None = None
    kind: str | None = None
    provisional: bool | None = None
    instance: str | None = None
    agency: str | None = None
    case_number: str | None = None
    key_source: KeySource | None = None
    checks: list[Check] = field(default_factory=list)  # about the package as a whole
    clips: list[PackageClipReport] = field(default_factory=list)
    devices: list[PackageDeviceReport] = field(default_factory=list)
    subscriber_households: int | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the ZIP itself: refused entries...
    extracted: list[Path] = field(default_factory=list)
    not_extracted: str | None = None  # why --extract wrote nothing

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and all(c.status != "fail" for c in self.checks)
            and all(c.ok for c in self.clips)
            and all(d.ok for d in self.devices)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "package": self.package_id,
            "kind": self.kind,
            "provisional": self.provisional,
            "instance": self.instance,
            "agency": self.agency,
            "case_number": self.case_number,
            "instance_key_source": self.key_source,
            "checks": [c.to_json() for c in self.checks],
            "clips": [c.to_json() for c in self.clips],
            "devices": [d.to_json() for d in self.devices],
            "subscriber_households": self.subscriber_households,
            "warnings": self.warnings,
            "errors": self.errors,
            "extracted": [str(p) for p in self.extracted],
            "not_extracted": self.not_extracted,
            "totals": {
                "checks_failed": sum(c.status == "fail" for c in self.checks),
                "clips": len(self.clips),
                "clips_passed": sum(c.ok for c in self.clips),
                "clips_failed": sum(not c.ok for c in self.clips),
                "clips_without_content": sum(not c.content_available for c in self.clips),
                "devices": len(self.devices),
                "chain_problems": sum(len(d.problems) for d in self.devices),
                "warnings": len(self.warnings),
                "errors": len(self.errors),
            },
        }


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def verify_package(path: Path, options: PackageOptions) -> PackageReport:
    """Check the disclosure package at `path`; UsageError if it is not one at all."""
    report = PackageReport(path)
    with tempfile.TemporaryDirectory(prefix="doorwarden-package-") as tmp:
        try:
            unpacked = unpack(
                path, Path(tmp) / "zip", max_entries=options.max_entries,
                max_bytes=options.max_bytes,
            )  # fmt: skip
        except NotAZip as exc:
            raise UsageError(str(exc)) from None
        if PACKAGE_JSON not in unpacked.names and PACKAGE_SIG not in unpacked.names:
            raise UsageError(f"{path} is a ZIP file but not a disclosure package")
        report.errors += unpacked.problems
        report.warnings += unpacked.warnings
        if unpacked.refused:
            return report
        data, problem = read_json(unpacked, PACKAGE_JSON)
        package = data if isinstance(data, dict) else {}
        if problem is None and package.get("format") != FORMAT:
            if PACKAGE_SIG not in unpacked.names:  # some other program's package.json
                raise UsageError(f"{path} is a ZIP file but not a disclosure package")
            problem = Check("format", "fail", f"{PACKAGE_JSON} is not a {FORMAT}", "malformed")
        elif problem is None and package.get("version") != VERSION:
            shown = ascii(package.get("version"))
            problem = Check("format", "fail", f"version {shown} is not supported", "malformed")
        report.checks.append(problem or Check("format", "pass", f"{FORMAT} v{VERSION}"))
        _describe(report, package)
        key = _instance_key(report, package, options)
        _check_signature(report, unpacked, package, key)
        listed = _check_files(report, unpacked, package)
        _check_request(report, unpacked, package)
        _check_kind(report, unpacked, package)
        _check_custody(report, unpacked, package, key)
        staging = Path(tmp) / "plain" if options.extract is not None else None
        authentic = listed and all(
            c.status == "pass" for c in report.checks if c.name in ("signature", "package_json")
        )
        clips, devices, checks = check_clips(unpacked, package, staging, authentic=authentic)
        report.clips, report.devices = clips, devices
        report.checks += checks
        if options.extract is not None and staging is not None:
            _extract(report, staging, options.extract)
    return report


def _describe(report: PackageReport, package: dict[str, Any]) -> None:
    report.package_id = _str(package, "package")
    report.kind = _str(package, "kind")
    provisional = package.get("provisional")
    report.provisional = provisional if isinstance(provisional, bool) else None
    report.instance = _str(package, "instance")
    report.case_number = _str(package, "case_number")
    agency = package.get("agency")
    if isinstance(agency, dict):
        report.agency = _str(agency, "name")


def _instance_key(
    report: PackageReport, package: dict[str, Any], options: PackageOptions
) -> NoteKey | None:
    """The pinned key; else package.json's own, with a warning (as verify.py warns of
    devices.json keys): a signature by a key the package names proves only consistency."""
    named = _str(package, "instance_key")
    if options.instance_key is not None:
        report.key_source = "pinned"
        if named is not None and named != options.instance_key.verifier():
            report.warnings.append(f"{PACKAGE_JSON} names another instance key than the pinned one")
        return options.instance_key
    try:
        key = NoteKey.from_verifier(named or "")
    except CheckpointError as exc:
        report.checks.append(
            Check("instance_key", "fail", f"no usable instance_key in {PACKAGE_JSON}: {exc}",
                  "no_instance_key")
        )  # fmt: skip
        return None
    report.key_source = "package"
    report.warnings.append(f"instance key {KEY_SOURCE_TEXT['package']}")
    return key


def _check_signature(
    report: PackageReport, unpacked: Unpacked, package: dict[str, Any], key: NoteKey | None
) -> None:
    sig = unpacked.entries.get(PACKAGE_SIG)
    skipped = [
        Check(n, "skip", "the signature did not verify") for n in ("package_id", "package_json")
    ]
    if sig is None:
        report.checks += [Check("signature", "fail", f"{PACKAGE_SIG} is missing", "missing")]
        report.checks += skipped
        return
    if key is None:
        report.checks += [Check("signature", "fail", "no instance key", "no_instance_key")]
        report.checks += skipped
        return
    if sig.size > MAX_NOTE_BYTES:
        big = f"larger than {MAX_NOTE_BYTES} bytes"
        report.checks += [Check("signature", "fail", big, "malformed"), *skipped]
        return
    try:
        text = open_note(sig.path.read_bytes(), key)
    except CheckpointError as exc:
        report.checks += [Check("signature", "fail", str(exc), "bad_signature"), *skipped]
        return
    parsed = parse_sig_text(text)
    if parsed is None:
        shown = "not the text a package signature signs"
        report.checks += [Check("signature", "fail", shown, "malformed"), *skipped]
        return
    package_id, digest = parsed
    where = "pinned" if report.key_source == "pinned" else "named in package.json"
    report.checks.append(Check("signature", "pass", f"Ed25519, instance key {where}"))
    if package_id == report.package_id:
        report.checks.append(Check("package_id", "pass", f"{PACKAGE_SIG} names this package"))
    else:
        other = f"{PACKAGE_SIG} is the signature of package {package_id!a}, not this one"
        report.checks.append(Check("package_id", "fail", other, "wrong_package"))
    entry = unpacked.entries.get(PACKAGE_JSON)
    if entry is None:
        report.checks.append(Check("package_json", "fail", "missing", "missing"))
    elif entry.sha256 == digest:
        report.checks.append(Check("package_json", "pass", "SHA-256 as signed"))
    else:
        changed = f"{PACKAGE_JSON} is not the one {PACKAGE_SIG} signed (SHA-256 differs)"
        report.checks.append(Check("package_json", "fail", changed, "hash_mismatch"))


def _check_files(report: PackageReport, unpacked: Unpacked, package: dict[str, Any]) -> bool:
    """package.json's `files` against the ZIP's other entries; True if they agree."""
    files = package.get("files")
    if not isinstance(files, list):
        report.checks.append(Check("files", "fail", "package.json has no files list", "malformed"))
        return False
    problems: list[Check] = []
    listed: dict[str, tuple[int, str]] = {}
    for i, item in enumerate(files):
        path = item.get("path") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        sha = item.get("sha256") if isinstance(item, dict) else None
        if not isinstance(path, str) or not isinstance(size, int) or not isinstance(sha, str):
            problems.append(
                Check("files", "fail", f"files[{i}]: not path, size, sha256", "malformed")
            )
        elif path in listed or path in SIGNED_ENTRIES:
            problems.append(Check("files", "fail", f"{path!a} listed twice", "malformed"))
        else:
            listed[path] = (size, sha)
    present = {n: e for n, e in unpacked.entries.items() if n not in SIGNED_ENTRIES}
    refused = set(unpacked.names) - set(unpacked.entries)
    for path, (size, sha) in sorted(listed.items()):
        entry = present.get(path)
        if entry is None and path not in refused:
            problems.append(Check("files", "fail", f"{path!a} is missing", "missing"))
        elif entry is not None and (entry.size, entry.sha256) != (size, sha):
            changed = f"{path!a} is not the file package.json lists ({entry.size} bytes)"
            problems.append(Check("files", "fail", changed, "hash_mismatch"))
    for name in sorted(set(present) - set(listed)):
        added = f"{name!a} is not listed in package.json: added after signing"
        problems.append(Check("files", "fail", added, "unlisted_file"))
    report.checks += problems or [
        Check("files", "pass", f"{len(listed)} files, sizes and SHA-256 as listed")
    ]
    return not problems and not refused


def _check_request(report: PackageReport, unpacked: Unpacked, package: dict[str, Any]) -> None:
    data, problem = read_json(unpacked, REQUEST_JSON)
    if problem is not None:
        report.checks.append(Check("request", problem.status, problem.message, problem.code))
        return
    request = data if isinstance(data, dict) else {}
    agency = package.get("agency") if isinstance(package.get("agency"), dict) else {}
    filed_agency = request.get("agency") if isinstance(request.get("agency"), dict) else {}
    if _str(request, "id") is None or _str(request, "id") != _str(package, "request"):
        wrong = f"{REQUEST_JSON} is not the request package.json names"
        report.checks.append(Check("request", "fail", wrong, "wrong_request"))
    elif _str(filed_agency or {}, "id") != _str(agency or {}, "id"):
        wrong = f"{REQUEST_JSON} names another agency than package.json"
        report.checks.append(Check("request", "fail", wrong, "wrong_request"))
    else:
        report.checks.append(Check("request", "pass", f"request {request['id']}"))


def _check_kind(report: PackageReport, unpacked: Unpacked, package: dict[str, Any]) -> None:
    """A subscriber package (a subpoena) holds subscriber information and never a clip;
    no other package holds subscriber information."""
    clips = package.get("clips")
    has_clips = bool(clips) or any(n.startswith(f"{CLIPS_DIR}/") for n in unpacked.names)
    has_subscribers = SUBSCRIBERS_JSON in unpacked.names
    if report.kind == "subscriber":
        data, problem = read_json(unpacked, SUBSCRIBERS_JSON)
        if isinstance(data, list):
            report.subscriber_households = len(data)
        if has_clips:
            wrong = "a subscriber package must hold no clip"
            report.checks.append(Check("kind", "fail", wrong, "clips_in_subscriber_package"))
        elif problem is not None or not isinstance(data, list):
            shown = problem.message if problem else "not a list"
            report.checks.append(Check("kind", "fail", f"{SUBSCRIBERS_JSON}: {shown}", "malformed"))
        else:
            report.checks.append(Check("kind", "pass", "subscriber information only, no clip"))
    elif report.kind in ("content", "community"):
        if has_subscribers:
            wrong = f"a {report.kind} package must hold no {SUBSCRIBERS_JSON}"
            report.checks.append(Check("kind", "fail", wrong, "unexpected_subscribers"))
        else:
            report.checks.append(Check("kind", "pass", f"{report.kind}: clips"))
    else:
        shown = ascii(report.kind)
        report.checks.append(Check("kind", "fail", f"unknown package kind {shown}", "malformed"))


def _check_custody(
    report: PackageReport, unpacked: Unpacked, package: dict[str, Any], key: NoteKey | None
) -> None:
    """The audit-log checkpoint in custody.json: signed by the instance key, for this
    instance's log. With it, `doorwarden verify-log` proves the events are in the log."""
    data, problem = read_json(unpacked, CUSTODY_JSON)
    if problem is not None:
        report.checks.append(Check("custody", problem.status, problem.message, problem.code))
        return
    log = data.get("log") if isinstance(data, dict) else None
    note = log.get("checkpoint") if isinstance(log, dict) else None
    if not isinstance(log, dict) or not isinstance(data, dict):
        report.checks.append(Check("custody", "fail", "no log section", "malformed"))
        return
    if note is None:
        report.checks.append(Check("custody", "skip", "no audit-log checkpoint at build time"))
        return
    if key is None or not isinstance(note, str):
        report.checks.append(Check("custody", "fail", "checkpoint unreadable", "malformed"))
        return
    try:
        checkpoint = open_checkpoint(note.encode(), key, origin=_str(package, "instance"))
    except CheckpointError as exc:
        report.checks.append(Check("custody", "fail", f"checkpoint: {exc}", "bad_checkpoint"))
        return
    events = data.get("events")
    count = len(events) if isinstance(events, list) else 0
    report.checks.append(
        Check("custody", "pass", f"{count} request event(s); audit-log checkpoint of "
              f"{checkpoint.size} entries signed by the instance key")
    )  # fmt: skip


def _extract(report: PackageReport, staging: Path, out: Path) -> None:
    """All or nothing: the decrypted clips leave the temporary folder only if every check
    of the package held (as `doorwarden decrypt` writes nothing for a failing folder)."""
    if not report.ok:
        report.not_extracted = "the package did not verify: nothing was written"
        return
    staged = sorted(p for p in staging.rglob("*") if p.is_file()) if staging.is_dir() else []
    if not staged:
        report.not_extracted = "no clip whose content the package holds"
        return
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        for source in staged:
            target = out / source.relative_to(staging)
            target.parent.mkdir(mode=0o700, exist_ok=True)
            shutil.move(source, target)
            report.extracted.append(target)
    except OSError as exc:
        raise UsageError(f"--extract {out}: {exc.strerror or exc}") from exc
