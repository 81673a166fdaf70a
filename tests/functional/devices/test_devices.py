"""Pairing cameras with one-time codes, the camera's own state, revoking."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from doorwarden.clock import ManualClock
from doorwarden.crypto.keys import SigningKey, b64d, b64e, key_id
from tests.factories import Factory, assert_error, make_client


async def code_for(factory: Factory) -> tuple[object, object, str]:
    owner = await factory.user()
    home = await factory.household(owner)
    browser = await factory.signed_in(owner)
    response = await browser.post(f"/api/v1/households/{home}/pairing-codes", json={})
    assert response.status_code == 201, response.text
    return home, browser, response.json()["code"]


def pair_body(code: str, key: SigningKey | None = None) -> dict[str, str]:
    key = key or SigningKey.generate()
    return {"code": code, "name": "Porch", "public_key": b64e(key.public)}


async def test_pairing_flow_state_list_and_audit(factory: Factory) -> None:
    home, browser, code = await code_for(factory)
    assert len(code) == 14 and code.count("-") == 2
    agent = make_client(factory.app)
    # Typed with spaces and in lower case, as a person types it.
    paired = await agent.post(
        "/api/v1/devices/pair", json=pair_body(code.lower().replace("-", " "))
    )
    assert paired.status_code == 201, paired.text
    body = paired.json()
    assert body["token"].startswith("dwd_") and body["household_id"] == str(home)
    assert body["plan"] == {"kind": "recording", "retention_days": 30, "encryption": "standard"}
    assert body["mode"] == "standard"
    [recipient] = body["recipients"]
    assert recipient["key_id"] == key_id(b64d(recipient["public_key"], what="k", length=32))

    agent.headers["authorization"] = f"Bearer {body['token']}"
    state = (await agent.get("/api/v1/device")).json()
    assert state["device_id"] == body["device_id"] and "token" not in state
    assert state["recipients"] == body["recipients"]  # the household key is stable

    [listed] = (await browser.get(f"/api/v1/households/{home}/devices")).json()
    assert listed["id"] == body["device_id"] and listed["name"] == "Porch"
    assert "token" not in str(listed) and "public_key" not in listed
    tags = [e["tag"] for e in (await browser.get(f"/api/v1/households/{home}/audit-events")).json()]
    assert tags[:2] == ["device:pair", "device:pairing-code:create"]


async def test_a_code_pairs_once(factory: Factory) -> None:
    _, _, code = await code_for(factory)
    agent = make_client(factory.app)
    assert (await agent.post("/api/v1/devices/pair", json=pair_body(code))).status_code == 201
    again = await agent.post("/api/v1/devices/pair", json=pair_body(code))
    assert "already used" in str(assert_error(again, 400, "invalid_pairing_code")["message"])


async def test_two_cameras_racing_for_one_code_one_wins(factory: Factory) -> None:
    _, _, code = await code_for(factory)
    agent = make_client(factory.app)
    results = await asyncio.gather(
        *(agent.post("/api/v1/devices/pair", json=pair_body(code)) for _ in range(5))
    )
    assert sorted(r.status_code for r in results) == [201, 400, 400, 400, 400]


async def test_an_expired_code_is_refused(factory: Factory, clock: ManualClock) -> None:
    _, _, code = await code_for(factory)
    clock.advance(timedelta(minutes=10, seconds=1))
    response = await make_client(factory.app).post("/api/v1/devices/pair", json=pair_body(code))
    assert_error(response, 400, "invalid_pairing_code")


@pytest.mark.parametrize(
    "body",
    [
        {"code": "AAAA-BBBB-CCCC", "name": "x", "public_key": "A" * 43},  # unknown code
        {"code": "", "name": "x", "public_key": "A" * 43},
        {"code": "A" * 41, "name": "x", "public_key": "A" * 43},
        {"name": "x", "public_key": "A" * 43},
        {"code": "AAAA", "name": "x", "public_key": "not a key"},
        {"code": "AAAA", "name": "", "public_key": "A" * 43},
        {"code": "AAAA", "name": "x", "public_key": "A" * 43, "extra": 1},
    ],
)
async def test_bad_pairing_requests_are_refused(factory: Factory, body: dict[str, object]) -> None:
    response = await make_client(factory.app).post("/api/v1/devices/pair", json=body)
    assert response.status_code in (400, 422), response.text
    assert_error(response, response.status_code)


async def test_a_malformed_key_with_a_good_code_leaves_the_code_usable(factory: Factory) -> None:
    _, _, code = await code_for(factory)
    agent = make_client(factory.app)
    bad = {"code": code, "name": "x", "public_key": "!" * 43}
    assert_error(await agent.post("/api/v1/devices/pair", json=bad), 400, "invalid_pairing_code")
    assert (await agent.post("/api/v1/devices/pair", json=pair_body(code))).status_code == 201


async def test_only_owners_make_codes_and_revoke(factory: Factory) -> None:
    owner, partner, stranger = await factory.user(), await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, partner)
    camera = await factory.camera(owner, home)
    shared = await factory.signed_in(partner)
    assert_error(await shared.post(f"/api/v1/households/{home}/pairing-codes", json={}), 403)
    assert_error(await shared.delete(f"/api/v1/households/{home}/devices/{camera.id}"), 403)
    assert (await shared.get(f"/api/v1/households/{home}/devices")).status_code == 200
    # Another household's owner cannot touch it, even naming their own household.
    other_home = await factory.household(stranger)
    other = await factory.signed_in(stranger)
    assert_error(await other.delete(f"/api/v1/households/{home}/devices/{camera.id}"), 403)
    assert_error(await other.delete(f"/api/v1/households/{other_home}/devices/{camera.id}"), 404)
    assert (await camera.client.get("/api/v1/device")).status_code == 200
    browser = await factory.signed_in(owner)
    assert (
        await browser.delete(f"/api/v1/households/{home}/devices/{camera.id}")
    ).status_code == 204
    assert_error(await browser.delete(f"/api/v1/households/{home}/devices/{camera.id}"), 404)
    assert (await browser.get(f"/api/v1/households/{home}/devices")).json() == []
    assert_error(await camera.client.get("/api/v1/device"), 401, "device_revoked")


async def test_a_bogus_device_token_is_refused(factory: Factory) -> None:
    agent = make_client(factory.app)
    agent.headers["authorization"] = "Bearer dwd_" + "x" * 43
    assert_error(await agent.get("/api/v1/device"), 401, "not_authenticated")
