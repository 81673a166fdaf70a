"""Offline verification of a disclosure package (`doorwarden verify PACKAGE.zip`).

Whoever holds a package — the agency, its lawyers, a court, the defence — can check it
with no server: the instance's signature over package.json, package.json's list of every
other file with its SHA-256, the request it answers, and each clip as verify.py checks
sealed clips (camera signature, hashes, chain), decrypting the clips the provider could
open with the keys the package carries. The format is docs/legal-process.md,
"Disclosure packages".

The ZIP may have been written by an attacker, so nothing in it is written to disk on
its own say-so: package.sig and package.json are read and checked in memory first
(verify/package_index.py), and only then does safezip unpack the entries the signed
package.json lists, each up to its listed size, into a temporary folder that is removed
afterwards. Past that point every check runs whatever the others found: the report lists
all that is wrong. Printing it is the CLI's business (cli/verify_package.py).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from doorwarden.formats.checkpoint import CheckpointError, NoteKey, open_checkpoint
from doorwarden.formats.package_files import (
    CLIPS_DIR,
    CUSTODY_JSON,
    FORMAT,
    PACKAGE_JSON,
    PACKAGE_SIG,
    REQUEST_JSON,
    SUBSCRIBERS_JSON,
    VERSION,
)
from doorwarden.formats.safezip import (
    MAX_BYTES,
    MAX_ENTRIES,
    Archive,
    NotAZip,
    Unpacked,
    open_archive,
)
from doorwarden.verify.clips import Check, UsageError
from doorwarden.verify.package_clips import (
    PackageClipReport,
    PackageDeviceReport,
    check_clips,
    read_json,
)
from doorwarden.verify.package_index import (
    NOT_UNPACKED,
    budget_problem,
    files_checks,
    listing,
    read_package_json,
    signature_checks,
)

NOT_EXTRACTED = "the package did not verify: nothing was written"
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
    try:
        archive = open_archive(path, max_entries=options.max_entries)
    except NotAZip as exc:
        raise UsageError(str(exc)) from None
    with archive:
        if PACKAGE_JSON not in archive.names and PACKAGE_SIG not in archive.names:
            raise UsageError(f"{path} is a ZIP file but not a disclosure package")
        report.errors += archive.problems
        report.warnings += archive.warnings
        if archive.refused:
            return report
        package, key = _check_index(report, archive, options)
        if all(
            c.status == "pass"
            for c in report.checks
            if c.name in ("signature", "package_id", "package_json")
        ):
            with tempfile.TemporaryDirectory(prefix="doorwarden-package-") as tmp:
                _check_contents(report, archive, package, key, Path(tmp), options)
        else:  # package.json is only a claim: nothing of the ZIP is written
            report.checks += [
                Check(n, "skip", NOT_UNPACKED)
                for n in ("files", "request", "kind", "custody", "clips")
            ]
            if options.extract is not None:
                report.not_extracted = NOT_EXTRACTED
    return report


def _check_index(
    report: PackageReport, archive: Archive, options: PackageOptions
) -> tuple[dict[str, Any], NoteKey | None]:
    """package.json and package.sig, from memory: format, description, instance key,
    signature. UsageError for some other program's package.json."""
    body, data, problem = read_package_json(archive)
    report.errors += [body.problem] if body.problem else []
    package = data if isinstance(data, dict) else {}
    if problem is None and package.get("format") != FORMAT:
        if PACKAGE_SIG not in archive.names:  # some other program's package.json
            raise UsageError(f"{report.path} is a ZIP file but not a disclosure package")
        problem = Check("format", "fail", f"{PACKAGE_JSON} is not a {FORMAT}", "malformed")
    elif problem is None and package.get("version") != VERSION:
        shown = ascii(package.get("version"))
        problem = Check("format", "fail", f"version {shown} is not supported", "malformed")
    report.checks.append(problem or Check("format", "pass", f"{FORMAT} v{VERSION}"))
    _describe(report, package)
    key = _instance_key(report, package, options)
    report.checks += signature_checks(
        archive, body, key, pinned=report.key_source == "pinned", package_id=report.package_id
    )
    return package, key


def _check_contents(
    report: PackageReport,
    archive: Archive,
    package: dict[str, Any],
    key: NoteKey | None,
    tmp: Path,
    options: PackageOptions,
) -> None:
    """Everything but the index, on the entries the signed package.json lists, unpacked
    into `tmp`."""
    unpacked, files_ok = _unpack(report, archive, package, tmp, options)
    if unpacked is None:
        if options.extract is not None:
            report.not_extracted = NOT_EXTRACTED
        return
    _check_request(report, unpacked, package)
    _check_kind(report, unpacked, package)
    _check_custody(report, unpacked, package, key)
    staging = tmp / "plain" if options.extract is not None else None
    clips, devices, checks = check_clips(unpacked, package, staging, authentic=files_ok)
    report.clips, report.devices = clips, devices
    report.checks += checks
    if options.extract is not None and staging is not None:
        _extract(report, staging, options.extract)


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


def _unpack(
    report: PackageReport,
    archive: Archive,
    package: dict[str, Any],
    tmp: Path,
    options: PackageOptions,
) -> tuple[Unpacked | None, bool]:
    """Unpack what the signed package.json lists, each entry up to its listed size, and
    check the ZIP against that list; (None, False) if the list adds up to more than the
    ZIP could hold or the disk has room for: then nothing is written. Also whether the
    ZIP holds exactly the files listed (which authenticates devices.json's keys)."""
    listed, problems = listing(package)
    wanted = {n: size for n, (size, _) in (listed or {}).items() if n in archive.usable}
    total = sum(wanted.values())
    refusal = budget_problem(
        total, archive, free=shutil.disk_usage(tmp).free, max_bytes=options.max_bytes,
        needed=total * 2 if options.extract is not None else total,  # a plaintext per clip
    )  # fmt: skip
    if refusal is not None:
        report.errors.append(refusal)
        return None, False
    unpacked = archive.unpack(tmp / "zip", wanted, what="package.json lists")
    report.errors += unpacked.problems
    if listed is None:
        report.checks += problems
        return unpacked, False
    checks, ok = files_checks(listed, problems, archive, unpacked)
    report.checks += checks
    return unpacked, ok


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
        report.not_extracted = NOT_EXTRACTED
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
