"""The transparency report (transparency/report.py) on the real app: a known history of
legal process made through the API — warrants approved, narrowed, rejected, withdrawn and
pending, an emergency left unratified by the deadline job, a subpoena, a preservation, a
warrant under a non-disclosure order over an end-to-end encrypted home, a community
request to 12 homes, a second agency, a camera programme — then every figure checked in
the JSON, the same figures in the CSV and on the page, the period's edges, bad periods,
and that nothing in any of them names a household, a person or an address."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.accounts.models import User
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.crypto.keys import RecipientKey, b64d, b64e
from doorwarden.crypto.manifest import GENESIS
from doorwarden.households import service as households
from doorwarden.legal.models import Notice
from doorwarden.legal.tasks import run_legal_deadlines
from doorwarden.roles import Role
from doorwarden.transparency.report_figures import csv_safe
from tests.factories import CTX, Factory, assert_error
from tests.legal_flow import (
    Cast,
    Home,
    address_item,
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
from tests.pdfs import pdf_bytes
from tests.sealed_clips import seal_clip, upload

API = "/api/v1/transparency/report"
CSV = API + ".csv"
PAGE = "/transparency/report"
# A fixed "now" after the clips (25 November) and before real time: sessions, warrants'
# expiry (31 January) and the default period (this year to date) all follow from it.
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LNG, LAT = -0.1, 51.5  # where home() puts households
AREA = {
    "type": "Polygon",
    "coordinates": [
        [
            [LNG - 0.008, LAT - 0.005],
            [LNG + 0.008, LAT - 0.005],
            [LNG + 0.008, LAT + 0.005],
            [LNG - 0.008, LAT + 0.005],
            [LNG - 0.008, LAT - 0.005],
        ]
    ],
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One test files a request reaching 3 homes, as was possible before the floor of 5
    (community_min_households), to show how the report hides so few."""
    return settings.model_copy(update={"community_min_households": 0})


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


# -- making the history ------------------------------------------------------------------


async def e2e_home(factory: Factory, address: str) -> Home:
    """A household in end-to-end mode with two clips (10:00 and 10:30) it alone can open."""
    owner = await factory.user()
    async with factory.app.state.sessionmaker.begin() as db:
        household = await households.create_household(
            db,
            owner=owner,
            name=f"Home at {address}",
            address=address,
            latitude=LAT,
            longitude=LNG,
            time_zone="UTC",
            ctx=CTX,
        )
    camera = await factory.camera(owner, household.id)
    made = Home(owner, household.id, address, camera, await factory.signed_in(owner))
    key = RecipientKey.generate()
    put = await made.client.put("/api/v1/account/e2e-key", json={"public_key": b64e(key.public)})
    assert put.status_code == 200, put.text
    mode = await made.client.put(
        f"/api/v1/households/{household.id}/encryption", json={"mode": "e2e"}
    )
    assert mode.status_code == 200, mode.text
    state = (await camera.client.get("/api/v1/device")).json()
    members = [b64d(r["public_key"], what="k", length=32) for r in state["recipients"]]
    previous = GENESIS
    for sequence, hour in enumerate((10.0, 10.5)):
        sealed = seal_clip(
            camera.id,
            camera.key,
            members,
            sequence,
            previous,
            size=30_000,
            start=at(hour).isoformat(timespec="milliseconds"),
            mode="e2e",
        )
        done = await upload(camera.client, sealed)
        assert done.status_code == 200 and done.json()["status"] == "verified", done.text
        previous = sealed.digest
        made.clips.append(sealed)
    return made


def requests_url(agency_id: uuid.UUID, rest: str = "") -> str:
    return f"/api/v1/agencies/{agency_id}/requests{rest}"


async def filed_warrant(client: httpx.AsyncClient, agency_id: uuid.UUID, *scope: Any) -> str:
    response = await file_warrant(client, agency_id, list(scope))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def decided(people: Cast, request_id: str, verb: str, body: dict[str, Any]) -> Any:
    response = await decide(people.reviewer_client, request_id, verb, body)
    assert response.status_code == 200, response.text
    return response.json()


APPROVE = {"attest": ["signed", "nondisclosure"]}


async def clip_ids(made: Home) -> list[str]:
    listed = await made.client.get(f"/api/v1/households/{made.household_id}/clips")
    assert listed.status_code == 200, listed.text
    return sorted(c["id"] for c in listed.json())


