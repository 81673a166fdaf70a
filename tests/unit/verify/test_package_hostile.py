"""A disclosure package is hostile input to whoever verifies it: the verifier checks
package.sig and package.json straight from the ZIP first, then writes only the entries the
signed package.json lists, each up to its listed size. Measured on the temporary folder
itself: a ZIP bomb, a huge entry added after signing, an entry larger than listed and a
package whose signature does not verify each write at most the bytes the package lists
(or nothing), and are refused with a message that says why."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from doorwarden.cli.app import app
from doorwarden.crypto.canonical import canonical_json
from doorwarden.formats.checkpoint import log_key, sign_note
from doorwarden.formats.package_files import sig_text
from doorwarden.verify.package import PackageOptions, PackageReport, verify_package
from tests.unit.verify.test_package import Made, make_package

MIB = 1024 * 1024


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@contextmanager
def temp_peak(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], int]]:
    """Point the verifier's temporary folder into `root` and yield the most bytes it ever
    held at once. Files there only grow until deleted, so sampling just before every
    Path.unlink (a refused entry, a void plaintext) and every shutil.rmtree (the folder's
    removal) sees the peak."""
    peak = [0]
    unlink, rmtree = Path.unlink, shutil.rmtree

    def sample() -> None:
        peak[0] = max(peak[0], tree_bytes(root))

    def measured_unlink(self: Path, missing_ok: bool = False) -> None:
        sample()
        unlink(self, missing_ok=missing_ok)

    def measured_rmtree(*args: Any, **kwargs: Any) -> None:
        sample()
        rmtree(*args, **kwargs)

    root.mkdir()
    monkeypatch.setattr(Path, "unlink", measured_unlink)
    monkeypatch.setattr(shutil, "rmtree", measured_rmtree)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield lambda: max(peak[0], tree_bytes(root))
    monkeypatch.undo()


def bomb(archive: zipfile.ZipFile, name: str, size: int) -> None:
    """An entry of `size` zero bytes, deflated: 200 MiB take about 200 KB."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    block = bytes(MIB)
    with archive.open(info, "w", force_zip64=True) as f:
        for _ in range(size // MIB):
            f.write(block)


def listed_bytes(made: Made) -> int:
    return sum(len(d) for d in made.files.values())


def verify(path: Path, made: Made, root: Path, mp: pytest.MonkeyPatch) -> tuple[PackageReport, int]:
    with temp_peak(root, mp) as peak:
        report = verify_package(path, PackageOptions(instance_key=made.key))
        return report, peak()


def failed(report: PackageReport) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for check in report.checks:
        if check.status == "fail":
            out.setdefault(f"{check.name}:{check.code}", []).append(check.message)
    return out


def test_a_valid_package_verifies_and_writes_only_what_it_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_package()
    report, peak = verify(made.write(tmp_path / "p.zip"), made, tmp_path / "tmp", monkeypatch)
    assert report.ok, report.to_json()
    assert report.to_json()["totals"]["clips_passed"] == 3
    assert 0 < peak <= listed_bytes(made)  # package.json and package.sig stay in memory
    assert not list((tmp_path / "tmp").iterdir())  # and the folder is gone


def test_a_zip_bomb_added_after_signing_is_never_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: a ~200 KB ZIP whose extra entry inflates to 200 MiB."""
    made = make_package()
    path = made.write(tmp_path / "p.zip")
    with zipfile.ZipFile(path, "a") as archive:
        bomb(archive, "clips/zz/000000000000.clip.dws", 200 * MIB)
    assert path.stat().st_size < 400_000
    report, peak = verify(path, made, tmp_path / "tmp", monkeypatch)
    assert peak <= listed_bytes(made), peak
    assert not report.ok
    (message,) = failed(report)["files:unlisted_file"]
    assert "not listed in package.json" in message and "not unpacked" in message


def test_a_huge_stored_entry_added_after_signing_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_package()
    path = made.write(tmp_path / "p.zip")
    with zipfile.ZipFile(path, "a") as archive, archive.open("notes.txt", "w") as f:
        for _ in range(48):
            f.write(b"x" * MIB)
    report, peak = verify(path, made, tmp_path / "tmp", monkeypatch)
    assert peak <= listed_bytes(made), peak
    assert not report.ok
    (message,) = failed(report)["files:unlisted_file"]
    assert message.startswith("'notes.txt' is not listed") and "not unpacked" in message


def test_a_bomb_in_place_of_a_listed_entry_stops_at_its_listed_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """package.json (signed) says README.txt has 10 bytes; the ZIP's README.txt inflates to
    64 MiB: at most 10 bytes of it are ever written, and it is refused."""
    made = make_package()
    path = made.write(tmp_path / "signed.zip")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "p.zip", "w") as out:
        for info in src.infolist():
            if info.filename == "README.txt":
                bomb(out, "README.txt", 64 * MIB)
            else:
                out.writestr(info, src.read(info))
    report, peak = verify(tmp_path / "p.zip", made, tmp_path / "tmp", monkeypatch)
    assert peak <= listed_bytes(made), peak
    assert not report.ok
    assert any(
        e.startswith("entry 'README.txt': larger than the 10 bytes package.json lists")
        and "not unpacked" in e
        for e in report.errors
    ), report.errors
    assert "files:hash_mismatch" in failed(report)


def test_a_signed_listing_of_a_bomb_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sizes in package.json are no guarantee when the signer is the attacker (a forger
    naming their own key, unpinned): a listing of more bytes than the ZIP could hold,
    stored as the format requires, is refused whole before anything is written."""
    made = make_package()
    big, name = 200 * MIB, "documents/warrant-000000000000.pdf"
    zeros = hashlib.sha256()
    for _ in range(big // MIB):
        zeros.update(bytes(MIB))
    meta = dict(made.meta)
    meta["files"] = sorted(
        [
            *({"path": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
              for n, d in made.files.items()),
            {"path": name, "size": big, "sha256": zeros.hexdigest()},
        ],
        key=lambda f: str(f["path"]),
    )  # fmt: skip
    body = canonical_json(meta)
    text = sig_text(str(meta["package"]), hashlib.sha256(body).hexdigest())
    path = tmp_path / "p.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in made.files.items():
            archive.writestr(entry, data)
        bomb(archive, name, big)
        archive.writestr("package.json", body)
        archive.writestr("package.sig", sign_note(text, made.key.name, made.private))
    assert path.stat().st_size < 400_000
    report, peak = verify(path, made, tmp_path / "tmp", monkeypatch)
    assert peak == 0, peak
    assert not report.ok
    assert {c.name: c.status for c in report.checks}["signature"] == "pass"
    assert report.errors and report.errors[0].startswith("refused: package.json lists"), report
    assert "ZIP bomb" in report.errors[0] and "nothing was unpacked" in report.errors[0]


def test_a_package_whose_signature_fails_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a pinned key that did not sign it, package.json is just a claim: nothing in
    the ZIP is written, and the checks that would need its files say so."""
    made = make_package()
    path = made.write(tmp_path / "p.zip")
    other, _ = log_key(b"another instance", "x.example/log")
    with temp_peak(tmp_path / "tmp", monkeypatch) as peak:
        report = verify_package(path, PackageOptions(instance_key=other))
        written = peak()
    assert written == 0, written
    assert not report.ok
    status = {c.name: (c.status, c.code) for c in report.checks}
    assert status["signature"] == ("fail", "bad_signature")
    assert status["files"][0] == "skip" and status["request"][0] == "skip"
    assert not report.clips


def test_the_cli_refuses_a_bomb_with_exit_1(tmp_path: Path) -> None:
    made = make_package()
    path = made.write(tmp_path / "p.zip")
    with zipfile.ZipFile(path, "a") as archive:
        bomb(archive, "bomb.bin", 64 * MIB)
    result = CliRunner().invoke(app, ["verify", str(path), "--instance-key", made.key.verifier()])
    assert result.exit_code == 1, result.output
    assert "'bomb.bin' is not listed in package.json" in result.output
    assert "not unpacked" in result.output
    assert result.output.splitlines()[-1] == "FAILED"


def test_no_room_in_the_temporary_folder_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_package()
    path = made.write(tmp_path / "p.zip")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=1000))
    total = listed_bytes(made)
    with temp_peak(tmp_path / "tmp", monkeypatch) as peak:
        report = verify_package(path, PackageOptions(instance_key=made.key, extract=tmp_path / "x"))
        written = peak()
    assert written == 0, written
    assert report.errors == [
        f"refused: package.json lists {total} bytes of files and needs {2 * total} bytes of "
        "disk; the temporary folder has 1000 bytes free: nothing was unpacked"
    ]
    assert report.not_extracted == "the package did not verify: nothing was written"
    assert not (tmp_path / "x").exists()
