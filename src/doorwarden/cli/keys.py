"""`doorwarden keys new` and `doorwarden decrypt`: a member's own key for end-to-end
clips, and opening such clips on one's own machine (the server cannot)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from doorwarden.cli.verify import pinned_keys, recipient_key
from doorwarden.crypto.errors import SealError
from doorwarden.crypto.keys import RecipientKey, b64e, key_id
from doorwarden.crypto.seal import open_clip, open_thumbnail
from doorwarden.formats.clip_files import committed, read_blocks, read_manifest
from doorwarden.verify.clips import Options, UsageError, verify_path

keys_app = typer.Typer(help="Your own key for end-to-end encrypted clips.", no_args_is_help=True)


@keys_app.command("new")
def new_key(
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the private key (mode 0600).")
    ] = Path("doorwarden-member.key"),
) -> None:
    """Make an X25519 key pair: the private key goes to --out (never to any server), the
    public key is printed; register it on your account page (or PUT /api/v1/account/e2e-key)."""
    key = RecipientKey.generate()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"error: {out} exists; not overwriting a key", file=sys.stderr)
        raise typer.Exit(2) from None
    with os.fdopen(fd, "w") as f:
        f.write(b64e(key.private_bytes()) + "\n")
    print(f"private key: {out} (keep it safe: without it your end-to-end clips cannot be opened)")
    print(f"public key:  {b64e(key.public)}")
    print(f"key id:      {key_id(key.public)}")


def decrypt(
    path: Annotated[
        Path, typer.Argument(help="A directory of sealed clips (e.g. an unpacked export).")
    ],
    key: Annotated[Path, typer.Option("--key", help="Your private key file.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the MP4s and JPEGs.")],
    device_key: Annotated[
        list[str] | None,
        typer.Option(
            "--device-key", metavar="DEVICE_ID=BASE64URL|FILE", help="Pin a camera's key."
        ),
    ] = None,
) -> None:
    """Check, then decrypt every sealed clip in PATH with your key. Nothing is written for
    a clip that fails any check (`doorwarden verify` says why)."""
    try:
        recipient = recipient_key(key)
        options = Options(
            device_keys=pinned_keys(device_key or []), recipient=recipient, require_decrypt=True
        )
        report = verify_path(path, options)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    if not report.ok:
        print("error: not every clip passed its checks; run doorwarden verify", file=sys.stderr)
        raise typer.Exit(1)
    keys = {d.device: d.key.public for d in report.devices if d.key is not None}
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    for paths in committed(path):
        signed = read_manifest(paths.manifest)
        public = keys[signed.manifest.device]
        target = out / f"{paths.manifest.name.split('.')[0]}.mp4"
        try:
            _write(target, open_clip(signed, public, read_blocks(paths.clip), recipient))
            if signed.manifest.thumbnail_size:
                jpeg = open_thumbnail(signed, public, paths.thumbnail.read_bytes(), recipient)
                _write(target.with_suffix(".jpg"), iter([jpeg]))
        except SealError as exc:  # checked above; a file changed in between
            print(f"error: {paths.manifest.name}: {exc}", file=sys.stderr)
            raise typer.Exit(1) from exc
        print(f"{target}")


def _write(target: Path, chunks: Iterator[bytes]) -> None:
    """Written under a temporary name and renamed only when every chunk checked out."""
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        with tmp.open("wb") as f:
            os.chmod(tmp, 0o600)
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