@dataclass
class History:
    people: Cast
    other_agency: uuid.UUID
    homes: list[Home]
    users: list[User] = field(default_factory=list)
    approval_reference: str = ""


async def make_history(people: Cast, factory: Factory, app: FastAPI, clock: ManualClock) -> History:
    elm = await home(factory, "12 Elm Street", clip_hours=(10.0, 11.0))
    oak = await home(factory, "3 Oak Road", clip_hours=(10.5,))
    cipher = await e2e_home(factory, "7 Cipher Close")
    birches = [
        await home(factory, f"{n} Birch Lane", clip_hours=(10.0, 11.0)) for n in range(1, 10)
    ]
    homes = [elm, oak, cipher, *birches]  # 12 homes, all in AREA
    a = people.agency_id
    officer = people.officer_client
    other = await factory.agency_in_good_standing(people.admin, "Otherton Police")
    other_officer_user = await factory.user(Role.agency_officer, agency_id=other)
    other_officer = await factory.signed_in(other_officer_user)

    # Warrants of Testshire Police: approved, narrowed, rejected, withdrawn, pending.
    w1 = await filed_warrant(officer, a, device_item(elm.camera.id))
    assert len((await decided(people, w1, "approve", APPROVE))["packages"]) == 1
    w2 = await filed_warrant(officer, a, address_item(elm.address), address_item(oak.address))
    narrowing = {"keep_devices": [str(oak.camera.id)], "reason": "Oak Road only."}
    await decided(people, w2, "narrow", {**APPROVE, **narrowing})
    w3 = await filed_warrant(officer, a, device_item(oak.camera.id))
    await decided(people, w3, "reject", {"reason": "No link to the offence is shown."})
    w4 = await filed_warrant(officer, a, device_item(oak.camera.id))
    withdrawn = await officer.post(requests_url(a, f"/{w4}/withdraw"))
    assert withdrawn.status_code == 200, withdrawn.text
    w5 = await filed_warrant(officer, a, device_item(elm.camera.id))
    started = await people.reviewer_client.post(f"/api/v1/review/requests/{w5}/start")
    assert started.status_code == 200, started.text
    # Under a court's non-disclosure order, over the end-to-end encrypted home.
    sealed = warrant_details(
        [device_item(cipher.camera.id)],
        nondisclosure_until=(clock.now() + timedelta(days=30)).isoformat(),
    )
    w6 = await file_with_documents(
        officer,
        a,
        "warrants",
        sealed,
        document=pdf_bytes("warrant under seal"),
        nondisclosure=pdf_bytes("non-disclosure order"),
    )
    assert w6.status_code == 201, w6.text
    [package] = (await decided(people, w6.json()["id"], "approve", APPROVE))["packages"]
    assert (package["clips"], package["clips_without_content"]) == (2, 2)

    # A subpoena (subscriber information), a preservation (holds), an emergency.
    subpoena = warrant_details([address_item(elm.address)])
    del subpoena["judge"], subpoena["justification"]
    s1 = await file_with_documents(
        officer, a, "subpoenas", subpoena, document=pdf_bytes("subpoena")
    )
    assert s1.status_code == 201, s1.text
    await decided(people, s1.json()["id"], "approve", APPROVE)
    preservation = {
        "case_number": "PR-1",
        "scope": [device_item(elm.camera.id)],
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        "justification": "A warrant for these clips is being sought.",
    }
    p1 = await file_with_documents(officer, a, "preservations", preservation)
    assert p1.status_code == 201, p1.text
    await decided(people, p1.json()["id"], "approve", {})
    emergency = await officer.post(
        requests_url(a, "/emergencies"),
        json={
            "case_number": "EM-1",
            "description": "A child is missing; the camera may show the car that took "
            "her, minutes ago.",
            "attest_imminent_danger": True,
            "scope": [device_item(oak.camera.id)],
            "window_start": iso(at(9)),
            "window_end": iso(at(12)),
        },
    )
    assert emergency.status_code == 201, emergency.text
    [provisional] = (await decided(people, emergency.json()["id"], "approve", {}))["packages"]
    assert provisional["provisional"] is True

    # The other agency: one warrant, approved.
    w7 = await filed_warrant(other_officer, other, device_item(oak.camera.id))
    await decided(people, w7, "approve", APPROVE)

    # A community request reaches all 12 homes; four share 2 + 1 + 1 + 1 clips.
    community = await officer.post(
        requests_url(a, "/community"),
        json={
            "case_number": "CM-1",
            "area": AREA,
            "window_start": iso(at(9)),
            "window_end": iso(at(12)),
            "public_text": "A car was broken into on Birch Lane on the morning of 25 "
            "November; footage of the street may help.",
        },
    )
    assert community.status_code == 201, community.text
    c1 = community.json()["id"]
    for sharer, count in zip(birches[:4], (2, 1, 1, 1), strict=True):
        ids = (await clip_ids(sharer))[:count]
        shared = await sharer.client.post(
            f"/api/v1/households/{sharer.household_id}/community-requests/{c1}/share",
            json={"clip_ids": ids},
        )
        assert shared.status_code == 200, shared.text
    built = await officer.post(requests_url(a, f"/{c1}/packages"))
    assert built.status_code in (200, 201), built.text

    # A programme: three cameras enrolled, one of them removed since (not counted).
    approvals = await people.admin_client.get(f"/api/v1/agencies/{a}/approvals")
    [approval] = approvals.json()
    programme = await people.admin_client.post(
        f"/api/v1/agencies/{a}/programmes",
        json={
            "name": "Safer Doorsteps",
            "kind": "giveaway",
            "funding_source": "Testshire crime-prevention fund",
            "approval_id": approval["id"],
        },
    )
    assert programme.status_code == 201, programme.text
    for made in (elm, oak, birches[8]):
        enrolled = await made.client.put(
            f"/api/v1/households/{made.household_id}/devices/{made.camera.id}/programme",
            json={"programme_id": programme.json()["id"]},
        )
        assert enrolled.status_code == 200, enrolled.text
    removed = await birches[8].client.delete(
        f"/api/v1/households/{birches[8].household_id}/devices/{birches[8].camera.id}"
    )
    assert removed.status_code == 204, removed.text

    # The emergency's proof never comes: past the deadline the job marks it unratified.
    clock.advance(timedelta(hours=app.state.settings.emergency_proof_hours, minutes=1))
    result = await run_legal_deadlines(app.state.sessionmaker, app.state.settings, clock.now())
    assert result.emergencies_unratified == 1
    await other_officer.aclose()
    users = [people.admin, people.reviewer, people.officer, other_officer_user]
    users += [h.owner for h in homes]
    return History(people, other, homes, users, approval["reference"])


