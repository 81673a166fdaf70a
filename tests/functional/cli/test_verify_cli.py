"""`doorwarden verify`: through Typer's runner on the main app, and once as a process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorwarden.cli.app import app
from doorwarden.crypto.keys import RecipientKey, SigningKey, b64e
from doorwarden.crypto.manifest import GENESIS
from tests.unit.verify.test_clips import DEVICE, Export, flip, make_export, seal_clip, write_clip


@pytest.fixture
def export(tmp_path: Path) -> Export:
    return make_export(tmp_path / "export")


def pin(export: Export) -> list[str]:
    return ["--device-key", f"{DEVICE}={b64e(export.device.public)}"]


def verify(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_an_intact_export_passes(export: Export) -> None:
    code, out = verify(export.directory, *pin(export))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("✓ 000000000000  front-door  2026-11-25T10:00:00.000+00:00  12.5 s")
    assert "motion, person  manifest ✓  sequence ✓  signature ✓  clip ✓  thumbnail ✓" in lines[0]
    assert "key pinned on the command line" in out
    assert "✓ chain unbroken from 0 to 3" in out
    assert "4 clip(s) from 1 device(s): 4 passed, 0 failed" in out
    assert lines[-1] == "PASSED"


def test_a_tampered_export_fails_naming_the_reason(export: Export) -> None:
    flip(export.paths(1).clip, 2000)
    for path in (export.paths(2).manifest, export.paths(2).clip, export.paths(2).thumbnail):
        path.unlink()
    code, out = verify(export.directory, *pin(export))
    assert code == 1
    assert "✗ 000000000001" in out and "clip ✗" in out
    assert "✗ clip: hash_mismatch: the ciphertext is not the one the manifest describes" in out
    assert "✗ gap at 3: missing sequence 2..2" in out
    assert out.splitlines()[-1] == "FAILED"


def test_the_in_directory_key_is_flagged(export: Export) -> None:
    code, out = verify(export.directory)
    assert code == 0
    assert "key from devices.json in the directory, which an attacker who altered" in out
    assert "1 warning(s)" in out


def test_device_key_from_a_json_file_and_a_wrong_one(export: Export, tmp_path: Path) -> None:
    key_file = tmp_path / "camera.json"
    key_file.write_text(json.dumps({"device": DEVICE, "public_key": b64e(export.device.public)}))
    assert verify(export.directory, "--device-key", key_file)[0] == 0
    wrong = f"{DEVICE}={b64e(SigningKey.generate().public)}"
    code, out = verify(export.directory, "--device-key", wrong)
    assert code == 1
    assert "✗ signature: bad_signature: the signature does not match the device key" in out


def test_decrypting_with_a_key_file(export: Export, tmp_path: Path) -> None:
    raw, text = tmp_path / "household.key", tmp_path / "household.b64"
    raw.write_bytes(export.household.private_bytes())
    text.write_text(b64e(export.household.private_bytes()) + "\n")
    for key in (raw, text):
        code, out = verify(export.directory, *pin(export), "--key", key, "--require-decrypt")
        assert code == 0, out
        assert "decrypt ✓" in out
    stranger = tmp_path / "stranger.key"
    stranger.write_bytes(RecipientKey.generate().private_bytes())
    code, out = verify(export.directory, *pin(export), "--key", stranger)
    assert code == 0
    assert "- decrypt: not_a_recipient: this key is not one of the clip's recipients" in out
    assert verify(export.directory, *pin(export), "--key", stranger, "--require-decrypt")[0] == 1


def test_json_report(export: Export) -> None:
    flip(export.paths(3).thumbnail, 0)
    code, out = verify(export.directory, *pin(export), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert report["totals"] == {
        "clips": 4, "clips_passed": 3, "clips_failed": 1, "devices": 1, "chain_problems": 0,
        "warnings": 0, "errors": 0,
    }  # fmt: skip
    clip = report["clips"][3]
    assert (clip["sequence"], clip["device"], clip["labels"]) == (3, DEVICE, ["motion", "person"])
    assert {"name": "thumbnail", "status": "fail", "code": "hash_mismatch"}.items() <= next(
        c for c in clip["checks"] if c["name"] == "thumbnail"
    ).items()
    assert report["devices"][0]["key_source"] == "pinned"


def test_an_empty_directory(tmp_path: Path) -> None:
    code, out = verify(tmp_path)
    assert code == 1
    assert "no sealed clips found" in out


def test_strings_from_the_files_cannot_drive_the_terminal(tmp_path: Path) -> None:
    device, household = SigningKey.generate(), RecipientKey.generate()
    evil = "cam\x1b[2J[red]x[/red]\u202e"
    signed, clip, thumb = seal_clip(device, household, 0, GENESIS, device_id=evil)
    write_clip(tmp_path, signed, clip, thumb)
    code, out = verify(tmp_path)
    assert code == 1  # no key for that device
    assert "\x1b" not in out and "\u202e" not in out
    assert "cam\\x1b[2J[red]x[/red]\\u202e" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["{missing}"], "does not exist"),
        (["{dir}", "--device-key", "front-door=abc"], "expected 32 bytes"),
        (["{dir}", "--device-key", "no-such-file.json"], "cannot read"),
        (["{dir}", "--key", "{dir}/000000000000.manifest.json"], "--key"),
        (["{dir}", "--key", "{missing}"], "cannot read"),
        (["{dir}", "--require-decrypt"], "--require-decrypt needs --key"),
        (["{dir}/000000000000.clip.dws"], "neither a directory nor"),
    ],
)
def test_usage_errors_exit_2(export: Export, args: list[str], says: str) -> None:
    given = [a.format(dir=export.directory, missing=export.directory / "nope") for a in args]
    code, out = verify(*given)
    assert code == 2
    assert out.startswith("error: ") and says in out


def test_as_a_process(export: Export) -> None:
    flip(export.paths(0).clip, 100)
    done = subprocess.run(
        [sys.executable, "-m", "doorwarden", "verify", str(export.directory), *pin(export)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "✗ clip: hash_mismatch" in done.stdout
    assert done.stderr == ""
