"""What a camera's web settings change about notifications (docs/camera-settings.md):
`notify.labels` filters its events, and a privacy zone removed or shrunk tells every
member of the household (the audit trail itself is its owners'). Through the real
outbox and dispatch job (notify/outbox.py), with the settings set through the API."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from doorwarden.clock import ManualClock
from doorwarden.events.models import Event, EventKind, EventSource
from tests.factories import Factory
from tests.functional.notify.dispatch_setup import add_event, dispatch, notifications_of, ring

pytestmark = pytest.mark.db
SQUARE = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]
BIG = [[0.0, 0.0], [0.6, 0.0], [0.6, 0.6], [0.0, 0.6]]


async def add_back_event(
    app: FastAPI, household: uuid.UUID, device: uuid.UUID, clock: ManualClock
) -> None:
    """A person event on the device's other camera, "back" (no settings of its own)."""
    async with app.state.sessionmaker.begin() as db:
        db.add(
            Event(
                id=uuid.uuid4(), household_id=household, device_id=device, camera="back",
                kind=EventKind.person, occurred_at=clock.now(), received_at=clock.now(),
                source=EventSource.detector,
            )
        )  # fmt: skip


async def test_notify_labels_decide_which_of_a_cameras_events_notify(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    owner, shared = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    camera = await factory.camera(owner, home)
    me, them = await factory.signed_in(owner), await factory.signed_in(shared)
    every = {"kinds": ["ring", "person", "motion"], "cooldown_s": 0}
    for member in (me, them):  # each member's own rules: every kind, no cooldown
        saved = await member.put(f"/api/v1/households/{home}/notification-rules", json=every)
        assert saved.status_code == 200, saved.text
    # Away: people and motion notify (at home only rings would).
    assert (
        await me.put(f"/api/v1/households/{home}/mode", json={"mode": "away"})
    ).status_code == 200
    path = f"/api/v1/households/{home}/devices/{camera.id}/cameras/front/settings"
    only_rings = await me.put(path, json={"version": 0, "settings": {"notify.labels": ["ring"]}})
    assert only_rings.status_code == 200, only_rings.text

    await add_event(app, home, camera.id, EventKind.person, clock.now())  # front: filtered
    await add_back_event(app, home, camera.id, clock)  # back: its own (no) settings
    await ring(camera.client, clock.now())
    await dispatch(app)
    for user in (owner, shared):
        assert sorted(n.kind for n in await notifications_of(app, user.id)) == ["person", "ring"]

    motion_only = await me.put(path, json={"version": 1, "settings": {"notify.labels": ["motion"]}})
    assert motion_only.status_code == 200
    await add_event(app, home, camera.id, EventKind.motion, clock.now())  # motion: told
    await ring(camera.client, clock.now())  # no longer wanted on this camera
    await dispatch(app)
    kinds = sorted(n.kind for n in await notifications_of(app, shared.id))
    assert kinds == ["motion", "person", "ring"]

    # Reset: every kind again (as the member's own rules say).
    assert (await me.delete(path)).status_code == 200
    await ring(camera.client, clock.now())
    await dispatch(app)
    kinds = sorted(n.kind for n in await notifications_of(app, shared.id))
    assert kinds == ["motion", "person", "ring", "ring"]
    await me.aclose()
    await them.aclose()
    await camera.client.aclose()


async def test_a_reduced_privacy_zone_is_told_to_every_member(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    owner, shared = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    neighbour = await factory.user()
    await factory.household(neighbour, "Next door")
    camera = await factory.camera(owner, home, "Porch")
    me = await factory.signed_in(owner)
    # The shared member asked for rings only: a reduced privacy zone is told regardless.
    them = await factory.signed_in(shared)
    rules = f"/api/v1/households/{home}/notification-rules"
    assert (await them.put(rules, json={"kinds": ["ring"], "cooldown_s": 0})).status_code == 200
    path = f"/api/v1/households/{home}/devices/{camera.id}/cameras/front/settings"
    for version, zones in enumerate(([SQUARE], [BIG])):  # set, then grown: nothing to tell
        response = await me.put(
            path, json={"version": version, "settings": {"privacy_zones": zones}}
        )
        assert response.status_code == 200, response.text
    await dispatch(app)
    assert await notifications_of(app, owner.id) == []
    assert await notifications_of(app, shared.id) == []
    shrunk = await me.put(path, json={"version": 2, "settings": {"privacy_zones": [SQUARE]}})
    assert shrunk.status_code == 200
    await dispatch(app)
    await dispatch(app)  # told once
    for user in (owner, shared):
        (told,) = await notifications_of(app, user.id)
        assert told.kind == "privacy_zone" and told.device_id == camera.id
        assert "Porch (front)" in told.body
    assert await notifications_of(app, neighbour.id) == []
    # The shared member reads it in their own notification history.
    history = await them.get("/api/v1/account/notifications")
    assert history.status_code == 200, history.text
    assert [n["kind"] for n in history.json()] == ["privacy_zone"]
    await me.aclose()
    await them.aclose()
    await camera.client.aclose()