# -- reading the three forms -------------------------------------------------------------


async def report_json(client: httpx.AsyncClient, query: str = "") -> dict[str, Any]:
    response = await client.get(API + query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def report_csv(client: httpx.AsyncClient, query: str = "") -> dict[str, str]:
    response = await client.get(CSV + query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["section", "agency", "kind", "measure", "value"]
    assert all(len(row) == 5 for row in rows)
    return {"|".join(row[:4]): row[4] for row in rows[1:]}


class Figures(HTMLParser):
    """data-figure -> (data-value, the text shown) of every figure on the page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, tuple[str, str]] = {}
        self._open: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "data-figure" in values:
            self._open.append((values["data-figure"] or "", values.get("data-value") or "", []))

    def handle_data(self, data: str) -> None:
        for _key, _value, text in self._open:
            text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag in ("td", "dd", "span"):
            key, value, text = self._open.pop()
            self.found[key] = (value, "".join(text).strip())


async def report_page(client: httpx.AsyncClient, query: str = "") -> tuple[str, dict[str, Any]]:
    response = await client.get(PAGE + query)
    assert response.status_code == 200, response.text
    parser = Figures()
    parser.feed(response.text)
    return response.text, parser.found


def kinds(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {row.pop("kind"): row for row in (dict(r) for r in rows)}


def counts(**given: int) -> dict[str, int]:
    zero = dict.fromkeys(
        [
            "total",
            "pending",
            "approved",
            "narrowed",
            "rejected",
            "withdrawn",
            "awaiting_proof",
            "ratified",
            "unratified",
            "open",
            "closed",
        ],
        0,
    )
    return zero | given


def disclosed(**given: int) -> dict[str, int]:
    zero = dict.fromkeys(
        [
            "packages",
            "provisional",
            "clips",
            "clips_without_content",
            "devices",
            "households",
            "requests_with_e2e_content",
            "subscriber_households",
        ],
        0,
    )
    return zero | given


async def notice_oracle(app: FastAPI, first: date, last: date) -> dict[str, int]:
    """The notice figures counted in Python over every notice row."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    async with app.state.sessionmaker() as db:
        notices = (await db.scalars(select(Notice))).all()
    delayed = [n for n in notices if start <= n.created_at < end and n.deliver_after is not None]
    return {
        "delivered": sum(
            1 for n in notices if n.delivered_at is not None and start <= n.delivered_at < end
        ),
        "delayed": len(delayed),
        "delayed_pending": sum(1 for n in delayed if n.delivered_at is None),
    }


# -- the tests ---------------------------------------------------------------------------


async def test_a_known_history_in_json_csv_and_html(
    people: Cast, factory: Factory, app: FastAPI, clock: ManualClock, client: httpx.AsyncClient
) -> None:
    history = await make_history(people, factory, app, clock)
    body = await report_json(client)  # the default period: this year to date
    today = clock.now().date()
    assert body["period"] == {
        "from": "2026-01-01",
        "to": today.isoformat(),
        "start": "2026-01-01T00:00:00Z",
        "end": (today + timedelta(days=1)).isoformat() + "T00:00:00Z",
    }
    assert body["requests_total"] == 11
    assert body["unratified_emergencies"] == 1
    assert kinds(body["requests"]) == {
        "warrant": counts(total=7, pending=1, approved=3, narrowed=1, rejected=1, withdrawn=1),
        "subpoena": counts(total=1, approved=1),
        "preservation": counts(total=1, approved=1),
        "emergency": counts(total=1, approved=1, unratified=1),
        "community": counts(total=1, open=1),
    }
    testshire, otherton = (
        next(a for a in body["agencies"] if a["name"] == name)
        for name in ("Testshire Police", "Otherton Police")
    )
    assert [a["name"] for a in body["agencies"]] == ["Otherton Police", "Testshire Police"]
    assert kinds(testshire["requests"]) == {
        "warrant": counts(total=6, pending=1, approved=2, narrowed=1, rejected=1, withdrawn=1),
        "subpoena": counts(total=1, approved=1),
        "preservation": counts(total=1, approved=1),
        "emergency": counts(total=1, approved=1, unratified=1),
        "community": counts(total=1, open=1),
    }
    assert testshire["flagged"] is True and "EM-1" in testshire["flag_reason"]
    assert (testshire["kind"], testshire["verified"]) == ("police", True)
    # W1 (2 clips), W2 (1), W6 (2, end-to-end), the emergency (1), the subpoena and the
    # community package (5 clips of 4 homes): 7 cameras of 7 homes.
    assert testshire["disclosures"] == disclosed(
        packages=6,
        provisional=1,
        clips=11,
        clips_without_content=2,
        devices=7,
        households=7,
        requests_with_e2e_content=1,
        subscriber_households=1,
    )
    assert kinds(otherton["requests"])["warrant"] == counts(total=1, approved=1)
    assert otherton["flagged"] is False and otherton["flag_reason"] is None
    assert otherton["disclosures"] == disclosed(packages=1, clips=1, devices=1, households=1)

    disclosures = body["disclosures"]
    assert kinds(disclosures.pop("by_kind")) == {
        "content": {"packages": 5, "provisional": 1, "clips": 7, "clips_without_content": 2},
        "subscriber": {"packages": 1, "provisional": 0, "clips": 0, "clips_without_content": 0},
        "community": {"packages": 1, "provisional": 0, "clips": 5, "clips_without_content": 0},
    }
    # Oak Road's camera was disclosed to both agencies: one camera, counted once.
    assert disclosures == disclosed(
        packages=7,
        provisional=1,
        clips=12,
        clips_without_content=2,
        devices=7,
        households=7,
        requests_with_e2e_content=1,
        subscriber_households=1,
    )
    notices = body["notices"]
    # Every delayed notice, by the day its order ends: counts and dates, no household.
    delayed_until = notices.pop("delayed_until")
    assert delayed_until == [{"ends_on": "2026-12-31", "notices": 2}]
    assert notices == await notice_oracle(app, date(2026, 1, 1), today)
    # Each of the e2e home's notices (request, disclosure) waits for the order's end.
    assert notices["delayed"] == notices["delayed_pending"] == 2
    assert notices["delivered"] > 12  # at least one per home asked by the community request
    assert body["holds"] == {"preservations_granted": 1, "clips_held": 2, "clips_held_now": 2}
    assert body["community"] == {
        "requests": 1,
        "households_asked": 12,
        "households_shared": 4,
        "response_rate": 0.3333,
        "clips_shared": 5,
        "min_households_for_rate": 10,
        "min_households_shown": 5,
        "rule": body["community"]["rule"],
    }
    assert "would tell who answered" in body["community"]["rule"]
    assert body["policy"] == {
        "community_requests_enabled": True,
        "require_municipal_approval": True,
        "warrant_max_devices": 10,
        "warrant_max_hours": 72,
        "emergency_max_devices": 3,
        "emergency_max_hours": 24,
        "emergency_proof_hours": 48,
        "preservation_days": 90,
        "community_max_square_miles": 0.5,
        "community_max_hours": 12,
        "community_open_days": 14,
        "package_link_days": 14,
    }
    assert [(a["agency"], a["approving_body"], a["in_force"]) for a in body["approvals"]] == [
        ("Otherton Police", "Testshire Borough Council", True),
        ("Testshire Police", "Testshire Borough Council", True),
    ]
    assert body["approvals"][1]["reference"] == history.approval_reference
    assert body["programmes"] == [
        {
            "agency": "Testshire Police",
            "programme": "Safer Doorsteps",
            "kind": "giveaway",
            "funding_source": "Testshire crime-prevention fund",
            "approving_body": "Testshire Borough Council",
            "approval_reference": history.approval_reference,
            "cameras": 2,  # the removed camera is not counted
            "ended_at": None,
        }
    ]
    assert body["log_checkpoint_url"] == "/api/v1/log/checkpoint"

    # The CSV: the same figures, one per row.
    rows = await report_csv(client)
    assert rows["requests||warrant|approved"] == "3"
    assert rows["requests||emergency|unratified"] == "1"
    assert rows["requests||all|total"] == "11"
    assert rows["agency_requests|Testshire Police|warrant|withdrawn"] == "1"
    assert rows["agency_disclosures|Otherton Police|all|clips"] == "1"
    assert rows["agencies|Testshire Police||flagged"] == "true"
    assert rows["disclosures||all|requests_with_e2e_content"] == "1"
    assert rows["disclosures||content|clips_without_content"] == "2"
    assert rows["community||community|response_rate"] == "0.3333"
    assert rows["holds||preservation|clips_held"] == "2"
    assert rows["policy|||require_municipal_approval"] == "true"
    assert rows["programmes|Testshire Police|Safer Doorsteps|cameras_enrolled"] == "2"
    assert rows["approvals|Testshire Police|" + history.approval_reference + "|in_force"] == "true"
    for kind in body["requests"]:
        for measure, value in kind.items():
            key = f"requests||{kind['kind']}|{measure}"
            if key in rows:
                assert rows[key] == str(value), key
    for measure, value in notices.items():
        assert rows[f"notices|||{measure}"] == str(value)
    for measure, value in disclosures.items():
        assert rows[f"disclosures||all|{measure}"] == str(value)

    # The page: every figure of the CSV, with the same value.
    html, shown = await report_page(client)
    assert {key: value for key, (value, _text) in shown.items()} == rows
    assert shown["requests||warrant|approved"][1] == "3"
    assert shown["community||community|response_rate"][1] == "33.3%"
    assert shown["agencies|Testshire Police||flagged"][1] == "Yes"
    assert (
        html.count("<svg") == 6
    )  # requests, emergencies, agencies, disclosures, notices, community
    assert 'role="img"' in html and "<desc" in html and "style=" not in html
    assert "<script" not in html.split("<main", 1)[1]
    assert "unratified" in html and 'id="unratified-emergencies"' in html
    assert f'href="{API}?from=2026-01-01&amp;to={today}"' in html
    assert f'href="{CSV}?from=2026-01-01&amp;to={today}"' in html
    assert 'href="/api/v1/log/checkpoint"' in html

    # None of the three names a household, a person, a camera or an address.
    texts = [
        (await client.get(API)).text,
        (await client.get(CSV)).text,
        html,
        (await client.get("/api/v1/transparency/coverage")).text,
        (await client.get("/transparency/coverage")).text,
    ]
    secrets = [str(u.id) for u in history.users] + [u.email for u in history.users]
    for made in history.homes:
        secrets += [str(made.household_id), str(made.camera.id), made.address]
        secrets += await clip_ids(made)
    for text in texts:
        for secret in secrets:
            assert secret not in text


async def test_coverage_lists_the_programmes_per_agency(
    people: Cast, factory: Factory, client: httpx.AsyncClient
) -> None:
    elm = await home(factory, "12 Elm Street", clip_hours=())
    [approval] = (
        await people.admin_client.get(f"/api/v1/agencies/{people.agency_id}/approvals")
    ).json()
    made = await people.admin_client.post(
        f"/api/v1/agencies/{people.agency_id}/programmes",
        json={
            "name": "Doorbells for All",
            "kind": "discount",
            "funding_source": "City grant",
            "approval_id": approval["id"],
        },
    )
    assert made.status_code == 201, made.text
    enrolled = await elm.client.put(
        f"/api/v1/households/{elm.household_id}/devices/{elm.camera.id}/programme",
        json={"programme_id": made.json()["id"]},
    )
    assert enrolled.status_code == 200, enrolled.text
    body = (await client.get("/api/v1/transparency/coverage")).json()
    # One camera is far under the cell rule's k, and still counted: it is not a place.
    assert body["features"] == []
    assert body["programmes"] == [
        {
            "agency": "Testshire Police",
            "cameras": 1,
            "programme": "Doorbells for All",
            "kind": "discount",
            "funding_source": "City grant",
            "approving_body": "Testshire Borough Council",
            "approval_reference": approval["reference"],
            "ended_at": None,
        }
    ]
    page = (await client.get("/transparency/coverage")).text
    assert 'id="coverage-programmes"' in page and "Doorbells for All" in page
    assert "no-programmes" not in page
    assert 'href="/transparency/report"' in page
    assert str(elm.household_id) not in page and elm.address not in page


async def test_requests_count_in_the_period_they_were_submitted_in(
    people: Cast, factory: Factory, clock: ManualClock, client: httpx.AsyncClient
) -> None:
    elm = await home(factory, "12 Elm Street")
    day_one = clock.now().date()
    first = await filed_warrant(people.officer_client, people.agency_id, device_item(elm.camera.id))
    clock.advance(timedelta(days=1))
    day_two = clock.now().date()
    await filed_warrant(people.officer_client, people.agency_id, device_item(elm.camera.id))
    # Decided on day two: the request stays in day one, its package is day two's.
    await decided(people, first, "approve", APPROVE)

    def warrants(body: dict[str, Any]) -> dict[str, int]:
        return kinds(body["requests"])["warrant"]

    one = await report_json(client, f"?from={day_one}&to={day_one}")
    assert warrants(one) == counts(total=1, approved=1)
    assert one["disclosures"]["packages"] == 0
    two = await report_json(client, f"?from={day_two}&to={day_two}")
    assert warrants(two) == counts(total=1, pending=1)  # the day before `from` is not counted
    assert (two["disclosures"]["packages"], two["disclosures"]["clips"]) == (1, 2)
    both = await report_json(client, f"?from={day_one}&to={day_two}")
    assert warrants(both) == counts(total=2, pending=1, approved=1)
    # `to` alone: from 1 January of its year.
    assert (await report_json(client, f"?to={day_one}"))["period"]["from"] == "2026-01-01"
    before = await report_json(client, f"?from=2026-01-01&to={day_one - timedelta(days=1)}")
    assert before["requests_total"] == 0 and before["agencies"] == []
    rows = await report_csv(client, f"?from={day_two}&to={day_two}")
    assert rows["requests||warrant|pending"] == "1" and rows["period|||from"] == str(day_two)


async def test_few_households_asked_show_no_rate(
    people: Cast, factory: Factory, client: httpx.AsyncClient
) -> None:
    homes = [await home(factory, f"{n} Birch Lane", clip_hours=(10.0,)) for n in range(3)]
    community = await people.officer_client.post(
        requests_url(people.agency_id, "/community"),
        json={
            "case_number": "CM-2",
            "area": AREA,
            "window_start": iso(at(9)),
            "window_end": iso(at(12)),
            "public_text": "A bicycle was stolen on Birch Lane; footage may help.",
        },
    )
    assert community.status_code == 201, community.text
    [clip] = await clip_ids(homes[0])
    shared = await homes[0].client.post(
        f"/api/v1/households/{homes[0].household_id}/community-requests/"
        f"{community.json()['id']}/share",
        json={"clip_ids": [clip]},
    )
    assert shared.status_code == 200, shared.text
    c = (await report_json(client))["community"]
    # Three homes asked (a request filed before the floor of 5): not said, nor guessable
    # from one more home asked (issue 16 item 2: the count told one home's camera).
    assert (c["requests"], c["households_asked"], c["clips_shared"]) == (1, None, 1)
    assert c["min_households_shown"] == 5
    assert c["households_shared"] is None and c["response_rate"] is None
    rows = await report_csv(client)
    assert rows["community||community|households_asked"] == "fewer than 5"
    assert rows["community||community|households_shared"] == "too few to show"
    assert rows["community||community|response_rate"] == "too few to show"
    html, shown = await report_page(client)
    assert shown["community||community|households_asked"] == ("fewer than 5", "fewer than 5")
    assert shown["community||community|response_rate"] == ("too few to show", "too few to show")
    assert 'id="chart-community"' not in html and "would tell who answered" in html


async def test_counts_are_reused_for_a_while(
    people: Cast, factory: Factory, clock: ManualClock, client: httpx.AsyncClient
) -> None:
    elm = await home(factory, "12 Elm Street", clip_hours=())
    before = await report_json(client)
    assert before["requests_total"] == 0
    await filed_warrant(people.officer_client, people.agency_id, device_item(elm.camera.id))
    # Anyone may ask, for any period: a count is reused for coverage_cache_s (300 s).
    again = await report_json(client)
    assert again["requests_total"] == 0 and again["generated_at"] == before["generated_at"]
    assert (await report_page(client))[1]["requests||all|total"][0] == "0"
    # Another period is counted on its own.
    assert (await report_json(client, "?from=2026-06-01"))["requests_total"] == 1
    clock.advance(timedelta(seconds=301))
    assert (await report_json(client))["requests_total"] == 1


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?from=2026-03-01&to=2026-02-01", 400, "invalid_period"),  # from after to
        ("?from=1999-12-31&to=2000-01-05", 400, "invalid_period"),  # before 2000
        ("?from=2010-01-01&to=2020-01-01", 400, "invalid_period"),  # over 10 years
        ("?from=2026-01-01&to=2027-01-01", 400, "invalid_period"),  # after this year
        ("?from=yesterday", 422, "validation_error"),
        ("?to=2026-02-30", 422, "validation_error"),
    ],
)
async def test_bad_periods_are_refused(
    client: httpx.AsyncClient, query: str, status: int, code: str
) -> None:
    for url in (API, CSV):
        assert_error(await client.get(url + query), status, code)
    page = await client.get(PAGE + query)
    assert page.status_code == 400
    assert 'class="alert alert-error"' in page.text and 'aria-invalid="true"' in page.text
    assert "data-figure" not in page.text


async def test_ten_years_exactly_is_allowed(client: httpx.AsyncClient) -> None:
    body = await report_json(client, "?from=2016-12-02&to=2026-12-01")
    assert body["period"]["from"] == "2016-12-02" and body["requests_total"] == 0
    assert (await client.get(PAGE + "?from=2016-12-02&to=2026-12-01")).status_code == 200


async def test_an_empty_instance_reports_zeros(client: httpx.AsyncClient) -> None:
    body = await report_json(client)
    assert body["requests_total"] == 0 and body["agencies"] == []
    assert all(k["total"] == 0 for k in body["requests"])
    html, shown = await report_page(client)
    assert "No request was submitted in this period." in html and "<svg" not in html
    assert shown["requests||all|total"] == ("0", "0")


def test_csv_cells_are_not_formulas() -> None:
    assert csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_safe("@SUM") == "'@SUM" and csv_safe("-1") == "'-1"
    assert csv_safe("Springfield Police") == "Springfield Police"
