"""The modes page: owners switch modes, every member snoozes their own notifications; the
forms go through the same services (and audit) as the API."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from doorwarden.roles import Role
from tests.factories import Factory, make_client


async def test_the_page_switches_modes_and_snoozes(app: FastAPI, factory: Factory) -> None:
    owner_user, shared_user = await factory.user(), await factory.user()
    home = await factory.household(owner_user)
    await factory.share(home, owner_user, shared_user)
    camera = await factory.camera(owner_user, home)
    await camera.client.aclose()
    owner, shared = await factory.signed_in(owner_user), await factory.signed_in(shared_user)
    page = f"/households/{home}/modes"

    seen = await owner.get(page)
    assert seen.status_code == 200, seen.text
    assert 'data-mode="home"' in seen.text
    assert 'value="away"' in seen.text  # the switch
    assert 'value="household"' in seen.text
    shared_page = (await shared.get(page)).text
    assert "Only an owner can switch modes." in shared_page
    assert 'value="household"' not in shared_page

    switched = await owner.post(f"{page}/mode", data={"mode": "away"})
    assert switched.status_code == 303, switched.text
    assert switched.headers["location"] == page
    assert 'data-mode="away"' in (await shared.get(page)).text
    assert (await shared.post(f"{page}/mode", data={"mode": "home"})).status_code == 403
    bad = await owner.post(f"{page}/mode", data={"mode": "party"})
    assert bad.status_code == 400
    assert 'data-mode="away"' in bad.text

    snoozed = await shared.post(
        f"{page}/snoozes", data={"hours": "2", "scope": "me", "device_id": str(camera.id)}
    )
    assert snoozed.status_code == 303, snoozed.text
    listed = (await shared.get(f"/api/v1/households/{home}/mode")).json()["snoozes"]
    assert [(s["scope"], s["device_id"]) for s in listed] == [("me", str(camera.id))]
    refused = await shared.post(f"{page}/snoozes", data={"hours": "2", "scope": "household"})
    assert refused.status_code == 403
    assert "Only an owner may snooze the household" in refused.text
    for hours in ("0", "25", "two", ""):
        response = await shared.post(f"{page}/snoozes", data={"hours": hours, "scope": "me"})
        assert response.status_code == 400, (hours, response.text)
    foreign = await shared.post(
        f"{page}/snoozes", data={"hours": "1", "scope": "me", "device_id": str(uuid.uuid4())}
    )
    assert foreign.status_code == 400
    ended = await shared.post(f"{page}/snoozes/{listed[0]['id']}/end")
    assert ended.status_code == 303
    assert (await shared.get(f"/api/v1/households/{home}/mode")).json()["snoozes"] == []
    assert (await shared.post(f"{page}/snoozes/{listed[0]['id']}/end")).status_code == 404


async def test_staff_strangers_and_the_signed_out_do_not_get_the_page(
    app: FastAPI, factory: Factory
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    page = f"/households/{home}/modes"
    for role in (Role.operator_admin, Role.auditor, Role.legal_reviewer):
        client = await factory.signed_in(await factory.user(role))
        assert (await client.get(page)).status_code == 403
        assert (await client.post(f"{page}/mode", data={"mode": "away"})).status_code == 403
    stranger = await factory.signed_in(await factory.user())
    assert (await stranger.get(page)).status_code == 403
    anonymous = make_client(app)
    response = await anonymous.get(page)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
