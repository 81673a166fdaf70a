"""Disclosure packages end to end: real cameras upload real sealed clips (one household in
standard mode, one end-to-end), an approved request is written to the database, the
package is built, read back from the store and checked offline by the verifier and the
CLI; then each way of tampering with it is caught by the check that should catch it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from doorwarden.accounts.models import User
from doorwarden.agencies.documents import document_key
from doorwarden.agencies.models import DocumentKind, LegalDocument
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.service import Actor, record
from doorwarden.audit.tags import Tag
from doorwarden.audit.tasks import run_append
from doorwarden.cli.app import app as cli
from doorwarden.clips.models import Clip
from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.keys import RecipientKey, SigningKey, b64d, b64e
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.formats.checkpoint import log_key, sign_note
from doorwarden.formats.package_files import clip_paths, sig_text
from doorwarden.legal.disclosure.models import Package, PackageClip, PackageKind
from doorwarden.legal.disclosure.service import TMP_DIR, build_package, package_key
from doorwarden.legal.models import (
    LegalRequest,
    Outcome,
    RequestKind,
    RequestStatus,
    ScopeItem,
    ScopeKind,
    Target,
)
from doorwarden.roles import Role
from doorwarden.verify.package import PackageOptions, PackageReport, verify_package
from tests.factories import CTX, Camera, Factory
from tests.sealed_clips import Sealed, chain_of, seal_clip, upload

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
CASE = "CASE-2026-0042"
WINDOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC), datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@dataclass
class World:
    app: FastAPI
    admin: User
    reviewer: User
    home: uuid.UUID
    e2e_home: uuid.UUID
    camera: Camera  # standard mode
    e2e_camera: Camera
    sealed: list[Sealed]
    e2e_sealed: list[Sealed]
    agency: uuid.UUID


async def _e2e_household(factory: Factory) -> tuple[uuid.UUID, Camera, list[Sealed]]:
    owner = await factory.user()
    home = await factory.household(owner, name="Private Home")
    camera = await factory.camera(owner, home, name="Porch")
    browser = await factory.signed_in(owner)
    member = RecipientKey.generate()
    put = await browser.put("/api/v1/account/e2e-key", json={"public_key": b64e(member.public)})
    assert put.status_code == 200, put.text
    switched = await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    assert switched.status_code == 200, switched.text
    state = (await camera.client.get("/api/v1/device")).json()
    members = [b64d(r["public_key"], what="k", length=32) for r in state["recipients"]]
    sealed: list[Sealed] = []
    previous = "0" * 64
    for sequence in range(2):
        clip = seal_clip(
            camera.id, camera.key, members, sequence, previous, size=60_000, mode="e2e"
        )
        done = await upload(camera.client, clip)
        assert done.status_code == 200 and done.json()["status"] == "verified", done.text
        sealed.append(clip)
        previous = clip.digest
    return home, camera, sealed


async def make_world(factory: Factory, app: FastAPI) -> World:
    admin = await factory.user(Role.operator_admin)
    reviewer = await factory.user(Role.legal_reviewer)
    owner = await factory.user()
    home = await factory.household(owner, name="The Smiths")
    camera = await factory.camera(owner, home)
    sealed = chain_of(camera.id, camera.key, camera.recipients, 5)
    for clip in sealed:
        done = await upload(camera.client, clip)
        assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    e2e_home, e2e_camera, e2e_sealed = await _e2e_household(factory)
    agency = await factory.agency(admin, "Springfield Police")
    return World(
        app, admin, reviewer, home, e2e_home, camera, e2e_camera, sealed, e2e_sealed, agency
    )


async def approved_request(
    world: World, targets: list[Camera], kind: RequestKind = RequestKind.warrant
) -> uuid.UUID:
    """An approved request for `targets`, its document, scope, targets and audit trail,
    written directly (the request API is another module's)."""
    store = world.app.state.clip_store
    async with world.app.state.sessionmaker.begin() as db:
        document = LegalDocument(
            id=uuid.uuid4(), agency_id=world.agency, kind=DocumentKind.warrant,
            sha256=hashlib.sha256(PDF).hexdigest(), size=len(PDF), pages=1,
            filename="warrant.pdf", object_key="",
        )  # fmt: skip
        document.object_key = document_key(world.agency, document.id)
        await store.put(document.object_key, PDF)
        db.add(document)
        request = LegalRequest(
            id=uuid.uuid4(), agency_id=world.agency, kind=kind, status=RequestStatus.approved,
            outcome=Outcome.approved, case_number=CASE, window_start=WINDOW[0],
            window_end=WINDOW[1], approved_start=WINDOW[0], approved_end=WINDOW[1],
            issuing_court="Springfield District Court", judge="Judge Dredd",
            signed_on=date(2026, 11, 24), expires_at=WINDOW[1] + timedelta(days=10),
            document_id=document.id, justification="burglary at 12 Evergreen Terrace",
            reviewer_id=world.reviewer.id, decided_at=WINDOW[1], decision_reason="in order",
            checklist={"signed": {"ok": True, "detail": "signed by the judge"}},
        )  # fmt: skip
        db.add(request)
        await db.flush()
        for camera in targets:
            scope = ScopeItem(
                id=uuid.uuid4(), request_id=request.id, kind=ScopeKind.household,
                value=str(camera.household_id), matched=1,
            )  # fmt: skip
            db.add(scope)
            await db.flush()
            db.add(
                Target(
                    request_id=request.id,
                    device_id=camera.id,
                    household_id=camera.household_id,
                    scope_item_id=scope.id,
                    approved=True,
                )
            )
        for tag in (Tag.legal_request_submit, Tag.legal_request_approve):
            record(
                db, tag=tag, actor=Actor(world.reviewer.id, "legal_reviewer"), ctx=CTX,
                agency_id=world.agency, target_type="legal_request", target_id=request.id,
            )  # fmt: skip
        return request.id


async def build(
    world: World,
    request_id: uuid.UUID,
    picks: list[tuple[Camera, int]],
    kind: PackageKind = PackageKind.content,
    households: list[uuid.UUID] | None = None,
) -> Package:
    app = world.app
    await run_append(app.state.sessionmaker, app.state.log_signer)  # so custody has a checkpoint
    async with app.state.sessionmaker.begin() as db:
        request = await db.get(LegalRequest, request_id)
        assert request is not None
        clips = []
        for camera, sequence in picks:
            clip = await db.scalar(
                select(Clip).where(Clip.device_id == camera.id, Clip.sequence == sequence)
            )
            assert clip is not None
            clips.append(clip)
        return await build_package(
            db, request=request, kind=kind, clips=clips, subscriber_households=households or [],
            store=app.state.clip_store, signer=app.state.log_signer,
            settings=app.state.settings, actor=Actor(world.reviewer.id, "legal_reviewer"),
            ctx=CTX, now=app.state.clock.now(),
        )  # fmt: skip


async def fetch(app: FastAPI, package: Package, path: Path) -> Path:
    data = await app.state.clip_store.get_range(package.object_key, 0, package.size)
    await asyncio.to_thread(path.write_bytes, data)
    return path


def pinned(app: FastAPI) -> PackageOptions:
    return PackageOptions(instance_key=app.state.log_signer.key)


def failures(report: PackageReport) -> set[tuple[str, ...]]:
    """(check, code) of each failed package check, (entry, check, code) of each clip's."""
    found: set[tuple[str, ...]] = {
        (c.name, c.code or "") for c in report.checks if c.status == "fail"
    }
    for clip in report.clips:
        found |= {(clip.entry, c.name, c.code or "") for c in clip.checks if c.status == "fail"}
    return found


def entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def rewrite(path: Path, out: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def run_cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.fixture
async def world(factory: Factory, app: FastAPI) -> World:
    return await make_world(factory, app)


@dataclass
class Built:
    world: World
    package: Package
    zip: Path
    other: Path  # a second package, of another request
    clip_entry: str  # the manifest entry of standard-mode clip 1


@pytest.fixture
async def built(world: World, tmp_path: Path) -> Built:
    camera, porch = world.camera, world.e2e_camera
    first = await approved_request(world, [camera, porch])
    # Clip 2 is outside the window (not picked): the package shows a gap, not a failure.
    picks = [(camera, 0), (camera, 1), (camera, 3), (camera, 4), (porch, 0), (porch, 1)]
    package = await build(world, first, picks)
    second = await approved_request(world, [camera])
    other = await build(world, second, [(camera, 2)])
    return Built(
        world,
        package,
        await fetch(world.app, package, tmp_path / "package.zip"),
        await fetch(world.app, other, tmp_path / "other.zip"),
        clip_paths(str(camera.id), 1)[0],
    )


async def test_a_package_is_built_stored_recorded_and_verifies(built: Built) -> None:
    world, package = built.world, built.package
    app = world.app
    assert (package.clips, package.clips_without_content) == (6, 2)
    assert (package.devices, package.households, package.kind) == (2, 2, PackageKind.content)
    assert package.object_key == package_key(world.agency, package.id)
    assert package.expires_at == app.state.clock.now() + timedelta(days=14)
    assert package.sha256 == hashlib.sha256(built.zip.read_bytes()).hexdigest()
    assert not list((app.state.settings.data_dir / TMP_DIR).iterdir())  # the temp file went
    async with app.state.sessionmaker() as db:
        rows = (
            await db.scalars(select(PackageClip).where(PackageClip.package_id == package.id))
        ).all()
        assert sorted((r.device_id == world.camera.id, r.content_available) for r in rows) == [
            (False, False), (False, False), (True, True), (True, True), (True, True), (True, True),
        ]  # fmt: skip
        event = await db.scalar(
            select(AuditEvent).where(AuditEvent.tag == str(Tag.legal_package_create))
            .where(AuditEvent.target_id == str(package.id))
        )  # fmt: skip
    assert event is not None and event.target_type == "legal_package"
    assert event.agency_id == world.agency and event.actor_user_id == world.reviewer.id
    assert {"clips": 6, "clips_without_content": 2, "devices": 2, "households": 2}.items() <= (
        event.extra.items()
    )
    assert event.extra["sha256"] == package.sha256

    files = entries(built.zip)
    with zipfile.ZipFile(built.zip) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
    body = files["package.json"]
    meta = json.loads(body)
    assert body == canonical_json(meta)
    assert (meta["format"], meta["version"], meta["package"]) == (
        "doorwarden-disclosure-package", 1, str(package.id),
    )  # fmt: skip
    assert meta["instance_key"] == app.state.log_signer.key.verifier()
    assert {f["path"] for f in meta["files"]} == set(files) - {"package.json", "package.sig"}
    assert sig_text(str(package.id), hashlib.sha256(body).hexdigest()) in files["package.sig"]
    e2e = [c for c in meta["clips"] if c["device"] == str(world.e2e_camera.id)]
    assert {c["content"] for c in e2e} == {"not_available_to_provider"}
    keys = json.loads(files["keys.json"])
    assert sorted(keys) == [f"{world.camera.id}/{s:012d}" for s in (0, 1, 3, 4)]
    # Byte-exact as the camera sealed them.
    sealed = world.sealed[3]
    manifest, clip, thumb = clip_paths(str(world.camera.id), 3)
    assert (files[manifest], files[clip], files[thumb]) == (
        sealed.manifest, sealed.ciphertext, sealed.thumbnail,
    )  # fmt: skip
    assert f"documents/warrant-{hashlib.sha256(PDF).hexdigest()[:12]}.pdf" in files
    request = json.loads(files["request.json"])
    assert request["case_number"] == CASE and request["decision"]["approved_cameras"] == 2
    assert "The Smiths" not in files["request.json"].decode()
    assert "1 Door Lane" not in files["request.json"].decode()
    custody = json.loads(files["custody.json"])
    assert [e["tag"] for e in custody["events"]] == [
        "legal:request:submit",
        "legal:request:approve",
    ]
    assert all(isinstance(e["log_index"], int) for e in custody["events"])
    assert all(c["received"]["tag"] == "clip:receive" for c in custody["clips"])
    assert custody["log"]["checkpoint"].startswith(app.state.log_signer.origin + "\n")

    report = verify_package(built.zip, pinned(app))
    assert report.ok, failures(report)
    assert report.key_source == "pinned" and not report.warnings
    assert {c.name: c.status for c in report.checks}["custody"] == "pass"
    (device,) = [d for d in report.devices if d.device == str(world.camera.id)]
    assert device.ok and [g.detail for g in device.gaps] == ["missing sequence 2..2"]
    for clip in report.clips:
        status = {c.name: (c.status, c.code) for c in clip.checks}
        if clip.device == str(world.e2e_camera.id):
            assert status["content"] == ("skip", "not_available_to_provider")
            assert "decrypt" not in status and status["clip"] == ("pass", None)
        else:
            assert status["decrypt"] == ("pass", None)
            assert status["decrypt_thumbnail"] == ("pass", None)

    code, out = run_cli(built.zip, "--instance-key", app.state.log_signer.key.verifier())
    assert code == 0, out
    assert "✓ signature: Ed25519, instance key pinned" in out
    assert "content -" in out and "not_available_to_provider" in out
    assert "not in the package (expected, only a window): 2..2" in out
    assert out.splitlines()[-1] == "PASSED"
    code, out = run_cli(built.zip, "--json")
    assert code == 0 and json.loads(out)["instance_key_source"] == "package"
    assert "self-asserted" in json.loads(out)["warnings"][0]


async def test_extract_writes_the_verified_plaintext(built: Built, tmp_path: Path) -> None:
    world = built.world
    out_dir = tmp_path / "for-the-agency"
    key = world.app.state.log_signer.key.verifier()
    code, out = run_cli(built.zip, "--instance-key", key, "--extract", out_dir)
    assert code == 0, out
    written = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    device = str(world.camera.id)
    assert written == sorted(
        f"{device}/{s:012d}.{ext}" for s in (0, 1, 3, 4) for ext in ("mp4", "jpg")
    )
    for sequence in (0, 1, 3, 4):
        sealed = world.sealed[sequence]
        signed = SignedManifest.parse(json.loads(sealed.manifest)).manifest
        data = (out_dir / device / f"{sequence:012d}.mp4").read_bytes()
        assert hashlib.sha256(data).hexdigest() == signed.sha256 and data == sealed.plaintext
        assert (out_dir / device / f"{sequence:012d}.jpg").read_bytes().startswith(b"\xff\xd8")
    # A package that fails writes nothing.
    files = entries(built.zip)
    files[built.clip_entry.replace("manifest.json", "clip.dws")] = flip(
        files[built.clip_entry.replace("manifest.json", "clip.dws")], 5000
    )
    bad = rewrite(built.zip, tmp_path / "bad.zip", files)
    code, out = run_cli(bad, "--instance-key", key, "--extract", tmp_path / "nothing")
    assert code == 1 and "Nothing extracted: the package did not verify" in out
    assert not (tmp_path / "nothing").exists()


def _tampered(built: Built, case: str, tmp_path: Path) -> tuple[Path, PackageOptions]:
    app = built.world.app
    files = entries(built.zip)
    manifest = built.clip_entry
    clip, thumb = (
        manifest.replace("manifest.json", "clip.dws"),
        manifest.replace("manifest.json", "thumb.dws"),
    )
    options = pinned(app)
    if case == "clip":
        files[clip] = flip(files[clip], 1000)
    elif case == "thumbnail":
        files[thumb] = flip(files[thumb], 40)
    elif case == "package.json":
        files["package.json"] = files["package.json"].replace(CASE.encode(), b"CASE-2026-0043")
    elif case == "request.json":
        files["request.json"] = files["request.json"].replace(CASE.encode(), b"CASE-2026-0043")
    elif case == "removed":
        del files[clip]
    elif case == "added":
        files["notes.txt"] = b"added later"
    elif case == "swapped":  # clip 2 of the other package, put in place of clip 1
        theirs = entries(built.other)
        (their_manifest,) = [n for n in theirs if n.endswith(".manifest.json")]
        for suffix, mine in (("manifest.json", manifest), ("clip.dws", clip), ("thumb.dws", thumb)):
            files[mine] = theirs[their_manifest.replace("manifest.json", suffix)]
    elif case == "wrong key":
        keys = json.loads(files["keys.json"])
        keys[manifest.removeprefix("clips/").removesuffix(".manifest.json")] = b64e(os.urandom(32))
        files["keys.json"] = json.dumps(keys).encode()
    elif case == "other signature":
        files["package.sig"] = entries(built.other)["package.sig"]
    elif case == "wrong instance key":
        options = PackageOptions(instance_key=log_key(b"another instance", "x.example/log")[0])
    elif case == "manifest replaced":  # re-signed by a key that is not the camera's
        signed = SignedManifest.parse(json.loads(files[manifest]))
        forged = seal_clip(
            signed.manifest.device, SigningKey.generate(), [RecipientKey.generate().public], 1,
            signed.manifest.previous, size=50_000,
        )  # fmt: skip
        files[manifest] = forged.manifest
    return rewrite(built.zip, tmp_path / "tampered.zip", files), options


CASES = {
    "clip": {("files", "hash_mismatch"), ("@", "clip", "hash_mismatch")},
    "thumbnail": {("files", "hash_mismatch"), ("@", "thumbnail", "hash_mismatch")},
    "package.json": {("package_json", "hash_mismatch")},
    "request.json": {("files", "hash_mismatch")},
    "removed": {("files", "missing"), ("@", "clip", "missing")},
    "added": {("files", "unlisted_file")},
    "swapped": {("files", "hash_mismatch"), ("@", "sequence", "sequence_mismatch")},
    "wrong key": {("files", "hash_mismatch"), ("@", "decrypt", "wrong_clip_key")},
    "other signature": {("package_id", "wrong_package"), ("package_json", "hash_mismatch")},
    "wrong instance key": {("signature", "bad_signature")},
    "manifest replaced": {("files", "hash_mismatch"), ("@", "signature", "bad_signature")},
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_tampering_is_caught_by_its_check(built: Built, tmp_path: Path, case: str) -> None:
    path, options = _tampered(built, case, tmp_path)
    report = verify_package(path, options)
    assert not report.ok
    expected = {tuple(built.clip_entry if p == "@" else p for p in e) for e in CASES[case]}
    found = failures(report)
    assert expected <= found, found
    if case in ("package.json", "request.json", "added", "wrong instance key"):
        assert not any(len(f) == 3 for f in found), found  # the clips themselves are fine
    key = options.instance_key.verifier() if options.instance_key else ""
    code, out = run_cli(path, "--instance-key", key)
    assert code == 1 and out.splitlines()[-1] == "FAILED"


async def test_a_damaged_zip_entry_is_reported(built: Built, tmp_path: Path) -> None:
    data = built.zip.read_bytes()
    clip = built.world.sealed[1].ciphertext
    at = data.index(clip[:64]) + 3000  # inside the stored clip
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(flip(data, at))
    report = verify_package(damaged, pinned(built.world.app))
    assert not report.ok
    assert any("damaged in the ZIP" in e for e in report.errors), report.errors
    assert ("files", "hash_mismatch") in failures(report)


async def test_a_re_signed_forgery_passes_only_on_its_own_say_so(
    built: Built, tmp_path: Path
) -> None:
    """Someone drops a clip, fixes the lists and signs with their own key, naming it in
    package.json: consistent, so only pinning the instance's key exposes it."""
    files = entries(built.zip)
    meta = json.loads(files["package.json"])
    dropped = built.clip_entry
    stem = dropped.removesuffix(".manifest.json")
    for suffix in (".manifest.json", ".clip.dws", ".thumb.dws"):
        del files[stem + suffix]
    keys = json.loads(files["keys.json"])
    del keys[stem.removeprefix("clips/")]
    files["keys.json"] = json.dumps(keys).encode()
    custody = json.loads(files["custody.json"])
    custody["log"]["checkpoint"] = None  # signed by the instance: it would give the forger away
    files["custody.json"] = json.dumps(custody).encode()
    meta["clips"] = [c for c in meta["clips"] if c["manifest"] != dropped]
    meta["files"] = [
        {"path": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
        for n, d in files.items()
        if n not in ("package.json", "package.sig")
    ]
    forger, private = log_key(b"forger", meta["instance"])
    meta["instance_key"] = forger.verifier()
    files["package.json"] = canonical_json(meta)
    text = sig_text(meta["package"], hashlib.sha256(files["package.json"]).hexdigest())
    files["package.sig"] = sign_note(text, forger.name, private)
    forged = rewrite(built.zip, tmp_path / "forged.zip", files)

    alone = verify_package(forged, PackageOptions())
    assert alone.ok, failures(alone)
    assert alone.key_source == "package" and "self-asserted" in alone.warnings[0]
    report = verify_package(forged, pinned(built.world.app))
    assert ("signature", "bad_signature") in failures(report)
    assert any("another instance key" in w for w in report.warnings)


async def test_a_subscriber_package_holds_subscribers_and_no_clip(
    world: World, tmp_path: Path
) -> None:
    request = await approved_request(world, [world.camera], RequestKind.subpoena)
    with pytest.raises(ValueError, match="no clip"):
        await build(world, request, [(world.camera, 0)], PackageKind.subscriber)
    package = await build(world, request, [], PackageKind.subscriber, [world.camera.household_id])
    assert (package.clips, package.households, package.devices) == (0, 1, 0)
    path = await fetch(world.app, package, tmp_path / "subpoena.zip")
    files = entries(path)
    assert not [n for n in files if n.startswith("clips/")]
    assert "keys.json" not in files and "devices.json" not in files
    (household,) = json.loads(files["subscribers.json"])
    assert (household["name"], household["address"]) == ("The Smiths", "1 Door Lane")
    assert set(household) == {"household", "name", "address", "created_at", "members"}
    (member,) = household["members"]
    # Name and account dates only: no e-mail address, no role, nothing else.
    assert set(member) == {"display_name", "account_created_at"}
    assert "@" not in files["subscribers.json"].decode()
    assert json.loads(files["package.json"])["clips"] == []
    report = verify_package(path, pinned(world.app))
    assert report.ok, failures(report)
    assert report.subscriber_households == 1
    # A subscriber package with a clip slipped in is refused.
    content = entries(
        await fetch(world.app, await build(world, request, [(world.camera, 0)]), tmp_path / "c.zip")
    )
    files.update({n: d for n, d in content.items() if n.startswith("clips/")})
    mixed = verify_package(rewrite(path, tmp_path / "mixed.zip", files), pinned(world.app))
    assert ("kind", "clips_in_subscriber_package") in failures(mixed)


def _verify_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doorwarden", "verify", *args],
        capture_output=True, text=True, encoding="utf-8", timeout=120, check=False,
    )  # fmt: skip


async def test_the_verifier_runs_as_a_process(built: Built) -> None:
    key = built.world.app.state.log_signer.key.verifier()
    done = await asyncio.to_thread(_verify_process, str(built.zip), "--instance-key", key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "PASSED" and done.stderr == ""
    bad = await asyncio.to_thread(_verify_process, str(built.zip), "--instance-key", "junk")
    assert bad.returncode == 2 and "--instance-key" in bad.stderr


def test_a_zip_that_is_not_a_package_is_a_usage_error(tmp_path: Path) -> None:
    export = tmp_path / "export.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("000000000000.manifest.json", b"{}")
    export.write_bytes(buffer.getvalue())
    code, out = run_cli(export)
    assert code == 2 and "not a disclosure package" in out
    code, out = run_cli(export, "--device-key", f"cam={b64e(SigningKey.generate().public)}")
    assert code == 2 and "for sealed clip folders" in out
    code, out = run_cli(tmp_path, "--instance-key", "x")
    assert code == 2 and "for disclosure packages" in out
