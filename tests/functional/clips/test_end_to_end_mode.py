"""End-to-end mode: clips wrapped only to the members' own keys. The server stores and
checks ciphertext it cannot read; a member opens clips with their key, on their machine."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorwarden.cli.app import app as cli
from doorwarden.crypto.keys import RecipientKey, b64d, b64e, key_id
from tests.factories import Factory, assert_error
from tests.sealed_clips import seal_clip, upload


async def test_a_household_in_end_to_end_mode(factory: Factory, tmp_path: Path) -> None:
    owner, partner = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, partner)
    camera = await factory.camera(owner, home)
    browser = await factory.signed_in(owner)

    refused = await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    assert "No member" in str(assert_error(refused, 400, "invalid_input")["message"])

    # Each member makes a key on their own machine and registers its public half.
    owner_key, partner_key = RecipientKey.generate(), RecipientKey.generate()
    shared = await factory.signed_in(partner)
    for client, key in ((browser, owner_key), (shared, partner_key)):
        registered = await client.put(
            "/api/v1/account/e2e-key", json={"public_key": b64e(key.public)}
        )
        assert registered.status_code == 200 and registered.json()["key_id"] == key_id(key.public)
    # Registering a key decides who reads footage: not something a leaked API token may do.
    token_client = await factory.with_token(owner)
    assert_error(
        await token_client.put(
            "/api/v1/account/e2e-key", json={"public_key": b64e(owner_key.public)}
        ),
        403,
    )
    assert_error(
        await shared.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"}), 403
    )
    switched = await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    assert switched.status_code == 200 and switched.json()["encryption"] == "e2e"

    state = (await camera.client.get("/api/v1/device")).json()
    assert state["mode"] == "e2e"
    told = {r["key_id"] for r in state["recipients"]}
    assert told == {key_id(owner_key.public), key_id(partner_key.public)}
    household_key = camera.recipients[0]  # what the camera was given at pairing
    assert key_id(household_key) not in told  # the server's own key is not among them

    members = [b64d(r["public_key"], what="k", length=32) for r in state["recipients"]]
    sealed = seal_clip(camera.id, camera.key, members, 0, size=200_000, mode="e2e")
    done = await upload(camera.client, sealed)
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    clip_id = done.json()["clip_id"]

    # The server lists it but cannot show it.
    assert [c["id"] for c in (await browser.get(f"/api/v1/households/{home}/clips")).json()] == [
        clip_id
    ]
    for path in ("video", "thumbnail"):
        response = await browser.get(f"/api/v1/households/{home}/clips/{clip_id}/{path}")
        assert "end-to-end" in str(assert_error(response, 409, "end_to_end")["message"])

    # The pages say how to open it rather than showing a player that cannot play.
    page = await browser.get(f"/households/{home}/clips/{clip_id}")
    assert page.status_code == 200
    assert "doorwarden decrypt" in page.text and "<video" not in page.text
    day = await browser.get(f"/households/{home}/clips", params={"day": "2026-11-25"})
    assert clip_id in day.text and f"{clip_id}/thumbnail" not in day.text

    # A member takes the sealed original and opens it with their own key.
    export = await shared.get(f"/api/v1/households/{home}/clips/{clip_id}/sealed")
    folder = tmp_path / "export"
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        archive.extractall(folder)
    key_file = tmp_path / "partner.key"
    key_file.write_text(b64e(partner_key.private_bytes()))
    runner = CliRunner()
    opened = runner.invoke(
        cli, ["decrypt", str(folder), "--key", str(key_file), "--out", str(tmp_path / "out")]
    )
    assert opened.exit_code == 0, opened.output
    assert (tmp_path / "out" / "000000000000.mp4").read_bytes() == sealed.plaintext
    assert (tmp_path / "out" / "000000000000.jpg").read_bytes().startswith(b"\xff\xd8")
    stranger = tmp_path / "stranger.key"
    stranger.write_text(b64e(RecipientKey.generate().private_bytes()))
    denied = runner.invoke(
        cli, ["decrypt", str(folder), "--key", str(stranger), "--out", str(tmp_path / "x")]
    )
    assert denied.exit_code == 1
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").iterdir())


async def test_an_end_to_end_clip_for_nobody_in_the_household_is_refused(factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    outsider = RecipientKey.generate()
    sealed = seal_clip(camera.id, camera.key, [outsider.public], 0, mode="e2e")
    assert_error(await upload(camera.client, sealed), 422, "missing_recipient")


def test_keys_new_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    target = tmp_path / "me.key"
    result = CliRunner().invoke(cli, ["keys", "new", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    private = RecipientKey.from_bytes(b64d(target.read_text().strip(), what="k", length=32))
    assert b64e(private.public) in result.output
    again = CliRunner().invoke(cli, ["keys", "new", "--out", str(target)])
    assert again.exit_code == 2 and "not overwriting" in again.output


@pytest.mark.parametrize(
    "body", [{}, {"public_key": "!" * 43}, {"public_key": "A" * 43, "extra": 1}, {"public_key": 5}]
)
async def test_bad_member_keys_are_refused(factory: Factory, body: dict[str, object]) -> None:
    browser = await factory.signed_in(await factory.user())
    response = await browser.put("/api/v1/account/e2e-key", json=body)
    assert response.status_code in (400, 422), response.text
    assert_error(response, response.status_code)
    assert_error(await browser.get("/api/v1/account/e2e-key"), 404)


@pytest.mark.parametrize("body", [{}, {"mode": "plaintext"}, {"mode": "e2e", "x": 1}])
async def test_bad_encryption_modes_are_refused(factory: Factory, body: dict[str, object]) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    browser = await factory.signed_in(owner)
    assert_error(await browser.put(f"/api/v1/households/{home}/encryption", json=body), 422)
    stranger = await factory.signed_in(await factory.user())
    good = {"mode": "standard"}
    assert_error(await stranger.put(f"/api/v1/households/{home}/encryption", json=good), 403)
