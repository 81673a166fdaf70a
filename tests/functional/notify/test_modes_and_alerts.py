"""The mode switch stops motion and person alerts, never rings (issue 17's "done when"):
motion and person events made the real way (a sealed clip uploaded, verified and turned
into an event by the `events.clips` job), rings over the camera's HTTP fallback, pushes
on a real push service on loopback, the mode and snoozes set through the API, and what
each member sees in GET /api/v1/account/notifications."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.crypto.manifest import GENESIS
from doorwarden.events.clip_events import clip_events_job
from doorwarden.scheduler import run_now
from tests.factories import Camera, Factory
from tests.functional.notify.dispatch_setup import dispatch, ring, settings_overrides
from tests.push_service import BrowserSubscription, PushService
from tests.sealed_clips import seal_clip, upload

CLIP = timedelta(seconds=12)  # seal_clip's clips last 12 s


@pytest.fixture
def push() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The tests run the clip job and the dispatch job by hand.
    return settings.model_copy(update={**settings_overrides(None), "events_clip_interval_s": 0})


@pytest.fixture
def clock() -> ManualClock:
    # 12:00 in London (the factories' households): no quiet hours in play.
    return ManualClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))


class Chain:
    """The camera's clips, sealed and chained as its agent would, uploaded for real."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self.previous = GENESIS
        self.sequence = 0

    async def clip(self, start: datetime, labels: tuple[str, ...]) -> uuid.UUID:
        sealed = seal_clip(
            self.camera.id, self.camera.key, self.camera.recipients, self.sequence,
            self.previous, size=20_000, labels=labels,
            start=start.isoformat(timespec="milliseconds"),
        )  # fmt: skip
        response = await upload(self.camera.client, sealed)
        assert response.status_code in (200, 201), response.text
        assert response.json()["status"] == "verified", response.text
        self.previous, self.sequence = sealed.digest, self.sequence + 1
        return uuid.UUID(response.json()["clip_id"])


class Member:
    def __init__(self, client: httpx.AsyncClient, browser: BrowserSubscription) -> None:
        self.client = client
        self.browser = browser

    async def notifications(self) -> list[dict[str, Any]]:
        response = await self.client.get("/api/v1/account/notifications")
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body


class Home:
    def __init__(
        self, app: FastAPI, clock: ManualClock, push: PushService, household: uuid.UUID,
        camera: Camera, owner: Member, shared: Member,
    ) -> None:  # fmt: skip
        self.app, self.clock, self.push = app, clock, push
        self.id, self.camera, self.chain = household, camera, Chain(camera)
        self.owner, self.shared = owner, shared

    async def set_mode(self, mode: str) -> None:
        response = await self.owner.client.put(
            f"/api/v1/households/{self.id}/mode", json={"mode": mode}
        )
        assert response.status_code == 200, response.text
        assert response.json()["mode"] == mode

    async def snooze(self, member: Member, scope: str, hours: int = 1) -> uuid.UUID:
        response = await member.client.post(
            f"/api/v1/households/{self.id}/snoozes", json={"scope": scope, "hours": hours}
        )
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["id"])

    async def end_snooze(self, member: Member, snooze: uuid.UUID) -> None:
        response = await member.client.delete(f"/api/v1/households/{self.id}/snoozes/{snooze}")
        assert response.status_code == 204, response.text

    async def clip_event(self, labels: tuple[str, ...], start: datetime | None = None) -> str:
        """A clip recorded just now (ended by the clock's now), uploaded, verified and made
        an event by the clip job; then the dispatch job runs. The event's kind."""
        start = start if start is not None else self.clock.now() - CLIP
        await self.chain.clip(start, labels)
        made = await run_now(self.app.state.sessionmaker, clip_events_job(self.clock.now))
        assert len(made.made) == 1, made
        await dispatch(self.app)
        return str(made.made[0].kind)

    async def ring(self) -> None:
        await ring(self.camera.client, self.clock.now())
        await dispatch(self.app)

    def pushed(self, member: Member) -> list[str]:
        """The kinds pushed to the member's browser, in order, decrypted."""
        return [r.json()["kind"] for r in self.push.for_token(member.browser.token)]

    def later(self, seconds: int = 60) -> None:
        self.clock.advance(timedelta(seconds=seconds))


async def _member(factory: Factory, user: Any, push: PushService, home: uuid.UUID) -> Member:
    client = await factory.signed_in(user)
    browser = push.subscribe()
    made = await client.post("/api/v1/account/push-subscriptions", json=browser.to_json("phone"))
    assert made.status_code == 201, made.text
    rules = await client.put(
        f"/api/v1/households/{home}/notification-rules",
        json={"kinds": ["ring", "person", "motion"], "cooldown_s": 0},
    )
    assert rules.status_code == 200, rules.text
    return Member(client, browser)


