"""Rotating one's own key after losing a device: the new key is registered, the earlier
keys travel wrapped to it (so old clips stay readable on any device that gets the new
key), backups and approvals of the old key are dropped."""

from __future__ import annotations

from typing import Any

import pytest

from doorwarden.crypto import member_backup
from doorwarden.crypto.keys import RecipientKey, b64e, key_id
from doorwarden.crypto.wrap import WrappedKey, unwrap_key, wrap_key
from tests.factories import Factory, assert_error
from tests.functional.keyring.helpers import API, CHEAP, Member, member_with_key


def _retired(keys: list[RecipientKey], to: RecipientKey) -> list[dict[str, Any]]:
    return [
        {
            "key_id": key_id(k.public),
            "public_key": b64e(k.public),
            "wrapped": wrap_key(k.private_bytes(), to.public).to_json(),
        }
        for k in keys
    ]


async def _rotate(me: Member, new: RecipientKey, retired: list[RecipientKey]) -> Any:
    return await me.client.post(
        f"{API}/rotation",
        json={
            "previous_key_id": me.key_id,
            "public_key": b64e(new.public),
            "retired": _retired(retired, new),
        },
    )


async def test_rotation_keeps_the_old_keys_under_the_new_one(factory: Factory) -> None:
    me = await member_with_key(factory)
    backup = member_backup.passphrase_backup(
        me.key.private_bytes(), user_id=me.user_id, passphrase="a passphrase", **CHEAP
    )
    assert (await me.client.put(f"{API}/backups/passphrase", json=backup)).status_code == 200
    ephemeral = RecipientKey.generate()
    pending = await me.client.post(
        f"{API}/device-requests", json={"public_key": b64e(ephemeral.public)}
    )
    new = RecipientKey.generate()
    rotated = await _rotate(me, new, [me.key])
    assert rotated.status_code == 200, rotated.text
    registered = await me.client.get("/api/v1/account/e2e-key")
    assert registered.json()["key_id"] == key_id(new.public)
    retired = (await me.client.get(f"{API}/retired")).json()
    assert retired["sealed_under"] == key_id(new.public)
    (old,) = retired["keys"]
    assert unwrap_key(WrappedKey.from_json(old["wrapped"]), new) == me.key.private_bytes()
    # The old key's backup is gone (it opens only the old key); so is the open request.
    assert_error(await me.client.post(f"{API}/backups/passphrase/fetch"), 404)
    status = await me.client.get(f"{API}/device-requests/{pending.json()['id']}")
    assert status.json()["status"] == "cancelled"
    # A second rotation carries both earlier keys.
    newest = RecipientKey.generate()
    old_private = me.key.private_bytes()
    me.key = new
    first = RecipientKey.from_bytes(bytes(old_private))
    dropping = await _rotate(me, newest, [new])  # would lose the first key's clips
    assert "missing" in str(assert_error(dropping, 400, "invalid_input")["message"])
    assert (await _rotate(me, newest, [new, first])).status_code == 200
    keys = (await me.client.get(f"{API}/retired")).json()["keys"]
    assert {k["key_id"] for k in keys} == {key_id(new.public), key_id(first.public)}


async def test_rotation_from_a_device_with_an_old_key_is_refused(factory: Factory) -> None:
    me = await member_with_key(factory)
    elsewhere = RecipientKey.generate()
    put = await me.client.put(
        "/api/v1/account/e2e-key", json={"public_key": b64e(elsewhere.public)}
    )
    assert put.status_code == 200
    assert_error(await _rotate(me, RecipientKey.generate(), [me.key]), 409, "stale_key")


async def test_rotation_must_carry_the_current_key_wrapped_to_the_new_one(
    factory: Factory,
) -> None:
    me = await member_with_key(factory)
    new = RecipientKey.generate()
    assert_error(await _rotate(me, new, []), 400, "invalid_input")  # would lose old clips
    body = {
        "previous_key_id": me.key_id,
        "public_key": b64e(new.public),
        "retired": _retired([me.key], RecipientKey.generate()),  # wrapped to someone else
    }
    assert_error(await me.client.post(f"{API}/rotation", json=body), 400, "invalid_input")
    body["retired"] = _retired([me.key], new)
    body["retired"][0]["public_key"] = b64e(RecipientKey.generate().public)  # id mismatch
    assert_error(await me.client.post(f"{API}/rotation", json=body), 400, "invalid_input")
    assert (await me.client.get("/api/v1/account/e2e-key")).json()["key_id"] == me.key_id


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update(retired=b["retired"] * 65),
        lambda b: b.update(public_key="A" * 44),
        lambda b: b.update(surprise=True),
        lambda b: b["retired"][0].update(private_key="A" * 43),
    ],
)
async def test_malformed_rotations_are_refused(factory: Factory, mutate: Any) -> None:
    me = await member_with_key(factory)
    new = RecipientKey.generate()
    body = {
        "previous_key_id": me.key_id,
        "public_key": b64e(new.public),
        "retired": _retired([me.key], new),
    }
    mutate(body)
    assert_error(await me.client.post(f"{API}/rotation", json=body), 422, "validation_error")
