"""Passphrase backups: stored as the page made them, fetched (rate-limited) by their owner
only, refused when malformed, of a key that is not current, or without the CSRF token."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from doorwarden.clock import ManualClock
from doorwarden.crypto import member_backup
from doorwarden.crypto.keys import RecipientKey
from doorwarden.keyring.service import FETCHES_PER_WINDOW
from tests.factories import Factory, assert_error, make_client
from tests.functional.keyring.helpers import API, CHEAP, member_with_key

PASSPHRASE = "correct horse battery staple"


def _record(private: bytes, user_id: str) -> dict[str, Any]:
    return member_backup.passphrase_backup(private, user_id=user_id, passphrase=PASSPHRASE, **CHEAP)


async def test_a_passphrase_backup_round_trip(factory: Factory) -> None:
    me = await member_with_key(factory)
    record = _record(me.key.private_bytes(), me.user_id)
    stored = await me.client.put(f"{API}/backups/passphrase", json=record)
    assert stored.status_code == 200, stored.text
    assert stored.json()["key_id"] == me.key_id
    fetched = await me.client.post(f"{API}/backups/passphrase/fetch")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == record
    opened = member_backup.open_passphrase_backup(
        fetched.json(), user_id=me.user_id, passphrase=PASSPHRASE
    )
    assert opened == me.key.private_bytes()
    with pytest.raises(member_backup.WrongPassphrase, match=r"^wrong passphrase$"):
        member_backup.open_passphrase_backup(fetched.json(), user_id=me.user_id, passphrase="nope")
    overview = (await me.client.get(API)).json()
    assert overview["key_id"] == me.key_id
    assert [b["method"] for b in overview["backups"]] == ["passphrase"]


async def test_another_member_never_gets_my_backup(factory: Factory) -> None:
    me, other = await member_with_key(factory), await member_with_key(factory)
    record = _record(me.key.private_bytes(), me.user_id)
    assert (await me.client.put(f"{API}/backups/passphrase", json=record)).status_code == 200
    assert_error(await other.client.post(f"{API}/backups/passphrase/fetch"), 404, "not_found")


async def test_a_backup_of_a_key_that_is_not_current_is_refused(factory: Factory) -> None:
    me = await member_with_key(factory)
    old = _record(RecipientKey.generate().private_bytes(), me.user_id)
    assert_error(await me.client.put(f"{API}/backups/passphrase", json=old), 409, "stale_key")
    keyless_user = await factory.user()
    keyless = await factory.signed_in(keyless_user)
    record = _record(me.key.private_bytes(), str(keyless_user.id))
    assert_error(await keyless.put(f"{API}/backups/passphrase", json=record), 409, "conflict")


def _mutations() -> list[tuple[str, Any]]:
    good = _record(RecipientKey.generate().private_bytes(), "u")

    def changed(path: list[str], value: Any) -> dict[str, Any]:
        record = copy.deepcopy(good)
        target = record
        for part in path[:-1]:
            target = target[part]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return record

    return [
        ("unknown key", {**good, "hint": "my dog"}),
        ("missing nonce", changed(["nonce"], KeyError)),
        ("unknown kdf key", changed(["kdf", "pepper"], "x")),
        ("memory below the floor", changed(["kdf", "m_kib"], 1024)),
        ("memory above the ceiling", changed(["kdf", "m_kib"], 4 * 1024 * 1024)),
        ("t as a string", changed(["kdf", "t"], "3")),
        ("oversized ciphertext", changed(["ciphertext"], "A" * 100_000)),
        ("short salt", changed(["kdf", "salt"], "AAAA")),
        ("not base64url", changed(["nonce"], "!" * 16)),
        ("passkey method with an argon2 kdf", changed(["method"], "passkey")),
        ("method unknown", changed(["method"], "password")),
        ("key id not hex", changed(["key_id"], "Z" * 32)),
        ("not an object", ["key_id"]),
    ]


@pytest.mark.parametrize(("why", "body"), _mutations(), ids=[m[0] for m in _mutations()])
async def test_malformed_backups_are_refused(factory: Factory, why: str, body: Any) -> None:
    me = await member_with_key(factory)
    if isinstance(body, dict) and "key_id" in body and body["key_id"] != "Z" * 32:
        body["key_id"] = me.key_id  # only the shape is wrong
    response = await me.client.put(f"{API}/backups/passphrase", json=body)
    assert_error(response, 422, "validation_error")
    assert_error(await me.client.post(f"{API}/backups/passphrase/fetch"), 404)


async def test_fetching_the_passphrase_backup_is_rate_limited(
    factory: Factory, clock: ManualClock
) -> None:
    me = await member_with_key(factory)
    record = _record(me.key.private_bytes(), me.user_id)
    assert (await me.client.put(f"{API}/backups/passphrase", json=record)).status_code == 200
    for _ in range(FETCHES_PER_WINDOW):
        assert (await me.client.post(f"{API}/backups/passphrase/fetch")).status_code == 200
    refused = await me.client.post(f"{API}/backups/passphrase/fetch")
    assert_error(refused, 429, "too_many_attempts")
    assert int(refused.headers["retry-after"]) > 0
    clock.advance(timedelta(hours=1, seconds=1))
    assert (await me.client.post(f"{API}/backups/passphrase/fetch")).status_code == 200


async def test_without_the_csrf_token_or_with_an_api_token_nothing_happens(
    factory: Factory,
) -> None:
    me = await member_with_key(factory)
    record = _record(me.key.private_bytes(), me.user_id)
    del me.client.headers["x-csrf-token"]
    assert_error(await me.client.put(f"{API}/backups/passphrase", json=record), 403, "csrf_failed")
    assert_error(await me.client.post(f"{API}/backups/passphrase/fetch"), 403, "csrf_failed")
    token = await factory.with_token(me.user)
    assert_error(await token.put(f"{API}/backups/passphrase", json=record), 403, "forbidden")
    assert_error(await token.get(API), 403, "forbidden")
    assert_error(await make_client(factory.app).get(API), 401, "not_authenticated")
