"""Rotation as a real agent lives it (docs/e2e.md, "Rotation"): a camera paired to an
end-to-end household seals with its own delivery code against a real server. After a
member is removed, the agent -- holding a set that still names them -- fetches the
current set, signed, before it seals its next clip: that clip does not open with the
removed member's key and opens with the others'; the earlier clip still opens with it.
A server that cannot be reached, or answers a set whose signature does not verify,
leaves the agent sealing to the set it holds (the clip is not lost), and it says so."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.delivery.members import MemberSetRefused, checked_state
from doorwarden.agent.delivery.worker import Delivery
from doorwarden.config import Settings
from doorwarden.crypto.errors import NotARecipientError
from doorwarden.crypto.keys import RecipientKey, SigningKey, key_id
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.member_set import MemberSet, sign_member_set
from doorwarden.crypto.seal import open_clip, open_thumbnail
from doorwarden.crypto.wrap import unwrap_key
from doorwarden.formats.clip_files import SealedPaths, read_manifest
from tests.factories import Factory
from tests.functional.devices.e2e_agent import (
    deliver,
    e2e_household,
    paired_delivery,
    record,
    signed_in,
)
from tests.live_server import free_port, running_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")


def _held_by_server(owner: httpx.Client, household: object) -> list[dict[str, bytes]]:
    """Every clip of the household as the server holds it (a member's sealed export)."""
    out = []
    listed = owner.get(f"/api/v1/households/{household}/clips")
    assert listed.status_code == 200, listed.text
    for clip in sorted(listed.json(), key=lambda c: c["sequence"]):
        export = owner.get(f"/api/v1/households/{household}/clips/{clip['id']}/sealed")
        assert export.status_code == 200, export.text
        with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
            files = {name.split(".", 1)[1]: archive.read(name) for name in archive.namelist()
                     if name[0].isdigit()}  # fmt: skip
        out.append(files)
    return out


def _open(files: dict[str, bytes], device: bytes, key: RecipientKey) -> tuple[bytes, bytes]:
    signed = SignedManifest.loads(files["manifest.json"])
    mp4 = b"".join(open_clip(signed, device, [files["clip.dws"]], key))
    return mp4, open_thumbnail(signed, device, files["thumb.dws"], key)


async def test_an_agent_with_an_outdated_member_set_fetches_the_signed_one_before_sealing(
    settings: Settings, factory: Factory, tmp_path: Path
) -> None:
    home, users, keys = await e2e_household(factory, members=3)
    owner_key, removed_key, staying_key = keys
    live = settings.model_copy(update={"development": True})
    with running_server(live) as url:
        owner = await asyncio.to_thread(signed_in, url, users[0].email)

        def run() -> None:
            # A set verified at most 0.2 s before sealing; the heartbeat (60 s) never runs.
            delivery = paired_delivery(url, owner, home, tmp_path / "agent",
                                       member_set_max_age_s=0.2)  # fmt: skip
            try:
                first = record(delivery)
                deliver(delivery, 1)
                told = {k for k, _ in delivery.identity.recipients}
                assert told == {key_id(k.public) for k in keys}

                removed = owner.delete(f"/api/v1/households/{home}/members/{users[1].id}")
                assert removed.status_code == 204, removed.text
                # The agent still holds the set with the removed member in it...
                assert key_id(removed_key.public) in {k for k, _ in delivery.identity.recipients}
                time.sleep(0.25)  # ...and it is now older than the bound (0.2 s)
                second = record(delivery)
                with capture_logs() as logs:
                    deliver(delivery, 1)
                assert not [e for e in logs if e["event"] == "delivery.member_set_stale"], logs
                assert key_id(removed_key.public) not in {
                    k for k, _ in delivery.identity.recipients
                }

                device = delivery.store.signing_key().public  # what signed the manifests
                old, new = _held_by_server(owner, home)
                # The clip before the removal: every member then opens it, the removed one too.
                for key in keys:
                    assert _open(old, device, key) == (first.mp4, first.jpeg)
                # The clip after: not the removed member; the others do.
                with pytest.raises(NotARecipientError):
                    _open(new, device, removed_key)
                for wrapped in SignedManifest.loads(new["manifest.json"]).manifest.recipients:
                    with pytest.raises(NotARecipientError):
                        unwrap_key(wrapped, removed_key)
                for key in (owner_key, staying_key):
                    assert _open(new, device, key) == (second.mp4, second.jpeg)
            finally:
                delivery.stop()

        await asyncio.to_thread(run)
        await asyncio.to_thread(owner.close)


def _sealed_recipients(delivery: Delivery) -> set[str]:
    pending = delivery.sealed.pending()
    assert pending, "nothing was sealed"
    return {w.recipient for w in read_manifest(SealedPaths(delivery.sealed.directory,
                                                           pending[-1].sequence).manifest)
            .manifest.recipients}  # fmt: skip


async def test_an_unreachable_server_leaves_the_agent_sealing_to_the_set_it_holds(
    settings: Settings, factory: Factory, tmp_path: Path
) -> None:
    home, users, keys = await e2e_household(factory, members=2)
    live = settings.model_copy(update={"development": True})
    with running_server(live) as url:
        owner = await asyncio.to_thread(signed_in, url, users[0].email)
        delivery = await asyncio.to_thread(
            paired_delivery, url, owner, home, tmp_path / "agent", member_set_max_age_s=0.0
        )
        await asyncio.to_thread(owner.close)
    # The server is gone (its port closed): the set cannot be refreshed.
    try:
        held = {k for k, _ in delivery.identity.recipients}
        assert held == {key_id(k.public) for k in keys}
        record(delivery)
        with capture_logs() as logs:
            await asyncio.to_thread(delivery.step)
        stale = [e for e in logs if e["event"] == "delivery.member_set_stale"]
        assert stale and stale[0]["effect"].startswith("sealing to the last member set")
        assert _sealed_recipients(delivery) == held  # sealed all the same: not lost
    finally:
        delivery.stop()


class _Forger:
    """A man in the middle: answers GET /api/v1/device with a member set naming only
    `extra`, signed with a key that is not the server's."""

    def __init__(self, delivery: Delivery, extra: RecipientKey) -> None:
        identity = delivery.identity
        forged = MemberSet(
            device_id=identity.device_id, household_id=identity.household_id, mode="e2e",
            recipients=((key_id(extra.public), extra.public),),
            issued_at="2099-01-01T00:00:00+00:00",
        )  # fmt: skip
        self.document, self.signature = sign_member_set(
            SigningKey.generate().private_bytes(), forged
        )
        self.identity = identity

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/device":
            body: dict[str, Any] = self.identity.to_json()
            return httpx.Response(200, json={
                "mode": "e2e", "recipients": body["recipients"], "plan": body["plan"],
                "member_set": {"document": self.document, "signature": self.signature},
            })  # fmt: skip
        return httpx.Response(503, json={"error": {"code": "down", "message": "down"}})


async def test_a_member_set_not_signed_by_the_server_is_not_used(
    settings: Settings, factory: Factory, tmp_path: Path
) -> None:
    home, users, keys = await e2e_household(factory, members=1)
    live = settings.model_copy(update={"development": True})
    with running_server(live) as url:
        owner = await asyncio.to_thread(signed_in, url, users[0].email)
        delivery = await asyncio.to_thread(
            paired_delivery, url, owner, home, tmp_path / "agent", member_set_max_age_s=0.0
        )
        await asyncio.to_thread(owner.close)
    attacker = RecipientKey.generate()
    forger = _Forger(delivery, attacker)
    delivery.client = delivery.uploader.client = httpx.Client(
        transport=httpx.MockTransport(forger.handle), base_url=f"http://127.0.0.1:{free_port()}"
    )
    try:
        record(delivery)
        with capture_logs() as logs:
            await asyncio.to_thread(delivery.step)
        assert any(e["event"] == "upload.member_set_refused" for e in logs), logs
        assert _sealed_recipients(delivery) == {key_id(keys[0].public)}
        assert key_id(attacker.public) not in {k for k, _ in delivery.identity.recipients}
    finally:
        delivery.stop()


def _answer(private: bytes, members: MemberSet) -> dict[str, Any]:
    document, signature = sign_member_set(private, members)
    return {
        "mode": members.mode, "recipients": [], "plan": {"kind": "recording"},
        "member_set": {"document": document, "signature": signature},
    }  # fmt: skip


def test_a_replayed_older_set_or_one_for_another_device_is_refused() -> None:
    """The agent's checks of an answer (agent/delivery/members.py), one by one."""
    server = SigningKey.generate()
    member = RecipientKey.generate()
    newer = MemberSet("dev-1", "hh-1", "e2e", ((key_id(member.public), member.public),),
                      "2026-12-07T10:00:00+00:00")  # fmt: skip
    older = dataclasses.replace(newer, recipients=(), issued_at="2026-12-07T09:59:00+00:00")
    answer = _answer(server.private_bytes(), newer)
    taken = checked_state(answer, device_id="dev-1", pinned=server.public, held_issued_at=None)
    assert taken.signed and taken.fields["recipients"][0]["key_id"] == key_id(member.public)
    assert taken.fields["member_set_issued_at"] == newer.issued_at
    with pytest.raises(MemberSetRefused, match="a replay"):
        checked_state(_answer(server.private_bytes(), older), device_id="dev-1",
                      pinned=server.public, held_issued_at=newer.issued_at)  # fmt: skip
    with pytest.raises(MemberSetRefused, match="another device"):
        checked_state(answer, device_id="dev-2", pinned=server.public, held_issued_at=None)
    with pytest.raises(MemberSetRefused, match="does not verify"):
        checked_state(answer, device_id="dev-1", pinned=SigningKey.generate().public,
                      held_issued_at=None)  # fmt: skip
    # No signed set: only standard mode is taken from plain fields.
    plain = {"mode": "e2e", "recipients": [], "plan": {"kind": "recording"}}
    with pytest.raises(MemberSetRefused, match="without a signed member set"):
        checked_state(plain, device_id="dev-1", pinned=server.public, held_issued_at=None)
    standard = checked_state({**plain, "mode": "standard"}, device_id="dev-1",
                             pinned=server.public, held_issued_at=None)  # fmt: skip
    assert not standard.signed and standard.fields["mode"] == "standard"
