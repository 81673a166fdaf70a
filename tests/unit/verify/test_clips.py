"""doorwarden.verify.clips on real sealed clips: an intact export passes, and each way of
tampering with one is caught and named."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from doorwarden.crypto.keys import RecipientKey, SigningKey, b64e
from doorwarden.crypto.manifest import GENESIS, SignedManifest, sign
from doorwarden.crypto.seal import ClipFacts, ClipSeal
from doorwarden.crypto.stream import HEADER_BYTES, TAG_BYTES
from doorwarden.formats.clip_files import SealedPaths
from doorwarden.verify.clips import BLOCK, KEY_SOURCES, Options, Report, UsageError, verify_path

CHUNK = 1024
CLIP_BYTES = 5 * CHUNK + 100  # every clip the same size, so swapped files match in length
DEVICE = "front-door"


@dataclass
class Export:
    """A directory of sealed clips as `doorwarden verify` finds them, and the keys."""

    directory: Path
    device: SigningKey
    household: RecipientKey
    manifests: list[SignedManifest]

    def paths(self, sequence: int) -> SealedPaths:
        return SealedPaths(self.directory, sequence)

    def pinned(self) -> Options:
        return Options(device_keys={DEVICE: self.device.public})


def seal_clip(
    device: SigningKey,
    household: RecipientKey,
    sequence: int,
    previous: str,
    *,
    device_id: str = DEVICE,
    size: int = CLIP_BYTES,
    chunk_size: int = CHUNK,
) -> tuple[SignedManifest, bytes, bytes]:
    """A signed manifest, the sealed clip and the sealed thumbnail, as the agent makes them."""
    sealer = ClipSeal([household.public], mode="standard", chunk_size=chunk_size)
    data = os.urandom(size)
    clip = b"".join(sealer.encrypt(data[i : i + 700] for i in range(0, size, 700)))
    thumb = sealer.seal_thumbnail(b"\xff\xd8 jpeg " + os.urandom(200))
    facts = ClipFacts(
        device=device_id, sequence=sequence, previous=previous,
        start_utc=f"2026-11-25T10:0{sequence}:00.000+00:00",
        end_utc=f"2026-11-25T10:0{sequence}:12.500+00:00", duration_ms=12_500,
        labels=("motion", "person"), motion_score=137, codec="h264", width=1280, height=720,
    )  # fmt: skip
    return sign(sealer.manifest(facts), device), clip, thumb


def write_clip(directory: Path, signed: SignedManifest, clip: bytes, thumb: bytes) -> None:
    paths = SealedPaths(directory, signed.manifest.sequence)
    paths.clip.write_bytes(clip)
    paths.thumbnail.write_bytes(thumb)
    paths.manifest.write_bytes(signed.to_bytes())  # last, as the agent commits it


def write_devices_json(directory: Path, device: SigningKey, device_id: str = DEVICE) -> None:
    entry = {"device": device_id, "public_key": b64e(device.public)}
    (directory / "devices.json").write_text(json.dumps([entry]))


def make_export(
    directory: Path,
    count: int = 4,
    *,
    device: SigningKey | None = None,
    household: RecipientKey | None = None,
) -> Export:
    directory.mkdir(parents=True, exist_ok=True)
    device = device or SigningKey.generate()
    household = household or RecipientKey.generate()
    manifests, previous = [], GENESIS
    for sequence in range(count):
        signed, clip, thumb = seal_clip(device, household, sequence, previous)
        write_clip(directory, signed, clip, thumb)
        manifests.append(signed)
        previous = signed.manifest.digest
    write_devices_json(directory, device)
    return Export(directory, device, household, manifests)


@pytest.fixture
def export(tmp_path: Path) -> Export:
    return make_export(tmp_path / "export")


def checks(report: Report, sequence: int) -> dict[str, tuple[str, str | None]]:
    """{check name: (status, code)} of one clip."""
    (clip,) = [c for c in report.clips if c.sequence == sequence]
    return {c.name: (c.status, c.code) for c in clip.checks}


def message(report: Report, sequence: int, name: str) -> str:
    (clip,) = [c for c in report.clips if c.sequence == sequence]
    return next(c.message for c in clip.checks if c.name == name)


def failing(report: Report) -> dict[int, dict[str, str | None]]:
    """{sequence: {check: code}} of every failed check."""
    return {
        c.sequence: {k.name: k.code for k in c.checks if k.status == "fail"}
        for c in report.clips
        if not c.ok
    }


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --- intact --------------------------------------------------------------------------------


def test_an_intact_export_passes_with_a_pinned_key(export: Export) -> None:
    report = verify_path(export.directory, export.pinned())
    assert report.ok, report.to_json()
    assert [c.sequence for c in report.clips] == [0, 1, 2, 3]
    assert all(checks(report, 2)[n] == ("pass", None) for n in ("signature", "clip", "thumbnail"))
    (device,) = report.devices
    assert (device.device, device.sequences, device.problems) == (DEVICE, [0, 1, 2, 3], [])
    assert device.key is not None and device.key.source == "pinned"
    assert report.clips[1].labels == ("motion", "person")
    assert report.warnings == []


def test_the_key_from_devices_json_passes_with_a_warning(export: Export) -> None:
    report = verify_path(export.directory, Options())
    assert report.ok
    assert report.devices[0].key is not None and report.devices[0].key.source == "directory"
    assert report.warnings == [f"device {DEVICE}: key {KEY_SOURCES['directory']}"]
    assert "attacker" in report.warnings[0]


def test_decrypting_with_the_household_key(export: Export) -> None:
    options = Options(device_keys={DEVICE: export.device.public}, recipient=export.household)
    report = verify_path(export.directory, options)
    assert report.ok
    assert checks(report, 3)["decrypt"] == ("pass", None)
    assert message(report, 3, "decrypt") == f"{CLIP_BYTES} bytes, plaintext SHA-256 as signed"


def test_a_stranger_key_is_not_a_recipient(export: Export) -> None:
    stranger = RecipientKey.generate()
    report = verify_path(export.directory, Options(recipient=stranger))
    assert report.ok  # the clips are intact; the key is just not one of theirs
    assert checks(report, 0)["decrypt"] == ("skip", "not_a_recipient")
    strict = Options(recipient=stranger, require_decrypt=True)
    report = verify_path(export.directory, strict)
    assert not report.ok
    assert failing(report) == {s: {"decrypt": "not_a_recipient"} for s in range(4)}


def test_one_manifest_file_checks_that_clip(export: Export) -> None:
    report = verify_path(export.paths(2).manifest, export.pinned())
    assert report.ok
    assert [c.sequence for c in report.clips] == [2]


# --- tampering -----------------------------------------------------------------------------


def test_a_flipped_byte_in_a_clip(export: Export) -> None:
    flip(export.paths(1).clip, 3000)
    options = Options(device_keys={DEVICE: export.device.public}, recipient=export.household)
    report = verify_path(export.directory, options)
    assert failing(report) == {1: {"clip": "hash_mismatch", "decrypt": "chunk_tampered"}}
    assert "same size, different bytes" in message(report, 1, "clip")
    assert message(report, 1, "decrypt") == "chunk 2 failed authentication"


def test_a_flipped_byte_in_a_thumbnail(export: Export) -> None:
    flip(export.paths(2).thumbnail, 40)
    report = verify_path(export.directory, export.pinned())
    assert failing(report) == {2: {"thumbnail": "hash_mismatch"}}


def test_a_flipped_byte_in_a_manifest_breaks_its_signature_and_the_link(export: Export) -> None:
    path = export.paths(1).manifest
    text = path.read_bytes()
    assert text.count(b'"person"') == 1
    path.write_bytes(text.replace(b'"person"', b'"Person"'))  # one bit: 0x70 -> 0x50
    report = verify_path(export.directory, export.pinned())
    assert failing(report) == {1: {"signature": "bad_signature"}}
    assert [(p.kind, p.sequence) for p in report.devices[0].problems] == [("broken_link", 2)]


def test_a_truncated_clip(export: Export) -> None:
    path = export.paths(2).clip
    cut = HEADER_BYTES + 2 * (CHUNK + TAG_BYTES)  # at a chunk boundary: no torn chunk
    path.write_bytes(path.read_bytes()[:cut])
    options = Options(device_keys={DEVICE: export.device.public}, recipient=export.household)
    report = verify_path(export.directory, options)
    assert failing(report) == {2: {"clip": "truncated", "decrypt": "truncated"}}
    assert message(report, 2, "clip").startswith(f"{cut} bytes where the manifest names")


def test_a_chunk_reordered(export: Export) -> None:
    path = export.paths(0).clip
    data = path.read_bytes()
    size = CHUNK + TAG_BYTES
    one, two = HEADER_BYTES + size, HEADER_BYTES + 2 * size
    path.write_bytes(data[:one] + data[two : two + size] + data[one:two] + data[two + size :])
    options = Options(device_keys={DEVICE: export.device.public}, recipient=export.household)
    report = verify_path(export.directory, options)
    assert failing(report) == {0: {"clip": "hash_mismatch", "decrypt": "chunk_tampered"}}
    assert message(report, 0, "decrypt") == "chunk 1 failed authentication"


def test_clip_files_swapped_are_named_for_what_they_are(export: Export) -> None:
    one, two = export.paths(1).clip, export.paths(2).clip
    one.rename(export.directory / "swap")
    two.rename(one)
    (export.directory / "swap").rename(two)
    report = verify_path(export.directory, export.pinned())
    assert failing(report) == {1: {"clip": "hash_mismatch"}, 2: {"clip": "hash_mismatch"}}
    assert message(report, 1, "clip").endswith("this file is the clip of 000000000002")
    assert message(report, 2, "clip").endswith("this file is the clip of 000000000001")


def test_a_deleted_clip_leaves_a_gap_in_the_chain(export: Export) -> None:
    paths = export.paths(2)
    for path in (paths.manifest, paths.clip, paths.thumbnail):
        path.unlink()
    report = verify_path(export.directory, export.pinned())
    assert not report.ok
    assert failing(report) == {}  # each clip left is intact: only the chain tells
    (problem,) = report.devices[0].problems
    assert (problem.kind, problem.sequence, problem.detail) == ("gap", 3, "missing sequence 2..2")


def test_a_manifest_forged_with_another_device_key(export: Export) -> None:
    forger = SigningKey.generate()
    previous = export.manifests[1].manifest.digest  # a forger can copy the link...
    signed, clip, thumb = seal_clip(forger, export.household, 2, previous)
    write_clip(export.directory, signed, clip, thumb)
    report = verify_path(export.directory, export.pinned())
    assert failing(report) == {2: {"signature": "bad_signature"}}
    # ...but not make the next clip's link point at the forgery
    assert [(p.kind, p.sequence) for p in report.devices[0].problems] == [("broken_link", 3)]


def test_a_wrong_pinned_device_key(export: Export) -> None:
    other = SigningKey.generate()
    report = verify_path(export.directory, Options(device_keys={DEVICE: other.public}))
    assert failing(report) == {s: {"signature": "bad_signature"} for s in range(4)}
    assert "devices.json names a different key" in report.warnings[0]


def test_a_replaced_devices_json(tmp_path: Path) -> None:
    """Someone re-seals every clip under their own key and writes their key into
    devices.json: only a key pinned from elsewhere catches it."""
    real = SigningKey.generate()
    forged = make_export(tmp_path / "export", device=SigningKey.generate())
    unpinned = verify_path(forged.directory, Options())
    assert unpinned.ok
    assert any("attacker" in w for w in unpinned.warnings)
    pinned = verify_path(forged.directory, Options(device_keys={DEVICE: real.public}))
    assert failing(pinned) == {s: {"signature": "bad_signature"} for s in range(4)}


def test_no_key_for_a_device(export: Export) -> None:
    (export.directory / "devices.json").unlink()
    report = verify_path(export.directory, Options())
    assert failing(report)[0] == {"signature": "no_device_key"}
    assert report.devices[0].key is None


def test_a_manifest_copied_over_another(export: Export) -> None:
    shutil.copyfile(export.paths(1).manifest, export.paths(2).manifest)
    report = verify_path(export.directory, export.pinned())
    wrong = {"sequence": "sequence_mismatch", "clip": "hash_mismatch", "thumbnail": "hash_mismatch"}
    assert failing(report) == {2: wrong}


def test_a_missing_thumbnail_and_an_unsigned_one(export: Export) -> None:
    export.paths(1).thumbnail.unlink()
    signed, clip, _ = seal_clip(
        export.device, export.household, 4, export.manifests[3].manifest.digest
    )
    none = hashlib.sha256(b"").hexdigest()
    no_thumb = sign(
        replace(signed.manifest, thumbnail_size=0, thumbnail_sha256=none), export.device
    )
    write_clip(export.directory, no_thumb, clip, b"planted")
    report = verify_path(export.directory, export.pinned())
    assert failing(report) == {1: {"thumbnail": "missing"}}
    assert checks(report, 4)["thumbnail"] == ("warn", None)


def test_from_start_requires_sequence_zero(export: Export) -> None:
    for path in (export.paths(0).manifest, export.paths(0).clip, export.paths(0).thumbnail):
        path.unlink()  # the agent deletes uploaded clips: a spool rarely starts at 0
    assert verify_path(export.directory, export.pinned()).ok
    strict = Options(device_keys={DEVICE: export.device.public}, from_start=True)
    report = verify_path(export.directory, strict)
    assert [(p.kind, p.sequence) for p in report.devices[0].problems] == [("not_genesis", 1)]


def test_clips_of_two_devices_are_chained_separately(tmp_path: Path) -> None:
    first = make_export(tmp_path / "a", 2)
    garage = SigningKey.generate()  # another camera, numbered on its own, first clip gone
    signed, clip, thumb = seal_clip(garage, first.household, 5, GENESIS, device_id="garage")
    write_clip(first.directory, signed, clip, thumb)
    keys = {DEVICE: first.device.public, "garage": garage.public}
    report = verify_path(first.directory, Options(device_keys=keys))
    assert report.ok
    assert [(d.device, d.sequences) for d in report.devices] == [
        (DEVICE, [0, 1]), ("garage", [5])
    ]  # fmt: skip


# --- robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\x00\xff\xfe junk \x89PNG", id="binary"),
        pytest.param(b'{"manifest": {"version": 1, "dev', id="truncated"),
        pytest.param(b'{"manifest": ' + b"[" * 100_000, id="deep"),
        pytest.param(b'{"manifest": ' + b"9" * 5000 + b"}", id="huge-int"),
        pytest.param(b'{"a": "' + b"x" * (10 * 1024 * 1024) + b'"}', id="10MB"),
        pytest.param(b"[]", id="not-an-object"),
    ],
)
def test_a_bad_manifest_fails_alone(export: Export, content: bytes) -> None:
    export.paths(1).manifest.write_bytes(content)
    report = verify_path(export.directory, export.pinned())
    assert failing(report) == {1: {"manifest": "malformed"}}
    assert [c.sequence for c in report.clips] == [0, 1, 2, 3]
    assert all(report.clips[s].ok for s in (0, 2, 3))


def test_files_that_cannot_be_read(export: Export) -> None:
    export.paths(0).manifest.unlink()
    export.paths(0).manifest.mkdir()
    export.paths(1).clip.unlink()
    os.mkfifo(export.paths(1).clip)  # would block a reader that trusted the name
    export.paths(2).clip.unlink()
    report = verify_path(export.directory, export.pinned())
    assert failing(report) == {
        0: {"manifest": "not_a_file"}, 1: {"clip": "not_a_file"}, 2: {"clip": "missing"},
    }  # fmt: skip


# Run as root, the verifier goes to a child process without root's override of file
# modes (the two capabilities below), so that a mode of 0 binds it as it binds any user.
UNPRIVILEGED = ["--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
IN_CHILD = """
import pickle, sys
from doorwarden.verify.clips import verify_path
directory, options = pickle.load(sys.stdin.buffer)
sys.stdout.buffer.write(pickle.dumps(verify_path(directory, options)))
"""


def verify_unprivileged(directory: Path, options: Options) -> Report:
    if os.geteuid() != 0:
        return verify_path(directory, options)
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "util-linux's setpriv drops root's override of file modes"
    child = subprocess.run(
        [setpriv, *UNPRIVILEGED, sys.executable, "-c", IN_CHILD],
        input=pickle.dumps((directory, options)),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return pickle.loads(child.stdout)  # type: ignore[no-any-return]  # noqa: S301 - ours


def test_a_file_without_read_permission(export: Export) -> None:
    export.paths(3).clip.chmod(0)
    report = verify_unprivileged(export.directory, export.pinned())
    assert failing(report) == {3: {"clip": "unreadable"}}
    assert [c.sequence for c in report.clips] == [0, 1, 2, 3]


def test_an_empty_directory(tmp_path: Path) -> None:
    report = verify_path(tmp_path, Options())
    assert not report.ok
    assert report.errors == ["no sealed clips found"]


def test_an_agent_spool_points_at_its_sealed_directory(tmp_path: Path) -> None:
    make_export(tmp_path / "sealed", 1)
    report = verify_path(tmp_path, Options())
    assert report.errors == [f"no sealed clips found (try {tmp_path / 'sealed'})"]


def test_orphans_and_stray_names_are_warnings(export: Export) -> None:
    (export.directory / "000000000009.clip.dws").write_bytes(b"x")
    (export.directory / "notes.manifest.json").write_text("{}")
    report = verify_path(export.directory, export.pinned())
    assert report.ok
    assert report.warnings == [
        "orphan file 000000000009.clip.dws: no manifest names it",
        "ignored notes.manifest.json: not named <12 digits>.manifest.json",
    ]


@pytest.mark.parametrize("name", ["missing", "clip.manifest.json", "000000000001.clip.dws"])
def test_paths_that_cannot_be_verified(export: Export, name: str) -> None:
    path = export.directory / name
    if name != "missing":
        path.write_text("{}")
    with pytest.raises(UsageError):
        verify_path(path, Options())


def test_a_bad_devices_json_is_a_warning(export: Export) -> None:
    (export.directory / "devices.json").write_text('[{"device": "front-door", "public_key": 1}]')
    report = verify_path(export.directory, export.pinned())
    assert report.ok
    assert report.warnings[0].startswith("devices.json ignored: devices.json[0]:")


def test_clips_are_streamed_not_loaded(tmp_path: Path) -> None:
    device, household = SigningKey.generate(), RecipientKey.generate()
    size = 24 * 1024 * 1024
    signed, clip, thumb = seal_clip(device, household, 0, GENESIS, size=size, chunk_size=256 * 1024)
    write_clip(tmp_path, signed, clip, thumb)
    del clip
    options = Options(device_keys={DEVICE: device.public}, recipient=household)
    tracemalloc.start()
    try:
        report = verify_path(tmp_path, options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok
    # Bounded whatever the clip's size (1 MiB reads, the decryptor's buffers and a few
    # chunks queued for the hashing thread): well under the 24 MiB clip.
    assert peak < 12 * BLOCK, f"peak {peak} bytes for a {size}-byte clip"
