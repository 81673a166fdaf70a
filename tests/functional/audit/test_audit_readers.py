"""What each reader of the audit trail is shown (issue 16, items 6 and 9).

* Operators and auditors read the instance's whole trail, but never a legal request's
  scope: no household, camera or clip of a warrant, sealed or not, in the JSON API or on
  the page, and no household filter that answers for them (policy rule 7).
* A household reads its own trail in full, except where staff and the system acted:
  their client address and user agent are withheld, in the activity API, on the page,
  and in the log entries it downloads to check (which still verify).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from doorwarden.audit import log
from doorwarden.audit.log_models import LogLeaf
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.audit.tasks import run_append
from doorwarden.cli.app import app as cli
from doorwarden.clips.models import Clip
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.crypto.canonical import canonical_json
from doorwarden.roles import Role
from tests.factories import Factory
from tests.legal_flow import (
    Cast,
    Home,
    at,
    cast,
    decide,
    device_item,
    file_warrant,
    file_with_documents,
    home,
    iso,
    warrant_details,
)
from tests.live_server import running_server
from tests.pdfs import pdf_bytes

STAFF_ADDRESS = "192.0.2.201"
STAFF_AGENT = "ReviewerBrowser/9.9 (desk 4, legal team)"
OPERATOR_ADDRESS = "192.0.2.202"
OPERATOR_AGENT = "OperatorConsole/1.0"


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    # The reviewer works from a desk of their own: an address and a browser to look for.
    await made.reviewer_client.aclose()
    made.reviewer_client = await factory.signed_in(made.reviewer, address=STAFF_ADDRESS)
    made.reviewer_client.headers["user-agent"] = STAFF_AGENT
    yield made
    await made.close()


async def clip_ids(app: FastAPI, household_id: uuid.UUID) -> list[str]:
    async with app.state.sessionmaker() as db:
        query = select(Clip.id).where(Clip.household_id == household_id)
        return [str(c) for c in (await db.scalars(query)).all()]


async def sealed_warrant(people: Cast, elm: Home, clock: ManualClock) -> str:
    """A warrant for Elm's camera under a 30-day non-disclosure order, approved."""
    details = warrant_details(
        [device_item(elm.camera.id)], nondisclosure_until=iso(clock.now() + timedelta(days=30))
    )
    filed = await file_with_documents(
        people.officer_client, people.agency_id, "warrants", details,
        document=pdf_bytes("warrant under seal"), nondisclosure=pdf_bytes("order"),
    )  # fmt: skip
    assert filed.status_code == 201, filed.text
    rid: str = filed.json()["id"]
    approved = await decide(
        people.reviewer_client, rid, "approve",
        {"attest": ["signed", "nondisclosure"], "note": "Elm Street's camera, 9 to 12 only."},
    )  # fmt: skip
    assert approved.status_code == 200, approved.text
    return rid


def secrets_of(elm: Home, clips: list[str]) -> list[str]:
    """What names the scope: the household, its camera and the clips disclosed."""
    return [str(elm.household_id), str(elm.camera.id), *clips]


