"""The whole legal path through the HTTP API, each step as its actor takes it: an operator
registers an agency (with its jurisdiction) whose officer is refused until the operator
verifies it and records its municipal approval; the officer files a warrant (a PDF) for
two homes' cameras; a reviewer starts review and narrows it to one camera and a shorter
window, with a reason; the officer downloads the package, which the real `doorwarden
verify` process checks offline against the pinned instance key and which holds exactly
the clips of the narrowed scope; each resident is told what left about their home; and
the audit trail and the public log hold every step.

Factories only make the people and pair the cameras; clips are real sealed clips uploaded
through the camera API. The log appender, a background job on a server, is run by hand
(the test settings switch its loop off) before the decision, so the package carries a
signed checkpoint, and at the end, so the public log can be read.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from doorwarden.accounts.models import User
from doorwarden.audit.tasks import run_append
from doorwarden.clock import ManualClock
from doorwarden.crypto.manifest import GENESIS
from doorwarden.formats import merkle
from doorwarden.formats.checkpoint import NoteKey, open_checkpoint
from doorwarden.roles import Role
from tests.factories import TESTSHIRE, Camera, Factory, assert_error, make_client
from tests.legal_flow import file_with_documents
from tests.pdfs import pdf_bytes
from tests.sealed_clips import seal_clip, upload

REASON = "Only the front-door camera of 12 Elm Street, at the hour of the burglary."


@dataclass
class Uploaded:
    camera: Camera
    sequence: int
    clip_id: str
    start: datetime


@dataclass
class Home:
    household_id: str
    owner: httpx.AsyncClient
    clips: list[Uploaded] = field(default_factory=list)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def camera_with_clips(
    factory: Factory, owner: User, household_id: str, name: str, starts: list[datetime]
) -> list[Uploaded]:
    """A camera paired to the household that uploads one sealed clip (12 s) per start."""
    camera = await factory.camera(owner, uuid.UUID(household_id), name)
    made, previous = [], GENESIS
    for sequence, start in enumerate(starts):
        sealed = seal_clip(
            camera.id, camera.key, camera.recipients, sequence, previous, size=30_000,
            start=start.isoformat(timespec="milliseconds"),
        )  # fmt: skip
        done = await upload(camera.client, sealed)
        assert done.status_code == 200 and done.json()["status"] == "verified", done.text
        made.append(Uploaded(camera, sequence, done.json()["clip_id"], start))
        previous = sealed.digest
    return made


async def household(factory: Factory, address: str) -> tuple[User, Home]:
    owner = await factory.user()
    client = await factory.signed_in(owner)
    created = await client.post(
        "/api/v1/households",
        json={"name": f"Home at {address}", "address": address, "latitude": 51.5,
              "longitude": -0.1, "time_zone": "UTC"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return owner, Home(created.json()["id"], client)


def run_verifier(*args: str) -> subprocess.CompletedProcess[str]:
    """`doorwarden verify ...` as a separate process: the installed script, or the module."""
    script = Path(sys.executable).with_name("doorwarden")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "doorwarden"]
    return subprocess.run(
        [*command, "verify", *args],
        capture_output=True, text=True, encoding="utf-8", timeout=120, check=False,
    )  # fmt: skip


async def test_a_warrant_from_agency_registration_to_the_public_log(
    factory: Factory, app: FastAPI, clock: ManualClock, tmp_path: Path
) -> None:
    # Footage from two days ago; a warrant signed yesterday, good for a month.
    day = (clock.now() - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    window = (day + timedelta(hours=9), day + timedelta(hours=12))
    narrowed = (day + timedelta(hours=10), day + timedelta(hours=11))

    # The homes: Elm Street with two cameras, Oak Road with one.
    elm_owner, elm = await household(factory, "12 Elm Street")
    oak_owner, oak = await household(factory, "3 Oak Road")
    front_starts = [
        day + timedelta(hours=9, minutes=30),  # before the narrowed window
        day + timedelta(hours=10, seconds=-6),  # ends at 10:00:06: overlaps it
        day + timedelta(hours=10, minutes=15),
        day + timedelta(hours=10, minutes=45),
        day + timedelta(hours=11),  # starts as it ends: outside
        day + timedelta(hours=11, minutes=30),
    ]
    front = await camera_with_clips(
        factory, elm_owner, elm.household_id, "Front door", front_starts
    )
    back = await camera_with_clips(
        factory, elm_owner, elm.household_id, "Back garden", [day + timedelta(hours=10, minutes=30)]
    )
    oak.clips = await camera_with_clips(
        factory, oak_owner, oak.household_id, "Porch", [day + timedelta(hours=10, minutes=20)]
    )
    elm.clips = front + back
    in_scope = front[1:4]
    front_id = str(front[0].camera.id)

    # -- 1. the agency, refused until verified and approved ---------------------------
    admin_user = await factory.user(Role.operator_admin)
    admin = await factory.signed_in(admin_user)
    registered = await admin.post(
        "/api/v1/agencies",
        json={"name": "Testshire Police", "jurisdiction": "Testshire",
              "jurisdiction_area": TESTSHIRE},
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    agency = registered.json()
    agency_id = agency["id"]
    assert (agency["standing"], agency["verified_at"], agency["has_jurisdiction_area"]) == (
        "unverified", None, True,
    )  # fmt: skip
    officer_user = await factory.user(Role.agency_officer, agency_id=uuid.UUID(agency_id))
    officer = await factory.signed_in(officer_user)
    listed = (await admin.get(f"/api/v1/agencies/{agency_id}")).json()
    assert [o["id"] for o in listed["officers"]] == [str(officer_user.id)]

    case = f"CR-{uuid.uuid4().hex[:8]}"
    warrant_pdf = pdf_bytes(f"Search warrant {case}")
    details = {
        "case_number": case,
        "issuing_court": "Testshire Crown Court",
        "judge": "Judge Able",
        "signed_on": (clock.now() - timedelta(days=1)).date().isoformat(),
        "expires_at": (clock.now() + timedelta(days=30)).isoformat(),
        "scope": [
            {"kind": "household", "id": elm.household_id},
            {"kind": "household", "id": oak.household_id},
        ],
        "window_start": window[0].isoformat(),
        "window_end": window[1].isoformat(),
        "justification": "Burglary at 12 Elm Street on that morning.",
    }

    async def file() -> httpx.Response:
        return await file_with_documents(
            officer, uuid.UUID(agency_id), "warrants", details, document=warrant_pdf
        )

    assert_error(await file(), 403, "agency_unverified")
    verified = await admin.post(f"/api/v1/agencies/{agency_id}/verify")
    assert verified.status_code == 200, verified.text
    assert verified.json()["standing"] == "no_approval" and verified.json()["verified_at"]
    assert_error(await file(), 403, "agency_no_approval")
    # The refusals left nothing behind: no request, and (below) the same PDF files fine.
    mine = await officer.get(f"/api/v1/agencies/{agency_id}/requests")
    assert mine.status_code == 200 and mine.json() == [], mine.text

    policy_pdf = pdf_bytes(f"Use policy of {agency_id}")
    approval = {
        "approving_body": "Testshire Borough Council",
        "approved_on": clock.now().date().isoformat(),
        "reference": "Ordinance 2026-14",
        "expires_on": None,
    }
    # A second operator records it: the one who verified may not (policy rule 8).
    same = await admin.post(
        f"/api/v1/agencies/{agency_id}/approvals",
        data={"details": json.dumps(approval)},
        files={"policy_document": ("policy.pdf", policy_pdf, "application/pdf")},
    )
    assert_error(same, 409, "separation_of_duties")
    second = await factory.signed_in(await factory.user(Role.operator_admin))
    recorded = await second.post(
        f"/api/v1/agencies/{agency_id}/approvals",
        data={"details": json.dumps(approval)},
        files={"policy_document": ("policy.pdf", policy_pdf, "application/pdf")},
    )
    assert recorded.status_code == 201, recorded.text
    approved = recorded.json()
    assert (approved["agency_id"], approved["approving_body"], approved["reference"]) == (
        agency_id, "Testshire Borough Council", "Ordinance 2026-14",
    )  # fmt: skip
    assert approved["approved_on"] == approval["approved_on"] and approved["revoked_at"] is None
    async with make_client(app) as anonymous:
        public_policy = await anonymous.get(approved["policy_url"])
        assert public_policy.status_code == 200 and public_policy.content == policy_pdf
    assert (await admin.get(f"/api/v1/agencies/{agency_id}")).json()["standing"] == "active"

    # -- 2. the warrant ----------------------------------------------------------------
    filed = await file()
    assert filed.status_code == 201, filed.text
    request = filed.json()
    rid = request["id"]
    assert (request["status"], request["agency_id"], request["case_number"]) == (
        "submitted", agency_id, case,
    )  # fmt: skip
    assert sorted(s["value"] for s in request["scope"]) == sorted(
        [elm.household_id, oak.household_id]
    )
    assert request["packages"] == []
    await run_append(app.state.sessionmaker, app.state.log_signer)  # the appender's next run

    # -- 3. review: start, narrow to one camera and an hour, which grants it -----------
    reviewer = await factory.signed_in(await factory.user(Role.legal_reviewer))
    seen = await reviewer.get(f"/api/v1/review/requests/{rid}")
    assert seen.status_code == 200, seen.text
    targets = {(t["device_id"], t["household_id"]) for t in seen.json()["targets"]}
    assert targets == {
        (front_id, elm.household_id),
        (str(back[0].camera.id), elm.household_id),
        (str(oak.clips[0].camera.id), oak.household_id),
    }
    assert seen.json()["attestations_needed"] == ["signed"]
    started = await reviewer.post(f"/api/v1/review/requests/{rid}/start")
    assert started.status_code == 200, started.text
    assert started.json()["request"]["status"] == "in_review"
    narrow = {
        "keep_devices": [front_id],
        "window_start": narrowed[0].isoformat(),
        "window_end": narrowed[1].isoformat(),
        "attest": ["signed"],
        "reason": REASON,
    }
    decided = await reviewer.post(f"/api/v1/review/requests/{rid}/narrow", json=narrow)
    assert decided.status_code == 200, decided.text
    decision = decided.json()
    assert (decision["status"], decision["outcome"], decision["decision_reason"]) == (
        "narrowed", "narrowed", REASON,
    )  # fmt: skip
    assert (moment(decision["approved_start"]), moment(decision["approved_end"])) == narrowed
    [package] = decision["packages"]
    assert (package["kind"], package["provisional"], package["clips"]) == ("content", False, 3)
    assert package["clips_without_content"] == 0
    assert package["download_url"] == f"/api/v1/agencies/{agency_id}/packages/{package['id']}"
    # A narrowing is the grant: there is nothing left to approve.
    again = await reviewer.post(
        f"/api/v1/review/requests/{rid}/approve", json={"attest": ["signed"]}
    )
    assert_error(again, 409, "wrong_state")
    followed = (await officer.get(f"/api/v1/agencies/{agency_id}/requests/{rid}")).json()
    assert (followed["status"], followed["decision_reason"]) == ("narrowed", REASON)
    assert [p["id"] for p in followed["packages"]] == [package["id"]]

    # -- 4. the download, verified offline by the CLI, pinned ---------------------------
    download = await officer.get(package["download_url"])
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/zip"
    digest = hashlib.sha256(download.content).hexdigest()
    assert digest == package["sha256"] == download.headers["x-content-sha256"]
    assert len(download.content) == package["size"]
    saved = tmp_path / "package.zip"
    saved.write_bytes(download.content)
    async with make_client(app) as anonymous:
        instance_key = (await anonymous.get("/api/v1/log/key")).text.strip()
    done = await asyncio.to_thread(run_verifier, str(saved), "--instance-key", instance_key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature: Ed25519, instance key pinned" in done.stdout
    assert done.stdout.splitlines()[-1] == "PASSED" and done.stderr == ""
    as_json = await asyncio.to_thread(
        run_verifier, str(saved), "--instance-key", instance_key, "--json"
    )
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["ok"] and report["instance_key_source"] == "pinned" and not report["warnings"]
    assert (report["package"], report["kind"], report["case_number"]) == (
        package["id"], "content", case,
    )  # fmt: skip
    assert {c["name"]: c["status"] for c in report["checks"]}["custody"] == "pass"
    assert sorted((c["device"], c["sequence"], c["ok"]) for c in report["clips"]) == [
        (front_id, u.sequence, True) for u in in_scope
    ]
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        index = json.loads(archive.read("package.json"))
        names = archive.namelist()
        decision_json = json.loads(archive.read("request.json"))["decision"]
        warrant_entry = f"documents/warrant-{hashlib.sha256(warrant_pdf).hexdigest()[:12]}.pdf"
        assert archive.read(warrant_entry) == warrant_pdf
    assert (index["request"], index["agency"]["id"]) == (rid, agency_id)
    assert [(c["id"], c["device"], c["sequence"]) for c in index["clips"]] == [
        (u.clip_id, front_id, u.sequence) for u in in_scope
    ]
    assert {n.split("/")[1] for n in names if n.startswith("clips/")} == {front_id}
    assert (decision_json["status"], decision_json["approved_cameras"]) == ("narrowed", 1)

    # -- 5. what each home is told ------------------------------------------------------
    elm_view = await elm.owner.get(f"/api/v1/households/{elm.household_id}/legal")
    assert elm_view.status_code == 200, elm_view.text
    [told] = elm_view.json()["requests"]
    assert (told["id"], told["status"], told["outcome"], told["case_number"]) == (
        rid, "narrowed", "narrowed", case,
    )  # fmt: skip
    assert (told["agency"], told["decision_reason"]) == ("Testshire Police", REASON)
    assert (moment(told["window_start"]), moment(told["window_end"])) == narrowed
    assert told["disclosed_clips"] == [u.clip_id for u in in_scope]
    assert told["subscriber_information_disclosed"] is False
    notices = {n["kind"]: n for n in elm_view.json()["notices"]}
    assert sorted(notices) == ["disclosure", "request"]
    assert "3 clip(s)" in notices["disclosure"]["message"]
    kept = {u.clip_id for u in in_scope}
    for clip in elm.clips:
        assert (clip.clip_id in notices["disclosure"]["message"]) == (clip.clip_id in kept)
    assert all(n["request_id"] == rid for n in notices.values())

    oak_view = await oak.owner.get(f"/api/v1/households/{oak.household_id}/legal")
    assert oak_view.status_code == 200, oak_view.text
    [told] = oak_view.json()["requests"]
    assert (told["id"], told["status"], told["disclosed_clips"]) == (rid, "narrowed", [])
    notices = {n["kind"]: n for n in oak_view.json()["notices"]}
    assert sorted(notices) == ["decision", "request"]  # no disclosure notice: none happened
    assert "was narrowed; nothing about your home was disclosed." in notices["decision"]["message"]
    assert f"Reason given: {REASON}" in notices["decision"]["message"]

    # -- 6. the audit trail and the public log -------------------------------------------
    auditor = await factory.signed_in(await factory.user(Role.auditor))
    trail = await auditor.get("/api/v1/audit/events", params={"tag_prefix": "legal:", "limit": 500})
    assert trail.status_code == 200, trail.text
    events = trail.json()
    about_request = {e["tag"]: e for e in events if e["target_id"] == rid}
    assert sorted(about_request) == [
        "legal:request:narrow", "legal:request:review", "legal:request:submit",
    ]  # fmt: skip
    assert about_request["legal:request:submit"]["actor_user_id"] == str(officer_user.id)
    narrow_event = about_request["legal:request:narrow"]
    assert narrow_event["actor_role"] == "legal_reviewer"
    assert (narrow_event["extra"]["cameras"], narrow_event["extra"]["cameras_dropped"]) == (1, 2)
    # The reviewer's reason names homes: staff reading the instance's trail do not get it.
    assert "reason" not in narrow_event["extra"]
    about_package = [e for e in events if e["target_id"] == package["id"]]
    assert sorted(e["tag"] for e in about_package) == [
        "legal:disclose", "legal:package:create", "legal:package:download",
    ]  # fmt: skip
    by_tag = {e["tag"]: e for e in about_package}
    assert by_tag["legal:package:download"]["actor_user_id"] == str(officer_user.id)
    assert by_tag["legal:package:download"]["extra"]["sha256"] == package["sha256"]
    assert by_tag["legal:disclose"]["household_id"] is None
    assert "clips" not in by_tag["legal:disclose"]["extra"]
    own = await elm.owner.get(f"/api/v1/households/{elm.household_id}/audit-events")
    [disclosed] = [e for e in own.json() if e["tag"] == "legal:disclose"]
    assert disclosed["extra"]["clips"] == [u.clip_id for u in in_scope]
    assert all(e["agency_id"] == agency_id for e in [*about_request.values(), *about_package])

    await run_append(app.state.sessionmaker, app.state.log_signer)
    async with make_client(app) as anonymous:
        note = (await anonymous.get("/api/v1/log/checkpoint")).content
        checkpoint = open_checkpoint(note, NoteKey.from_verifier(instance_key))
        body = await anonymous.get("/api/v1/log/entries", params={"end": checkpoint.size})
        leaves = [(e["index"], e["leaf"]) for e in body.json()["entries"]]
        ours = [(i, leaf, json.loads(leaf)) for i, leaf in leaves]
        ours = [x for x in ours if x[2]["target"] in (rid, package["id"])]
        assert sorted(x[2]["tag"] for x in ours) == sorted([*about_request, *by_tag])
        assert {x[2]["household"] for x in ours} == {None}  # the public log names no home
        for index, leaf, _ in ours:
            proof = await anonymous.get(
                "/api/v1/log/proofs/inclusion", params={"index": index, "size": checkpoint.size}
            )
            path = [bytes.fromhex(h) for h in proof.json()["proof"]]
            assert merkle.verify_inclusion(
                merkle.leaf_hash(leaf.encode()), index, checkpoint.size, path, checkpoint.root
            )
    for client in (admin, officer, reviewer, auditor, elm.owner, oak.owner):
        await client.aclose()
