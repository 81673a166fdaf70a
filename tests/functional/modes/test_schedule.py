"""The weekly schedule in the household's time zone: across zones, summer and winter,
and the two daylight-saving changes (modes/schedule.py); then the job that applies it,
audits it and survives a restart (the state is in the database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.households.models import Household
from doorwarden.live.relay import AgentLink, LiveHub
from doorwarden.modes import service
from doorwarden.modes.schedule import Entry, last_switch, next_switch, zone_of
from doorwarden.modes.tasks import modes_job
from doorwarden.scheduler import run_now
from tests.factories import Factory

WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))
LONDON, NEW_YORK, TOKYO = (
    ZoneInfo("Europe/London"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Tokyo"),
)
WORKDAY = [Entry(WEEKDAYS, time(8, 30), "away"), Entry(WEEKDAYS, time(17, 30), "home")]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_weekday_schedule_in_winter_and_in_summer() -> None:
    # Tuesday 13 January 2026, 09:00 in London (GMT): away since 08:30; home at 17:30.
    at = utc(2026, 1, 13, 9, 0)
    assert last_switch(WORKDAY, LONDON, at) == (utc(2026, 1, 13, 8, 30), "away")
    assert next_switch(WORKDAY, LONDON, at) == (utc(2026, 1, 13, 17, 30), "home")
    # The same wall-clock times in July are an hour earlier in UTC (BST).
    at = utc(2026, 7, 14, 8, 0)  # 09:00 BST
    assert last_switch(WORKDAY, LONDON, at) == (utc(2026, 7, 14, 7, 30), "away")


def test_the_weekend_keeps_fridays_last_switch() -> None:
    # Sunday 18 January 2026, noon: the last switch was Friday 17:30.
    at = utc(2026, 1, 18, 12, 0)
    assert last_switch(WORKDAY, LONDON, at) == (utc(2026, 1, 16, 17, 30), "home")
    assert next_switch(WORKDAY, LONDON, at) == (utc(2026, 1, 19, 8, 30), "away")


def test_one_moment_is_a_different_mode_in_each_time_zone() -> None:
    at = utc(2026, 1, 14, 14, 0)  # Wednesday: 14:00 London, 09:00 New York, 23:00 Tokyo
    assert last_switch(WORKDAY, LONDON, at) == (utc(2026, 1, 14, 8, 30), "away")
    assert last_switch(WORKDAY, NEW_YORK, at) == (utc(2026, 1, 14, 13, 30), "away")
    assert last_switch(WORKDAY, TOKYO, at) == (utc(2026, 1, 14, 8, 30), "home")  # 17:30 JST
    just_before = utc(2026, 1, 14, 13, 29)
    assert last_switch(WORKDAY, NEW_YORK, just_before) == (utc(2026, 1, 13, 22, 30), "home")


def test_a_time_skipped_in_spring_happens_just_after_the_change() -> None:
    # New York, Sunday 8 March 2026: 02:00 EST jumps to 03:00 EDT; "02:30" does not exist.
    entries = [Entry(EVERY_DAY, time(2, 30), "disarmed")]
    before = utc(2026, 3, 8, 7, 29)  # 03:29 EDT
    assert last_switch(entries, NEW_YORK, before) == (utc(2026, 3, 7, 7, 30), "disarmed")
    assert next_switch(entries, NEW_YORK, before) == (utc(2026, 3, 8, 7, 30), "disarmed")
    # 07:30 UTC is 03:30 EDT: one hour after the change, as 02:30 is half an hour into it.
    assert last_switch(entries, NEW_YORK, utc(2026, 3, 8, 7, 30))[0] == utc(2026, 3, 8, 7, 30)  # type: ignore[index]
    # The next day is back to 02:30 local (EDT now: 06:30 UTC).
    assert next_switch(entries, NEW_YORK, utc(2026, 3, 8, 8, 0)) == (
        utc(2026, 3, 9, 6, 30),
        "disarmed",
    )


def test_a_time_repeated_in_autumn_switches_once() -> None:
    # London, Sunday 25 October 2026: 01:00-02:00 happens twice (BST, then GMT).
    entries = [Entry(EVERY_DAY, time(1, 30), "away"), Entry(EVERY_DAY, time(12, 0), "home")]
    first = utc(2026, 10, 25, 0, 30)  # 01:30 BST
    assert last_switch(entries, LONDON, first) == (first, "away")
    # 01:30 GMT (the second 01:30) is no new switch: the last one is still the first.
    assert last_switch(entries, LONDON, utc(2026, 10, 25, 1, 45)) == (first, "away")
    assert next_switch(entries, LONDON, first) == (utc(2026, 10, 25, 12, 0), "home")


def test_an_unknown_zone_name_falls_back_to_utc() -> None:
    assert zone_of("Mars/Olympus_Mons") == ZoneInfo("UTC")
    assert zone_of("../../etc/passwd") == ZoneInfo("UTC")


# -- on the server ------------------------------------------------------------------------


async def _current(client: httpx.AsyncClient, household: object) -> dict[str, object]:
    response = await client.get(f"/api/v1/households/{household}/mode")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_the_job_applies_the_schedule_in_the_households_zone_and_audits_it(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    async with app.state.sessionmaker.begin() as db:
        await db.execute(
            update(Household).where(Household.id == home).values(time_zone="Asia/Tokyo")
        )
    client = await factory.signed_in(owner)
    clock._now = utc(2026, 1, 14, 0, 0)  # Wednesday 09:00 in Tokyo
    entries = [{"days": [0, 1, 2, 3, 4], "at": "10:00", "mode": "away"},
               {"days": [0, 1, 2, 3, 4], "at": "18:00", "mode": "home"}]  # fmt: skip
    response = await client.put(
        f"/api/v1/households/{home}/mode-schedule", json={"entries": entries}
    )
    assert response.status_code == 200, response.text
    assert response.json()["schedule"] == entries
    # Saving a schedule does not replay its past switches (yesterday's 18:00 home).
    current = await _current(client, home)
    assert current["mode"] == "home"
    assert current["next"] == {"at": "2026-01-14T01:00:00Z", "mode": "away"}
    # Set by hand after the schedule: stays until the next switch.
    await client.put(f"/api/v1/households/{home}/mode", json={"mode": "disarmed"})
    job = modes_job(app.state.sessionmaker, LiveHub(linger_s=1, max_viewer_fragments=4), clock.now)
    assert await run_now(app.state.sessionmaker, job) == []
    clock.advance(timedelta(minutes=59))
    assert await run_now(app.state.sessionmaker, job) == []
    assert (await _current(client, home))["mode"] == "disarmed"
    clock.advance(timedelta(minutes=1))  # 10:00 in Tokyo
    # What the API says already, before the job ran (the state is computed)...
    assert (await _current(client, home))["mode"] == "away"
    # ...and the job writes it down and audits it, once.
    assert await run_now(app.state.sessionmaker, job) == [home]
    assert await run_now(app.state.sessionmaker, job) == []
    async with app.state.sessionmaker() as db:
        row = await service.row_of(db, home)
        assert row is not None
        assert (row.mode, row.source, row.mode_set_at) == ("away", "schedule", clock.now())
        events = list(
            await db.scalars(
                select(AuditEvent).where(
                    AuditEvent.household_id == home, AuditEvent.tag == "mode:set"
                )
            )
        )
    by_source = sorted((e.extra["source"], e.extra["mode"], e.actor_role) for e in events)
    assert by_source == [("manual", "disarmed", "resident"), ("schedule", "away", "system")]
    current = await _current(client, home)
    assert (current["mode"], current["source"]) == ("away", "schedule")
    assert current["next"] == {"at": "2026-01-14T09:00:00Z", "mode": "home"}


async def test_malformed_schedules_are_refused(app: FastAPI, factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    bad = [
        {"days": [0], "at": "24:00", "mode": "away"},
        {"days": [0], "at": "7:00", "mode": "away"},
        {"days": [0], "at": "07:00:00", "mode": "away"},
        {"days": [7], "at": "07:00", "mode": "away"},
        {"days": [], "at": "07:00", "mode": "away"},
        {"days": [1, 1], "at": "07:00", "mode": "away"},
        {"days": ["mon"], "at": "07:00", "mode": "away"},
        {"days": [1], "at": "07:00", "mode": "party"},
        {"days": [1], "at": "07:00", "mode": "away", "extra": True},
    ]
    url = f"/api/v1/households/{home}/mode-schedule"
    for entry in bad:
        response = await client.put(url, json={"entries": [entry]})
        assert response.status_code in (400, 422), (entry, response.text)
    twice = [
        {"days": [1, 2], "at": "07:00", "mode": "away"},
        {"days": [2], "at": "07:00", "mode": "home"},
    ]
    assert (await client.put(url, json={"entries": twice})).status_code in (400, 422)
    too_many = [
        {"days": [d % 7], "at": f"{h:02d}:00", "mode": "away"} for d in range(7) for h in range(8)
    ]
    assert (await client.put(url, json={"entries": too_many})).status_code in (400, 422)
    modes = (await client.get(f"/api/v1/households/{home}/modes")).json()
    assert modes["schedule"] == []


async def test_a_scheduled_switch_is_sent_to_the_connected_agent(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)  # Europe/London
    camera = await factory.camera(owner, home)
    await camera.client.aclose()
    client = await factory.signed_in(owner)
    clock._now = utc(2026, 1, 14, 6, 0)  # Wednesday 06:00 GMT
    entries = [{"days": [2], "at": "07:00", "mode": "disarmed"}]
    url = f"/api/v1/households/{home}/mode-schedule"
    assert (await client.put(url, json={"entries": entries})).status_code == 200
    # A connected agent, as the live router attaches it (the hub is the server's own).
    hub = LiveHub(linger_s=1, max_viewer_fragments=4)
    sent: list[dict[str, object]] = []

    async def send(text: str) -> None:
        sent.append(json.loads(text))

    async def close() -> None:
        return None

    await hub.attach(AgentLink(camera.id, send, close), ["front", "side"])
    job = modes_job(app.state.sessionmaker, hub, clock.now)
    await run_now(app.state.sessionmaker, job)
    assert sent == []  # nothing changed
    clock.advance(timedelta(hours=1))
    assert await run_now(app.state.sessionmaker, job) == [home]
    off = {"record": False, "detect": False}
    assert sent == [{"type": "mode", "mode": "disarmed", "cameras": {"front": off, "side": off}}]
