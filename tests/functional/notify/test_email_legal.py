"""Legal notices and integrity alerts by e-mail (and push) to the owners who asked, through
the legal process as agencies and reviewers drive it (tests/legal_flow.py): a notice
delivered to a household reaches its owner's inbox on a real SMTP server and the owner's
phone on a real push service; one held back by a court's non-disclosure order reaches
nobody until the order ends. The e-mail says what happened and links to the page; it
never carries the household's name, its address or an image."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from fastapi import FastAPI

from doorwarden.clips.models import AlertKind, IntegrityAlert
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.tasks import run_legal_deadlines
from doorwarden.notify.models import NotificationStatus
from tests.factories import Factory
from tests.functional.notify.dispatch_setup import dispatch, notifications_of, settings_overrides
from tests.legal_flow import (
    Cast,
    Home,
    cast_with_tokens,
    decide,
    device_item,
    file_warrant,
    file_with_documents,
    homes_with_tokens,
    iso,
    legal_view,
    warrant_details,
)
from tests.pdfs import pdf_bytes
from tests.push_service import BrowserSubscription, PushService
from tests.smtp_server import SmtpServer


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    overrides = settings_overrides(smtp.port) | {"legal_interval_s": 0}
    return settings.model_copy(update=overrides)


@pytest.fixture
def clock() -> ManualClock:
    # After the legal flow's clips (25 November), before its warrants expire.
    return ManualClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast_with_tokens(factory)
    yield made
    await made.close()


@pytest.fixture
async def homes(factory: Factory) -> AsyncIterator[Callable[..., Awaitable[Home]]]:
    async with homes_with_tokens(factory) as make:
        yield make


async def phone(factory: Factory, home: Home, push: PushService) -> BrowserSubscription:
    """The owner's phone subscribed (from a signed-in browser: API tokens may not)."""
    sub = push.subscribe()
    browser = await factory.signed_in(home.owner)
    made = await browser.post("/api/v1/account/push-subscriptions", json=sub.to_json("phone"))
    assert made.status_code == 201, made.text
    await browser.aclose()
    return sub


async def opt_in(
    factory: Factory, home: Home, push: PushService, kinds: list[str]
) -> BrowserSubscription:
    """The owner's phone subscribed, and e-mail asked for, for these kinds."""
    sub = await phone(factory, home, push)
    rules = await home.client.put(
        f"/api/v1/households/{home.household_id}/notification-rules",
        json={"kinds": kinds, "email": True},
    )
    assert rules.status_code == 200, rules.text
    return sub


def text_of(mail: Message) -> str:
    assert not mail.is_multipart()  # one plain text part: no image, no attachment
    assert mail.get_content_type() == "text/plain"
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def assert_discreet(mail: Message, home: Home) -> None:
    """Nothing in the e-mail names the household or where it is."""
    whole = mail.as_string()
    for secret in (f"Home at {home.address}", home.address, "Elm", "Oak"):
        assert secret not in whole, secret


async def approve(people: Cast, request_id: str, *attest: str) -> None:
    decided = await decide(people.reviewer_client, request_id, "approve", {"attest": list(attest)})
    assert decided.status_code == 200, decided.text


async def test_a_legal_notice_reaches_the_owners_inbox_and_phone(
    app: FastAPI,
    people: Cast,
    homes: Any,
    push: PushService,
    smtp: SmtpServer,
    factory: Factory,
    settings: Settings,
) -> None:
    elm = await homes("12 Elm Street")
    oak = await homes("3 Oak Road")  # not named in the warrant: told nothing
    elm_sub = await opt_in(factory, elm, push, ["legal_notice"])
    oak_sub = await opt_in(factory, oak, push, ["legal_notice"])
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    assert filed.status_code == 201, filed.text
    await approve(people, filed.json()["id"], "signed")
    await dispatch(app)

    notices = (await legal_view(elm.client, elm.household_id))["notices"]
    assert notices, "the approved warrant tells the household"
    notes = await notifications_of(app, elm.owner.id)
    assert len(notes) == len(notices)
    assert {n.kind for n in notes} == {"legal_notice"}
    assert {n.status for n in notes} == {NotificationStatus.delivered}
    # One e-mail and one push per notice, to the owner of the household named.
    mails = smtp.to(elm.owner.email)
    assert len(mails) == len(notices) and len(smtp.messages) == len(notices)
    pushed = push.for_token(elm_sub.token)
    assert len(pushed) == len(notices)
    assert push.for_token(oak_sub.token) == [] and await notifications_of(app, oak.owner.id) == []
    page = f"/households/{elm.household_id}/requests"
    for mail in (m.message for m in mails):
        assert mail["Subject"] == "Legal process notice"
        body = text_of(mail)
        assert "notice about legal process" in body
        assert body.count(settings.public_base_url.rstrip("/") + page) == 1
        assert_discreet(mail, elm)
        # What the notice says stays behind the sign-in: not the agency, not the case.
        assert "Testshire" not in body and "CR-" not in body
    for message in pushed:
        payload = message.json()
        assert payload["kind"] == "legal_notice" and payload["url"] == page
        assert payload["thumbnail"] is None
        assert "Elm" not in payload["title"] + payload["body"]
    # Handled once: another run sends nothing more.
    await dispatch(app)
    assert len(smtp.messages) == len(notices) and len(push.received) == len(notices)


