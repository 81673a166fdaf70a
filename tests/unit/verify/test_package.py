"""The disclosure-package verifier on ZIPs written by hand, with the real crypto: one made
as the format says passes, and a hostile one (path traversal, duplicate names, links,
too many entries or bytes) is refused without writing anything outside its temp folder;
a file that is not a ZIP, or a ZIP that is not a package, is a usage error."""

from __future__ import annotations

import hashlib
import json
import stat
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.keys import RecipientKey, SigningKey, b64e
from doorwarden.crypto.manifest import GENESIS
from doorwarden.crypto.seal import clip_key
from doorwarden.formats.checkpoint import NoteKey, log_key, sign_note
from doorwarden.formats.package_files import clip_paths, clip_stem, sig_text
from doorwarden.verify.clips import UsageError
from doorwarden.verify.package import PackageOptions, PackageReport, verify_package
from tests.unit.verify.test_clips import seal_clip

ORIGIN = "door.example.org/log"
DEVICE = "6f1c1a9e-0000-4000-8000-000000000001"


@dataclass
class Made:
    files: dict[str, bytes]  # every entry but package.json and package.sig
    meta: dict[str, object]
    key: NoteKey
    private: bytes

    def write(
        self, path: Path, *, extra: Sequence[tuple[zipfile.ZipInfo | str, bytes]] = ()
    ) -> Path:
        """The package, signed, with `extra` entries added after signing."""
        meta = dict(self.meta)
        meta["files"] = [
            {"path": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for n, d in sorted(self.files.items())
        ]
        body = canonical_json(meta)
        sig = sign_note(
            sig_text(str(meta["package"]), hashlib.sha256(body).hexdigest()), self.key.name,
            self.private,
        )  # fmt: skip
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in [*self.files.items(), ("package.json", body), ("package.sig", sig)]:
                archive.writestr(name, data)
            for info, data in extra:
                archive.writestr(info, data)
        return path


def make_package(clips: int = 3) -> Made:
    camera, household = SigningKey.generate(), RecipientKey.generate()
    key, private = log_key(b"unit-test instance", ORIGIN)
    files: dict[str, bytes] = {
        "README.txt": b"a package\n",
        "request.json": json.dumps({"id": "req-1", "agency": {"id": "ag-1"}}).encode(),
        "custody.json": json.dumps({"events": [], "log": {"checkpoint": None}}).encode(),
        "devices.json": json.dumps(
            [{"device": DEVICE, "public_key": b64e(camera.public)}]
        ).encode(),
    }
    listed, keys, previous = [], {}, GENESIS
    for sequence in range(clips):
        signed, clip, thumb = seal_clip(camera, household, sequence, previous, device_id=DEVICE)
        previous = signed.manifest.digest
        manifest_name, clip_name, thumb_name = clip_paths(DEVICE, sequence)
        files |= {manifest_name: signed.to_bytes(), clip_name: clip, thumb_name: thumb}
        keys[clip_stem(DEVICE, sequence)] = b64e(clip_key(signed, camera.public, household))
        m = signed.manifest
        entry = {
            "device": DEVICE, "sequence": sequence, "start": m.start_utc, "end": m.end_utc,
            "duration_ms": m.duration_ms, "labels": list(m.labels), "content": "available",
            "manifest": manifest_name, "clip": clip_name, "thumbnail": thumb_name,
        }  # fmt: skip
        listed.append(entry)
    files["keys.json"] = json.dumps(keys).encode()
    meta: dict[str, object] = {
        "format": "doorwarden-disclosure-package", "version": 1, "package": str(uuid.uuid4()),
        "kind": "content", "provisional": False, "instance": ORIGIN,
        "instance_key": key.verifier(), "request": "req-1",
        "agency": {"id": "ag-1", "name": "Police"}, "case_number": "C-1",
        "created_at": "2026-11-25T12:00:00Z", "clips": listed,
    }  # fmt: skip
    return Made(files, meta, key, private)


@pytest.fixture
def made() -> Made:
    return make_package()


def check(path: Path, made: Made, **options: int) -> PackageReport:
    return verify_package(path, PackageOptions(instance_key=made.key, **options))


def test_a_package_made_by_the_format_passes(made: Made, tmp_path: Path) -> None:
    report = check(made.write(tmp_path / "p.zip"), made)
    assert report.ok, report.to_json()
    assert report.to_json()["totals"]["clips_passed"] == 3


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/evil.txt", "clips/../../evil.txt", "a\\..\\evil.txt", "C:/evil",
             "clips/./x", ".hidden", "clips//x", "x\x1b[2J"],
)  # fmt: skip
def test_entries_that_could_escape_are_refused(made: Made, tmp_path: Path, name: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    path = made.write(work / "p.zip", extra=[(zipfile.ZipInfo(name), b"payload")])
    report = check(path, made)
    assert not report.ok
    assert any("refused" in e for e in report.errors), report.errors
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["p.zip", "work"]  # nothing written
    assert not Path("/evil.txt").exists()


def test_duplicate_names_are_refused(made: Made, tmp_path: Path) -> None:
    manifest = clip_paths(DEVICE, 1)[1]
    with pytest.warns(UserWarning, match="Duplicate name"):  # zipfile warns when writing one
        path = made.write(tmp_path / "p.zip", extra=[(manifest, b"another clip")])
    report = check(path, made)
    assert not report.ok
    assert any("2 entries with this name" in e for e in report.errors), report.errors
    # Neither copy is used: the clip is missing rather than one of two versions.
    (clip,) = [c for c in report.clips if c.sequence == 1]
    assert {c.name: c.code for c in clip.checks if c.status == "fail"}["clip"] == "missing"


def test_a_symbolic_link_is_refused(made: Made, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("clips/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    report = check(made.write(tmp_path / "p.zip", extra=[(link, b"/etc/passwd")]), made)
    assert any("symbolic link" in e for e in report.errors), report.errors
    assert not report.ok


def test_too_many_entries_or_bytes_are_refused_whole(made: Made, tmp_path: Path) -> None:
    path = made.write(tmp_path / "p.zip")
    count = len(made.files) + 2
    many = check(path, made, max_entries=count - 1)
    assert not many.ok and many.errors == [f"refused: {count} entries, more than {count - 1}"]
    assert not many.clips and not many.checks
    assert check(path, made, max_entries=count).ok
    big = check(path, made, max_bytes=10_000)
    assert not big.ok and big.errors[0].startswith("refused:") and "bytes" in big.errors[0]


def test_not_a_zip_and_not_a_package(made: Made, tmp_path: Path) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    for path, message in (
        (text, "not a ZIP file"),
        (tmp_path / "missing.zip", "does not exist"),
        (tmp_path, "not a regular file"),
    ):
        with pytest.raises(UsageError, match=message):
            check(path, made)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("package.json", b'{"name": "left-pad"}')
    with pytest.raises(UsageError, match="not a disclosure package"):
        check(other, made)
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("000000000000.manifest.json", b"{}")
    with pytest.raises(UsageError, match="not a disclosure package"):
        check(other, made)


def test_a_package_json_of_another_format_beside_a_signature_fails(
    made: Made, tmp_path: Path
) -> None:
    made.meta["format"] = "something-else"
    report = check(made.write(tmp_path / "p.zip"), made)
    assert {(c.name, c.code) for c in report.checks if c.status == "fail"} == {
        ("format", "malformed")
    }


def test_clip_files_no_listing_explains_and_keys_for_no_clip_fail(
    made: Made, tmp_path: Path
) -> None:
    made.files["clips/x/000000000009.clip.dws"] = b"stray"
    keys = json.loads(made.files["keys.json"])
    keys["x/000000000009"] = b64e(b"k" * 32)
    made.files["keys.json"] = json.dumps(keys).encode()
    report = check(made.write(tmp_path / "p.zip"), made)
    failed = {(c.name, c.code) for c in report.checks if c.status == "fail"}
    assert failed == {("clips", "orphan_file"), ("keys", "orphan_key")}


def test_a_clip_marked_available_without_a_key_fails(made: Made, tmp_path: Path) -> None:
    keys = json.loads(made.files["keys.json"])
    del keys[clip_stem(DEVICE, 2)]
    made.files["keys.json"] = json.dumps(keys).encode()
    report = check(made.write(tmp_path / "p.zip"), made)
    (clip,) = [c for c in report.clips if c.sequence == 2]
    assert {c.name: c.code for c in clip.checks if c.status == "fail"} == {"content": "no_clip_key"}


def test_a_broken_link_between_consecutive_clips_fails_but_a_gap_does_not(
    tmp_path: Path,
) -> None:
    made = make_package(4)
    for suffix_path in clip_paths(DEVICE, 1):
        del made.files[suffix_path]
    keys = json.loads(made.files["keys.json"])
    del keys[clip_stem(DEVICE, 1)]
    made.files["keys.json"] = json.dumps(keys).encode()
    clips = made.meta["clips"]
    assert isinstance(clips, list)
    made.meta["clips"] = [c for c in clips if c["sequence"] != 1]
    gap = check(made.write(tmp_path / "gap.zip"), made)
    assert gap.ok, gap.to_json()
    assert [g.detail for g in gap.devices[0].gaps] == ["missing sequence 1..1"]
    # Clip 3 from another camera's chain under this device: signed by another key, and it
    # does not link to clip 2.
    other = make_package(4)
    for mine, theirs in zip(clip_paths(DEVICE, 3), clip_paths(DEVICE, 3), strict=True):
        made.files[mine] = other.files[theirs]
    report = check(made.write(tmp_path / "forked.zip"), made)
    assert [p.kind for p in report.devices[0].problems] == ["broken_link"]
