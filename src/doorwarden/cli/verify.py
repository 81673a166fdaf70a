"""`doorwarden verify PATH`: check sealed clips offline and print what holds and what not.

The checking is `doorwarden.verify.clips`; this module turns arguments into keys and the
report into text (or JSON). Every string in the report may come from an attacker's
files, so it is printed with control characters escaped and rich markup disabled
(`doorwarden.verify.report.safe`). A .zip goes to cli/verify_package.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from doorwarden.cli.verify_package import verify_package_path
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import KEY_BYTES, RecipientKey, b64d, key_id
from doorwarden.verify.clips import (
    DeviceReport,
    Options,
    Report,
    UsageError,
    check_public_key,
    parse_device_keys,
    read_json_file,
    verify_path,
)
from doorwarden.verify.report import MARKS, clip_lines, safe

MAX_KEY_BYTES = 4096  # a key file is 32 bytes or ~44 characters of text


# --- arguments ---------------------------------------------------------------------------


def device_key_argument(arg: str) -> dict[str, bytes]:
    """`DEVICE_ID=BASE64URL`, or a JSON file holding `{"device", "public_key"}` (or a list
    of them, like devices.json fetched from a source one trusts)."""
    path = Path(arg)
    device, sep, text = arg.partition("=")
    try:
        if not sep or path.exists():  # exists(), not is_file(): `<(...)` is a pipe
            return parse_device_keys(read_json_file(path), what="key file")
        if not device:
            raise MalformedError("expected DEVICE_ID=BASE64URL or a JSON file")
        return {device: check_public_key(text, what=f"key of {device}")}
    except MalformedError as exc:
        raise UsageError(f"--device-key {arg}: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"--device-key {arg}: cannot read: {exc.strerror or exc}") from exc


def pinned_keys(args: list[str]) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for arg in args:
        for device, public in device_key_argument(arg).items():
            if keys.setdefault(device, public) != public:
                raise UsageError(f"--device-key: two different keys for device {device}")
    return keys


def recipient_key(path: Path) -> RecipientKey:
    """An X25519 private key file: 32 raw bytes, or their base64url text."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KEY_BYTES + 1)
        if len(data) == KEY_BYTES:  # base64url of 32 bytes is 43 characters: no ambiguity
            return RecipientKey.from_bytes(data)
        if len(data) > MAX_KEY_BYTES:
            raise MalformedError(f"larger than {MAX_KEY_BYTES} bytes")
        try:
            raw = b64d(data.decode("ascii").strip(), what="key", length=KEY_BYTES)
        except (UnicodeDecodeError, MalformedError):
            raise MalformedError("neither 32 raw bytes nor their base64url text") from None
        return RecipientKey.from_bytes(raw)
    except MalformedError as exc:
        raise UsageError(f"--key {path}: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"--key {path}: cannot read: {exc.strerror or exc}") from exc


# --- the report as text ------------------------------------------------------------------


def _device_lines(device: DeviceReport) -> list[str]:
    seqs = device.sequences
    key = (
        f"key {safe(device.key.source_text)} (id {key_id(device.key.public)[:16]})"
        if device.key
        else "[red]no key[/]"
    )
    head = f"  {safe(device.device, 60)}: {len(seqs)} clip(s), sequence {seqs[0]}..{seqs[-1]}"
    lines = [head, f"    {key}"]
    if device.ok:
        start = "" if device.from_start else " (where it starts is not checked: --from-start)"
        lines.append(f"    {MARKS['pass']} chain unbroken from {seqs[0]} to {seqs[-1]}{start}")
    lines += [
        f"    {MARKS['fail']} {p.kind} at {p.sequence}: {safe(p.detail)}" for p in device.problems
    ]
    return lines


def render(report: Report, console: Console) -> None:
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
        console.print(f"\n{MARKS['fail']} {safe(error)}")
    totals = report.to_json()["totals"]
    console.print(
        f"\n{totals['clips']} clip(s) from {totals['devices']} device(s): "
        f"{totals['clips_passed']} passed, {totals['clips_failed']} failed; "
        f"{totals['chain_problems']} chain problem(s); {totals['warnings']} warning(s)"
    )
    console.print("[green]PASSED[/]" if report.ok else "[red]FAILED[/]")


# --- the command -------------------------------------------------------------------------


def verify(
    path: Annotated[
        Path,
        typer.Argument(
            help="A directory of sealed clips (an export, an agent's sealed spool) or one "
            "<seq>.manifest.json.",
            show_default=False,
        ),
    ],
    device_key: Annotated[
        list[str] | None,
        typer.Option(
            "--device-key",
            metavar="DEVICE_ID=BASE64URL|FILE",
            help="A camera's Ed25519 public key, pinned (repeatable). Without it, keys come "
            "from devices.json in the directory, which proves less.",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="A recipient's X25519 private key (32 raw bytes or base64url): also decrypt "
            "each clip and check its plaintext hash.",
            show_default=False,
        ),
    ] = None,
    require_decrypt: Annotated[
        bool,
        typer.Option("--require-decrypt", help="Fail clips that --key is not a recipient of."),
    ] = False,
    from_start: Annotated[
        bool,
        typer.Option("--from-start", help="Require each device's chain to start at sequence 0."),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable report instead.")
    ] = False,
    instance_key: Annotated[
        str | None,
        typer.Option(
            "--instance-key",
            metavar="VKEY",
            help="Disclosure packages: the instance's verifier key as it publishes it "
            "(GET /api/v1/log/key), pinned. Without it, the key package.json names is used, "
            "which proves less.",
            show_default=False,
        ),
    ] = None,
    extract: Annotated[
        Path | None,
        typer.Option(
            "--extract",
            metavar="DIR",
            help="Disclosure packages: write the decrypted MP4s and JPEG thumbnails here, "
            "only if every check holds.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check sealed clips, or a disclosure package (a .zip), offline: signatures, hashes,
    the chain; exit 0 only if all hold.

    Nothing is sent anywhere. Exit 1 when any check fails, 2 for a bad argument.
    """
    if path.suffix.lower() == ".zip" and not path.is_dir():
        dir_only = bool(device_key) or key is not None or require_decrypt or from_start
        _verify_package(path, instance_key, extract, json_output, dir_only=dir_only)
    try:
        if instance_key is not None or extract is not None:
            raise UsageError("--instance-key and --extract are for disclosure packages (.zip)")
        if require_decrypt and key is None:
            raise UsageError("--require-decrypt needs --key")
        options = Options(
            device_keys=pinned_keys(device_key or []),
            recipient=recipient_key(key) if key is not None else None,
            require_decrypt=require_decrypt,
            from_start=from_start,
        )
        report = verify_path(path, options)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    if json_output:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        render(report, Console(highlight=False, soft_wrap=True))
    raise typer.Exit(0 if report.ok else 1)


def _verify_package(
    path: Path,
    instance_key: str | None,
    extract: Path | None,
    json_output: bool,
    *,
    dir_only: bool,
) -> None:
    try:
        if dir_only:
            # A package carries its camera keys (signed) and its clip keys; its clips are a
            # window, not a chain from 0.
            raise UsageError(
                "--device-key, --key, --require-decrypt and --from-start are for sealed clip "
                "folders"
            )
        ok = verify_package_path(path, instance_key, extract, json_output)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    raise typer.Exit(0 if ok else 1)