async def test_operators_and_auditors_see_no_scope_of_a_sealed_warrant(
    people: Cast, factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    elm = await home(factory, "12 Elm Street")
    await sealed_warrant(people, elm, clock)
    clips = await clip_ids(app, elm.household_id)
    assert clips
    auditor = await factory.signed_in(await factory.user(Role.auditor))
    for reader in (people.admin_client, auditor):
        response = await reader.get("/api/v1/audit/events", params={"limit": 500})
        assert response.status_code == 200, response.text
        legal = [e for e in response.json() if e["tag"].startswith("legal:")]
        tags = {e["tag"] for e in legal}
        # The events are there: that a request was filed, decided and disclosed is theirs
        # to audit; whom and what it named is not.
        assert {"legal:request:submit", "legal:request:approve", "legal:disclose"} <= tags
        assert "legal:notice:delay" in tags
        text = json.dumps(legal)
        for secret in secrets_of(elm, clips):
            assert secret not in text, (secret, text)
        assert "9 to 12 only" not in text  # the reviewer's reason describes the scope
        assert '"window"' not in text and iso(at(9)) not in text  # the approved window
        assert all(e["household_id"] is None for e in legal)
        # Asking by household is no oracle: no legal event answers for Elm's id.
        by_home = await reader.get(
            "/api/v1/audit/events", params={"household_id": str(elm.household_id)}
        )
        assert by_home.status_code == 200, by_home.text
        assert not [e for e in by_home.json() if e["tag"].startswith("legal:")], by_home.text
        # Nor the page (it shows ids cut to their first 12 characters).
        page = await reader.get("/audit", params={"tag_prefix": "legal:"})
        assert page.status_code == 200, page.text
        assert "legal:disclose" in page.text
        for secret in secrets_of(elm, clips):
            assert secret[:12] not in page.text, secret
    await auditor.aclose()
    await elm.client.aclose()


async def test_the_household_sees_its_own_legal_entries_in_full(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    elm = await home(factory, "12 Elm Street")
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    assert filed.status_code == 201, filed.text
    approved = await decide(
        people.reviewer_client, filed.json()["id"], "approve", {"attest": ["signed"]}
    )
    assert approved.status_code == 200, approved.text
    clips = await clip_ids(app, elm.household_id)
    trail = await elm.client.get(f"/api/v1/households/{elm.household_id}/audit-events")
    assert trail.status_code == 200, trail.text
    [disclosed] = [e for e in trail.json() if e["tag"] == "legal:disclose"]
    assert disclosed["household_id"] == str(elm.household_id)
    assert sorted(disclosed["extra"]["clips"]) == sorted(clips)
    # The reviewer's address and browser are not the household's to see.
    assert disclosed["client_address"] is None and disclosed["user_agent"] is None
    # An operator asking by household id learns nothing of the warrant: its events do not
    # answer (blanked, they would still say that this home was named).
    by_home = await people.admin_client.get(
        "/api/v1/audit/events", params={"household_id": str(elm.household_id), "limit": 500}
    )
    assert by_home.status_code == 200, by_home.text
    assert by_home.json() and not [e for e in by_home.json() if e["tag"].startswith("legal:")]
    await elm.client.aclose()


@pytest.fixture
async def url(settings: Settings) -> AsyncIterator[str]:
    with running_server(settings) as base:
        yield base


async def test_residents_never_see_where_staff_acted_from(
    people: Cast, factory: Factory, app: FastAPI, url: str, tmp_path: Path
) -> None:
    elm = await home(factory, "12 Elm Street")
    # The resident's own change, from their own browser: theirs to see.
    renamed = await elm.client.patch(
        f"/api/v1/households/{elm.household_id}",
        json={"name": "Elm"},
        headers={"user-agent": "ResidentPhone/2.0"},
    )
    assert renamed.status_code == 200, renamed.text
    # Staff act on the household: a reviewer through the API (and the system on the same
    # request: the notices), and an operator (as an operator's tool records it).
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    assert filed.status_code == 201, filed.text
    approved = await decide(
        people.reviewer_client, filed.json()["id"], "approve", {"attest": ["signed"]}
    )
    assert approved.status_code == 200, approved.text
    async with app.state.sessionmaker.begin() as db:
        record(
            db, tag=Tag.household_update, actor=Actor(people.admin.id, str(Role.operator_admin)),
            ctx=RequestContext(client_address=OPERATOR_ADDRESS, user_agent=OPERATOR_AGENT),
            household_id=elm.household_id, target_type="household", target_id=elm.household_id,
            extra={"fields": ["plan"]},
        )  # fmt: skip
    staff_marks = (STAFF_ADDRESS, STAFF_AGENT, OPERATOR_ADDRESS, OPERATOR_AGENT)

    trail = await elm.client.get(f"/api/v1/households/{elm.household_id}/audit-events")
    assert trail.status_code == 200, trail.text
    events: list[dict[str, Any]] = trail.json()
    by_role = {(e["tag"], e["actor_role"]) for e in events}
    assert ("household:update", "operator_admin") in by_role
    assert ("legal:disclose", "legal_reviewer") in by_role and (
        "legal:notice:deliver",
        "system",
    ) in by_role
    for mark in staff_marks:
        assert mark not in trail.text, mark
    staff = [e for e in events if e["actor_role"] not in ("resident", "device")]
    assert staff and all(e["client_address"] is None and e["user_agent"] is None for e in staff)
    # Members' own entries keep theirs.
    [own] = [e for e in events if e["tag"] == "household:update" and e["actor_role"] == "resident"]
    assert own["client_address"] == "198.51.100.7" and own["user_agent"] == "ResidentPhone/2.0"

    page = await elm.client.get(f"/households/{elm.household_id}/audit")
    assert page.status_code == 200, page.text
    assert "198.51.100.7" in page.text
    for mark in staff_marks:
        assert mark not in page.text, mark

    # The log entries the household downloads to check: nothing of staff's either, and
    # every one still checks out against the signed log.
    await run_append(app.state.sessionmaker, app.state.log_signer)
    entries = await elm.client.get(
        f"/api/v1/households/{elm.household_id}/log-entries", params={"limit": 1000}
    )
    assert entries.status_code == 200, entries.text
    for mark in staff_marks:
        assert mark not in entries.text, mark
    assert len(entries.json()) == len(events)
    saved = tmp_path / "entries.json"
    saved.write_text(entries.text)
    args = [
        "verify-log",
        url,
        "--key",
        app.state.log_signer.key.verifier(),
        "--entries",
        str(saved),
    ]
    ok = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert ok.exit_code == 0, ok.output
    await elm.client.aclose()


async def test_a_household_cannot_brute_force_a_staff_address_from_its_entries(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    """Withholding the address is not enough if the salt and the other private fields are
    served: an IPv4 address is 2^32 guesses. What a household is given for a staff entry
    must not commit to the address with a secret the household holds."""
    elm = await home(factory, "12 Elm Street")
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    approved = await decide(
        people.reviewer_client, filed.json()["id"], "approve", {"attest": ["signed"]}
    )
    assert approved.status_code == 200, approved.text
    await run_append(app.state.sessionmaker, app.state.log_signer)
    entries = (await elm.client.get(f"/api/v1/households/{elm.household_id}/log-entries")).json()
    [disclosed] = [e for e in entries if json.loads(e["leaf"])["tag"] == "legal:disclose"]
    private = json.loads(disclosed["private"])
    # The guess that would confirm the address if it were committed to with the salt the
    # household holds: put the real address back and recompute. It must not match.
    guess = {k: v for k, v in private.items() if k != "network"} | {
        "client_address": STAFF_ADDRESS,
        "user_agent": STAFF_AGENT,
    }
    text = json.dumps(guess, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(bytes.fromhex(disclosed["salt"]) + text.encode()).hexdigest()
    assert digest != json.loads(disclosed["leaf"])["commitment"]
    await elm.client.aclose()


async def test_entries_logged_before_the_address_was_hashed_apart_withhold_staffs(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    """Leaves of version 1 committed to the address itself, under the salt a household
    is given: a staff entry of that version is not handed out (its salt would let the
    address be guessed); the household's own still are, and still check out."""
    elm = await home(factory, "12 Elm Street")
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    approved = await decide(
        people.reviewer_client, filed.json()["id"], "approve", {"attest": ["signed"]}
    )
    assert approved.status_code == 200, approved.text
    await run_append(app.state.sessionmaker, app.state.log_signer)
    async with app.state.sessionmaker.begin() as db:  # as the server before this wrote them
        rows = (
            await db.execute(
                select(LogLeaf, AuditEvent).join(AuditEvent, AuditEvent.id == LogLeaf.event_id)
            )
        ).all()
        for leaf, event in rows:
            fields = json.loads(leaf.leaf) | {"v": 1}
            fields["commitment"] = hashlib.sha256(
                bytes.fromhex(leaf.salt) + log.private_json(event, leaf.salt, 1)
            ).hexdigest()
            leaf.leaf = canonical_json(fields).decode()
        roles = {e.id: e.actor_role for _, e in rows if e.household_id == elm.household_id}
    entries = await elm.client.get(f"/api/v1/households/{elm.household_id}/log-entries")
    assert entries.status_code == 200, entries.text
    served = {uuid.UUID(json.loads(e["leaf"])["event"]): e for e in entries.json()}
    assert set(served) == {i for i, role in roles.items() if role in ("resident", "device")}
    assert set(roles.values()) - {"resident", "device"}  # staff entries existed
    for mark in (STAFF_ADDRESS, STAFF_AGENT):
        assert mark not in entries.text
    for entry in served.values():
        digest = hashlib.sha256(bytes.fromhex(entry["salt"]) + entry["private"].encode())
        assert digest.hexdigest() == json.loads(entry["leaf"])["commitment"]
    await elm.client.aclose()
