"""Adding a device by code: the new device posts an ephemeral public key, an existing
device of the same member wraps the member key to it, the new device collects it once.
Every way of getting this wrong is refused: another member's request, a replayed
approval or collection, an expired request, a key that was rotated away, a member who
was removed from every household, a key wrapped to someone else, no CSRF token."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from doorwarden.clock import ManualClock
from doorwarden.crypto.keys import RecipientKey, b64d, b64e
from doorwarden.crypto.wrap import WrappedKey, unwrap_key, wrap_key
from doorwarden.keyring.service import MAX_PENDING_REQUESTS
from tests.factories import Factory, assert_error
from tests.functional.keyring.helpers import API, Member, member_with_key


async def _request(me: Member) -> tuple[RecipientKey, dict[str, Any]]:
    ephemeral = RecipientKey.generate()
    made = await me.client.post(
        f"{API}/device-requests", json={"public_key": b64e(ephemeral.public)}
    )
    assert made.status_code == 201, made.text
    return ephemeral, made.json()


def _approval(me: Member, request: dict[str, Any]) -> dict[str, Any]:
    public = b64d(request["public_key"], what="k", length=32)
    return {"key_id": me.key_id, "wrapped": wrap_key(me.key.private_bytes(), public).to_json()}


async def test_a_device_is_added_by_another_device_of_the_same_member(factory: Factory) -> None:
    me = await member_with_key(factory)
    new_device = await factory.signed_in(me.user)  # the same member, another browser
    ephemeral = RecipientKey.generate()
    made = await new_device.post(
        f"{API}/device-requests", json={"public_key": b64e(ephemeral.public)}
    )
    assert made.status_code == 201 and made.json()["status"] == "pending"
    request_id = made.json()["id"]
    # The approving device lists what waits and finds the request by its code (in the page).
    waiting = (await me.client.get(f"{API}/device-requests")).json()
    assert [w["id"] for w in waiting] == [request_id]
    assert waiting[0]["public_key"] == b64e(ephemeral.public)
    assert_error(await new_device.post(f"{API}/device-requests/{request_id}/collect"), 409)
    approved = await me.client.post(
        f"{API}/device-requests/{request_id}/approval", json=_approval(me, made.json())
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert (await me.client.get(f"{API}/device-requests")).json() == []
    polled = await new_device.get(f"{API}/device-requests/{request_id}")
    assert polled.json()["status"] == "approved"
    collected = await new_device.post(f"{API}/device-requests/{request_id}/collect")
    assert collected.status_code == 200, collected.text
    assert collected.json()["key_id"] == me.key_id
    wrapped = WrappedKey.from_json(collected.json()["wrapped"])
    assert unwrap_key(wrapped, ephemeral) == me.key.private_bytes()
    # Single use: neither the approval nor the collection can be replayed.
    assert_error(await new_device.post(f"{API}/device-requests/{request_id}/collect"), 410, "gone")
    replayed = await me.client.post(
        f"{API}/device-requests/{request_id}/approval", json=_approval(me, made.json())
    )
    assert_error(replayed, 409, "conflict")


async def test_another_members_request_is_not_found(factory: Factory) -> None:
    me, other = await member_with_key(factory), await member_with_key(factory)
    _, request = await _request(other)
    rid = request["id"]
    assert_error(await me.client.get(f"{API}/device-requests/{rid}"), 404, "not_found")
    assert_error(
        await me.client.post(f"{API}/device-requests/{rid}/approval", json=_approval(me, request)),
        404,
        "not_found",
    )
    assert_error(await me.client.post(f"{API}/device-requests/{rid}/collect"), 404, "not_found")
    assert (await me.client.get(f"{API}/device-requests")).json() == []
    unknown = uuid.uuid4()
    assert_error(await me.client.get(f"{API}/device-requests/{unknown}"), 404, "not_found")


async def test_an_expired_request_is_refused(factory: Factory, clock: ManualClock) -> None:
    me = await member_with_key(factory)
    _, request = await _request(me)
    clock.advance(timedelta(minutes=10, seconds=1))
    assert (await me.client.get(f"{API}/device-requests/{request['id']}")).json()[
        "status"
    ] == "expired"
    refused = await me.client.post(
        f"{API}/device-requests/{request['id']}/approval", json=_approval(me, request)
    )
    assert "expired" in str(assert_error(refused, 410, "gone")["message"])


async def test_a_stale_device_approving_after_removal_is_refused(factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    me = await member_with_key(factory, household=False)
    await factory.share(home, owner, me.user)
    _, request = await _request(me)
    owner_client = await factory.signed_in(owner)
    removed = await owner_client.delete(f"/api/v1/households/{home}/members/{me.user.id}")
    assert removed.status_code == 204, removed.text
    refused = await me.client.post(
        f"{API}/device-requests/{request['id']}/approval", json=_approval(me, request)
    )
    error = assert_error(refused, 409, "conflict")
    assert error["details"] == {"reason": "not_a_member"}
    assert "no longer a member" in str(error["message"])
    assert (await me.client.get(f"{API}/device-requests/{request['id']}")).json()[
        "status"
    ] == "pending"


async def test_a_device_holding_a_rotated_key_cannot_approve(factory: Factory) -> None:
    me = await member_with_key(factory)
    _, request = await _request(me)
    stale = _approval(me, request)  # this device still has the old key
    newer = RecipientKey.generate()
    put = await me.client.put("/api/v1/account/e2e-key", json={"public_key": b64e(newer.public)})
    assert put.status_code == 200
    refused = await me.client.post(f"{API}/device-requests/{request['id']}/approval", json=stale)
    assert_error(refused, 409, "stale_key")


async def test_a_key_wrapped_to_another_key_is_refused(factory: Factory) -> None:
    me = await member_with_key(factory)
    _, request = await _request(me)
    server_substitute = RecipientKey.generate()
    body = {
        "key_id": me.key_id,
        "wrapped": wrap_key(me.key.private_bytes(), server_substitute.public).to_json(),
    }
    refused = await me.client.post(f"{API}/device-requests/{request['id']}/approval", json=body)
    assert_error(refused, 400, "invalid_input")


async def test_waiting_devices_are_limited(factory: Factory) -> None:
    me = await member_with_key(factory)
    for _ in range(MAX_PENDING_REQUESTS):
        await _request(me)
    refused = await me.client.post(
        f"{API}/device-requests", json={"public_key": b64e(RecipientKey.generate().public)}
    )
    assert_error(refused, 429, "too_many_attempts")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"public_key": "A" * 42},
        {"public_key": "A" * 44},
        {"public_key": "!" * 43},
        {"public_key": "A" * 43, "code": "123"},
        {"public_key": 7},
    ],
)
async def test_malformed_device_requests_are_refused(factory: Factory, body: Any) -> None:
    me = await member_with_key(factory)
    assert_error(await me.client.post(f"{API}/device-requests", json=body), 422)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("key_id"),
        lambda b: b.update(extra=1),
        lambda b: b["wrapped"].update(wrapped="A" * 65),
        lambda b: b["wrapped"].update(ephemeral="A" * 4000),
        lambda b: b["wrapped"].pop("recipient"),
        lambda b: b.update(key_id="x"),
    ],
)
async def test_malformed_approvals_are_refused(factory: Factory, mutate: Any) -> None:
    me = await member_with_key(factory)
    _, request = await _request(me)
    body = _approval(me, request)
    mutate(body)
    refused = await me.client.post(f"{API}/device-requests/{request['id']}/approval", json=body)
    assert_error(refused, 422, "validation_error")
    assert (await me.client.get(f"{API}/device-requests/{request['id']}")).json()[
        "status"
    ] == "pending"


async def test_approval_without_the_csrf_token_is_refused(factory: Factory) -> None:
    me = await member_with_key(factory)
    _, request = await _request(me)
    del me.client.headers["x-csrf-token"]
    refused = await me.client.post(
        f"{API}/device-requests/{request['id']}/approval", json=_approval(me, request)
    )
    assert_error(refused, 403, "csrf_failed")