@pytest.fixture
async def home(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService
) -> AsyncIterator[Home]:
    owner_user, shared_user = await factory.user(), await factory.user()
    household = await factory.household(owner_user)
    await factory.share(household, owner_user, shared_user)
    camera = await factory.camera(owner_user, household)
    owner = await _member(factory, owner_user, push, household)
    shared = await _member(factory, shared_user, push, household)
    yield Home(app, clock, push, household, camera, owner, shared)
    await owner.client.aclose()
    await shared.client.aclose()


async def test_home_mode_stops_motion_and_person_alerts_but_not_rings(home: Home) -> None:
    await home.set_mode("away")
    assert await home.clip_event(("motion",)) == "motion"
    home.later()
    await home.ring()
    for member in (home.owner, home.shared):
        assert home.pushed(member) == ["motion", "ring"]
    # Home: a new motion event and a new person event notify nobody; a ring still does.
    home.later()
    await home.set_mode("home")
    home.later()
    assert await home.clip_event(("motion",)) == "motion"
    home.later()
    assert await home.clip_event(("motion", "person")) == "person"
    home.later()
    await home.ring()
    for member in (home.owner, home.shared):
        assert home.pushed(member) == ["motion", "ring", "ring"]
        # What the member sees: no silenced notification is listed (none was made).
        listed = await member.notifications()
        assert [n["kind"] for n in listed] == ["ring", "ring", "motion"]  # newest first
        assert all(n["status"] == "delivered" for n in listed)
        assert all([a["status"] for a in n["attempts"]] == ["sent"] for n in listed)
    # Away again: motion alerts come back.
    home.later()
    await home.set_mode("away")
    home.later()
    assert await home.clip_event(("motion", "person")) == "person"
    for member in (home.owner, home.shared):
        assert home.pushed(member) == ["motion", "ring", "ring", "person"]


async def test_a_household_snooze_silences_motion_for_everyone_but_not_rings(
    home: Home,
) -> None:
    await home.set_mode("away")
    snooze = await home.snooze(home.owner, "household")
    home.later()
    assert await home.clip_event(("motion",)) == "motion"
    home.later()
    assert await home.clip_event(("motion", "person")) == "person"
    await home.ring()
    for member in (home.owner, home.shared):
        assert home.pushed(member) == ["ring"]
        assert [n["kind"] for n in await member.notifications()] == ["ring"]
    # A shared member may not snooze the household.
    refused = await home.shared.client.post(
        f"/api/v1/households/{home.id}/snoozes", json={"scope": "household", "hours": 1}
    )
    assert refused.status_code == 403, refused.text
    # Ended: motion alerts come back.
    await home.end_snooze(home.owner, snooze)
    home.later()
    assert await home.clip_event(("motion",)) == "motion"
    for member in (home.owner, home.shared):
        assert home.pushed(member) == ["ring", "motion"]


async def test_a_snooze_silences_the_clip_being_recorded_when_it_was_set(home: Home) -> None:
    """The member snoozes while a camera is recording motion: that clip, uploaded and made
    an event after the snooze, alerts nobody (the snooze is running when it is told)."""
    await home.set_mode("away")
    started = home.clock.now() - timedelta(seconds=5)  # recording when the snooze is set
    await home.snooze(home.owner, "household")
    home.later(10)
    assert await home.clip_event(("motion",), started) == "motion"
    for member in (home.owner, home.shared):
        assert home.pushed(member) == []
        assert await member.notifications() == []
    await home.ring()
    for member in (home.owner, home.shared):
        assert home.pushed(member) == ["ring"]


async def test_a_members_own_snooze_silences_only_that_member(home: Home) -> None:
    await home.set_mode("away")
    mine = await home.snooze(home.shared, "me")
    home.later()
    assert await home.clip_event(("motion",)) == "motion"
    home.later()
    assert await home.clip_event(("motion", "person")) == "person"
    await home.ring()
    assert home.pushed(home.owner) == ["motion", "person", "ring"]
    assert home.pushed(home.shared) == ["ring"]
    assert [n["kind"] for n in await home.shared.notifications()] == ["ring"]
    # The owner does not see, nor end, the member's own snooze.
    current = await home.owner.client.get(f"/api/v1/households/{home.id}/mode")
    assert current.status_code == 200 and current.json()["snoozes"] == []
    foreign = await home.owner.client.delete(f"/api/v1/households/{home.id}/snoozes/{mine}")
    assert foreign.status_code == 404, foreign.text
    await home.end_snooze(home.shared, mine)
    home.later()
    assert await home.clip_event(("motion",)) == "motion"
    assert home.pushed(home.shared) == ["ring", "motion"]
    assert home.pushed(home.owner) == ["motion", "person", "ring", "motion"]