async def test_a_notice_under_a_nondisclosure_order_reaches_nobody_until_it_ends(
    app: FastAPI,
    people: Cast,
    homes: Any,
    push: PushService,
    smtp: SmtpServer,
    clock: ManualClock,
    settings: Settings,
    factory: Factory,
) -> None:
    elm = await homes("12 Elm Street")
    sub = await opt_in(factory, elm, push, ["legal_notice", "ring"])
    until = clock.now() + timedelta(days=30)
    details = warrant_details([device_item(elm.camera.id)], nondisclosure_until=iso(until))
    filed = await file_with_documents(
        people.officer_client,
        people.agency_id,
        "warrants",
        details,
        document=pdf_bytes("warrant under seal"),
        nondisclosure=pdf_bytes("non-disclosure order"),
    )
    assert filed.status_code == 201, filed.text
    await approve(people, filed.json()["id"], "signed", "nondisclosure")

    async def job_and_dispatch() -> int:
        done = await run_legal_deadlines(app.state.sessionmaker, settings, clock.now())
        await dispatch(app)
        return int(done.notices_delivered)

    assert await job_and_dispatch() == 0
    # A day before the order ends, and through the outbox's horizon: still nothing.
    clock.advance(until - clock.now() - timedelta(days=1))
    assert await job_and_dispatch() == 0
    assert smtp.messages == [] and push.received == []
    assert await notifications_of(app, elm.owner.id) == []
    assert (await legal_view(elm.client, elm.household_id))["notices"] == []

    # The order ends: the notices are delivered, and the owner is told of each, once.
    clock.advance(timedelta(days=1))
    delivered = await job_and_dispatch()
    assert delivered == 2
    notes = await notifications_of(app, elm.owner.id)
    assert len(notes) == 2 and {n.status for n in notes} == {NotificationStatus.delivered}
    assert all(n.occurred_at == clock.now() for n in notes)
    assert len(smtp.to(elm.owner.email)) == 2 and len(push.for_token(sub.token)) == 2
    for mail in smtp.to(elm.owner.email):
        assert_discreet(mail.message, elm)
    clock.advance(timedelta(days=1))
    assert await job_and_dispatch() == 0
    assert len(smtp.messages) == 2 and len(push.received) == 2


async def test_e_mail_only_for_owners_who_asked_and_only_kinds_they_chose(
    app: FastAPI,
    people: Cast,
    homes: Any,
    push: PushService,
    smtp: SmtpServer,
    factory: Factory,
    clock: ManualClock,
) -> None:
    elm = await homes("12 Elm Street")
    # A shared member: never told of legal process or integrity alerts (owners only).
    shared = await factory.user()
    await factory.share(elm.household_id, elm.owner, shared)
    shared_client = await factory.signed_in(shared)
    put = await shared_client.put(
        f"/api/v1/households/{elm.household_id}/notification-rules",
        json={"kinds": ["ring", "integrity_alert", "legal_notice"], "email": True},
    )
    assert put.status_code == 200, put.text
    # The owner: push for notices and alerts, but no e-mail.
    sub = await phone(factory, elm, push)
    rules = await elm.client.put(
        f"/api/v1/households/{elm.household_id}/notification-rules",
        json={"kinds": ["integrity_alert", "legal_notice"], "email": False},
    )
    assert rules.status_code == 200
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    await approve(people, filed.json()["id"], "signed")
    async with app.state.sessionmaker.begin() as db:
        db.add(
            IntegrityAlert(
                id=uuid.uuid4(),
                household_id=elm.household_id,
                device_id=elm.camera.id,
                sequence=7,
                kind=AlertKind.gap,
                detail="clip 6 is missing",
                created_at=clock.now(),
            )
        )
    await dispatch(app)
    assert smtp.messages == []  # nobody who asked for e-mail may be told
    kinds = sorted(r.json()["kind"] for r in push.for_token(sub.token))
    assert "integrity_alert" in kinds and "legal_notice" in kinds
    assert await notifications_of(app, shared.id) == []
    # Now the owner asks for e-mail: the next alert arrives by e-mail too, discreetly.
    await elm.client.put(
        f"/api/v1/households/{elm.household_id}/notification-rules",
        json={"kinds": ["integrity_alert"], "email": True},
    )
    async with app.state.sessionmaker.begin() as db:
        db.add(
            IntegrityAlert(
                id=uuid.uuid4(),
                household_id=elm.household_id,
                device_id=elm.camera.id,
                sequence=9,
                kind=AlertKind.gap,
                detail="clip 8 is missing",
                created_at=clock.now(),
            )
        )
    await dispatch(app)
    (mail,) = (m.message for m in smtp.to(elm.owner.email))
    assert mail["Subject"] == "Integrity alert"
    body = text_of(mail)
    assert f"/households/{elm.household_id}/cameras" in body
    assert "clip 8" not in body  # the detail stays in the app
    assert_discreet(mail, elm)
    await shared_client.aclose()
