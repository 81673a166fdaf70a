"""`doorwarden verify PACKAGE.zip`: check a disclosure package offline and print the
report (the checking is doorwarden.verify.package). As for sealed clips, every string
may come from an attacker's file, so it is printed escaped and without markup."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

from doorwarden.formats.checkpoint import CheckpointError, NoteKey
from doorwarden.verify.clips import Check, UsageError
from doorwarden.verify.package import PackageOptions, PackageReport
from doorwarden.verify.package import verify_package as check_package
from doorwarden.verify.package_clips import PackageDeviceReport
from doorwarden.verify.report import MARKS, clip_lines, safe


def instance_key_argument(text: str) -> NoteKey:
    """The verifier key as `GET /api/v1/log/key` serves it (`name+hexid+base64`)."""
    try:
        return NoteKey.from_verifier(text.strip())
    except CheckpointError as exc:
        raise UsageError(f"--instance-key: {exc}") from exc


def _check_line(check: Check) -> str:
    code = f"{safe(check.code)}: " if check.code and check.status != "pass" else ""
    return f"  {MARKS[check.status]} {check.name}: {code}{safe(check.message, 300)}"


def _device_lines(device: PackageDeviceReport) -> list[str]:
    seqs = device.sequences
    key = f"key id {device.key_id[:16]}" if device.key_id else "[red]no key[/]"
    lines = [
        f"  {safe(device.device, 60)}: {len(seqs)} clip(s), sequence {seqs[0]}..{seqs[-1]}",
        f"    {key} from devices.json",
    ]
    if device.ok:
        lines.append(f"    {MARKS['pass']} consecutive clips link; no fork")
    lines += [
        f"    {MARKS['fail']} {p.kind} at {p.sequence}: {safe(p.detail)}" for p in device.problems
    ]
    if device.gaps:
        shown = ", ".join(safe(g.detail.removeprefix("missing sequence ")) for g in device.gaps)
        lines.append(f"    {MARKS['skip']} not in the package (expected, only a window): {shown}")
    return lines


def render(report: PackageReport, console: Console) -> None:
    kind = safe(report.kind or "?") + (", provisional" if report.provisional else "")
    console.print(
        f"Disclosure package {safe(report.package_id or '?', 60)} ({kind}) "
        f"from {safe(report.instance or '?', 100)}"
    )
    console.print(
        f"  agency {safe(report.agency or '?', 100)}, case {safe(report.case_number or '?')}"
    )
    for check in report.checks:
        console.print(_check_line(check))
    if report.subscriber_households is not None:
        console.print(f"  subscriber information about {report.subscriber_households} household(s)")
    if report.clips:
        console.print("\nClips")
        for clip in report.clips:
            for line in clip_lines(clip):
                console.print(line)
    if report.devices:
        console.print("\nChain per device")
        for device in report.devices:
            for line in _device_lines(device):
                console.print(line)
    if report.warnings:
        console.print("\nWarnings")
        for warning in report.warnings:
            console.print(f"  {MARKS['warn']} {safe(warning, 300)}")
    for error in report.errors:
        console.print(f"\n{MARKS['fail']} {safe(error, 300)}")
    if report.extracted:
        console.print(f"\nWrote {len(report.extracted)} decrypted file(s):")
        for path in report.extracted:
            console.print(f"  {safe(path, 300)}")
    elif report.not_extracted:
        console.print(f"\nNothing extracted: {safe(report.not_extracted)}")
    totals = report.to_json()["totals"]
    console.print(
        f"\n{totals['checks_failed']} package check(s) failed; {totals['clips']} clip(s) from "
        f"{totals['devices']} device(s): {totals['clips_passed']} passed, "
        f"{totals['clips_failed']} failed, {totals['clips_without_content']} without content "
        f"available to the provider; {totals['chain_problems']} chain problem(s); "
        f"{totals['warnings']} warning(s)"
    )
    console.print("[green]PASSED[/]" if report.ok else "[red]FAILED[/]")


def verify_package_path(
    path: Path, instance_key: str | None, extract: Path | None, json_output: bool
) -> bool:
    """Check and print; whether everything held. UsageError for arguments we cannot use."""
    options = PackageOptions(
        instance_key=instance_key_argument(instance_key) if instance_key is not None else None,
        extract=extract,
    )
    report = check_package(path, options)
    if json_output:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        render(report, Console(highlight=False, soft_wrap=True))
    return report.ok
