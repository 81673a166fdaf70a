"""Passkey backups through real WebAuthn ceremonies (py_webauthn verifying what a
software authenticator sends): the backup is released only after a verified assertion;
replayed challenges, a wrong origin, a forged signature and a backup that does not match
the ceremony are refused."""

from __future__ import annotations

import os
from typing import Any

from doorwarden.crypto import member_backup
from doorwarden.crypto.keys import b64d, b64e
from tests.factories import BASE_URL, Factory, assert_error
from tests.functional.keyring.authenticator import SoftAuthenticator
from tests.functional.keyring.helpers import API, Member, member_with_key

PRF_OUTPUT = os.urandom(32)  # what the authenticator's PRF would give; the server never sees it


async def _register(me: Member, device: SoftAuthenticator) -> tuple[dict[str, Any], Any]:
    body = await _register_body(me, device)
    return body, await me.client.post(f"{API}/passkeys", json=body)


async def _register_body(me: Member, device: SoftAuthenticator) -> dict[str, Any]:
    started = (await me.client.post(f"{API}/passkeys/registration-options")).json()
    salt = b64d(started["prf_salts"][""], what="salt", length=32)
    backup = member_backup.passkey_backup(
        me.key.private_bytes(),
        user_id=me.user_id,
        prf_output=PRF_OUTPUT,
        credential_id=b64e(device.credential_id),
        prf_salt=salt,
    )
    return {
        "ceremony_id": started["ceremony_id"],
        "credential": device.create(started["options"]),
        "backup": backup,
    }


async def test_a_passkey_backup_is_released_after_a_verified_assertion(factory: Factory) -> None:
    me = await member_with_key(factory)
    device = SoftAuthenticator(rp_id="testserver", origin=BASE_URL)
    body, registered = await _register(me, device)
    assert registered.status_code == 201, registered.text
    assert_error(await me.client.post(f"{API}/passkeys", json=body), 410, "gone")  # replayed
    started = (await me.client.post(f"{API}/passkeys/authentication-options")).json()
    assert list(started["prf_salts"]) == [b64e(device.credential_id)]
    assert started["options"]["allowCredentials"][0]["id"] == b64e(device.credential_id)
    unlock = {"ceremony_id": started["ceremony_id"], "credential": device.get(started["options"])}
    released = await me.client.post(f"{API}/passkeys/unlock", json=unlock)
    assert released.status_code == 200, released.text
    opened = member_backup.open_passkey_backup(
        released.json(), user_id=me.user_id, prf_output=PRF_OUTPUT
    )
    assert opened == me.key.private_bytes()
    assert_error(await me.client.post(f"{API}/passkeys/unlock", json=unlock), 410, "gone")


async def test_a_registration_from_another_origin_is_refused(factory: Factory) -> None:
    me = await member_with_key(factory)
    device = SoftAuthenticator(rp_id="testserver", origin="https://evil.example")
    _, registered = await _register(me, device)
    assert_error(registered, 400, "invalid_input")
    assert_error(await me.client.post(f"{API}/passkeys/authentication-options"), 404)


async def test_a_backup_that_does_not_match_the_ceremony_is_refused(factory: Factory) -> None:
    me = await member_with_key(factory)
    device = SoftAuthenticator(rp_id="testserver", origin=BASE_URL)
    started = (await me.client.post(f"{API}/passkeys/registration-options")).json()
    backup = member_backup.passkey_backup(
        me.key.private_bytes(),
        user_id=me.user_id,
        prf_output=PRF_OUTPUT,
        credential_id=b64e(device.credential_id),
        prf_salt=os.urandom(32),  # not the salt the server chose
    )
    body = {
        "ceremony_id": started["ceremony_id"],
        "credential": device.create(started["options"]),
        "backup": backup,
    }
    assert_error(await me.client.post(f"{API}/passkeys", json=body), 400, "invalid_input")


async def test_a_forged_assertion_releases_nothing(factory: Factory) -> None:
    me = await member_with_key(factory)
    device = SoftAuthenticator(rp_id="testserver", origin=BASE_URL)
    _, registered = await _register(me, device)
    assert registered.status_code == 201
    impostor = SoftAuthenticator(
        rp_id="testserver", origin=BASE_URL, credential_id=device.credential_id
    )  # same credential id, another private key
    started = (await me.client.post(f"{API}/passkeys/authentication-options")).json()
    unlock = {"ceremony_id": started["ceremony_id"], "credential": impostor.get(started["options"])}
    assert_error(await me.client.post(f"{API}/passkeys/unlock", json=unlock), 400, "invalid_input")


async def test_another_members_ceremony_and_oversized_credentials_are_refused(
    factory: Factory,
) -> None:
    me, other = await member_with_key(factory), await member_with_key(factory)
    device = SoftAuthenticator(rp_id="testserver", origin=BASE_URL)
    started = (await me.client.post(f"{API}/passkeys/registration-options")).json()
    body = {"ceremony_id": started["ceremony_id"], "credential": device.get(started["options"])}
    assert_error(await other.client.post(f"{API}/passkeys/unlock", json=body), 404)
    huge = {"ceremony_id": started["ceremony_id"], "credential": {"id": "x" * 20_000}}
    assert_error(await me.client.post(f"{API}/passkeys/unlock", json=huge), 422)
    unknown = {**body, "extra": 1}
    assert_error(await me.client.post(f"{API}/passkeys/unlock", json=unknown), 422)


JUNK: list[Any] = [
    {},
    {"id": "abc", "rawId": "abc", "type": "public-key", "response": 5},
    {"id": "abc", "rawId": "!!", "type": "public-key", "response": {"clientDataJSON": "%%"}},
    {"id": 7, "response": {"clientDataJSON": "e30", "attestationObject": "oA"}},
    {
        "id": "abcdefgh",
        "rawId": "abcdefgh",
        "type": "public-key",
        "response": {"clientDataJSON": "bm90IGpzb24", "attestationObject": "AAAA"},
    },
]


async def test_junk_credentials_are_refused_cleanly(factory: Factory) -> None:
    me = await member_with_key(factory)
    device = SoftAuthenticator(rp_id="testserver", origin=BASE_URL)
    for junk in JUNK:
        body = await _register_body(me, device)
        body["credential"] = junk
        response = await me.client.post(f"{API}/passkeys", json=body)
        assert response.status_code in (400, 422), (junk, response.text)
        assert_error(response, response.status_code)
    _, registered = await _register(me, device)
    assert registered.status_code == 201
    for junk in JUNK:
        started = (await me.client.post(f"{API}/passkeys/authentication-options")).json()
        unlock = {"ceremony_id": started["ceremony_id"], "credential": junk}
        response = await me.client.post(f"{API}/passkeys/unlock", json=unlock)
        assert response.status_code in (400, 404, 422), (junk, response.text)
        assert_error(response, response.status_code)
    junk_with_known_id = {"id": b64e(device.credential_id), "response": {"signature": 5}}
    started = (await me.client.post(f"{API}/passkeys/authentication-options")).json()
    unlock = {"ceremony_id": started["ceremony_id"], "credential": junk_with_known_id}
    assert_error(await me.client.post(f"{API}/passkeys/unlock", json=unlock), 400, "invalid_input")
