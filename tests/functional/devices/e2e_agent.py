"""An end-to-end household and a real agent's delivery code against a real server (uvicorn
on loopback, tests/live_server.py): for the rotation and no-plaintext tests. The agent is
paired through the real pairing API and seals with its own code path (Delivery: the
member set fetched and verified, SealedSpool, Uploader); only the camera is replaced by
clips written straight into its plain spool, with plaintext the test knows."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from doorwarden.accounts.models import User
from doorwarden.agent.config.models import UploadConfig
from doorwarden.agent.delivery.identity import IdentityStore
from doorwarden.agent.delivery.pairing import pair
from doorwarden.agent.delivery.worker import Delivery
from doorwarden.agent.recording.spool import Spool
from doorwarden.crypto.keys import RecipientKey, b64e
from tests.factories import PASSWORD, Factory


@dataclass(frozen=True)
class Plain:
    """What the camera recorded: the MP4 and thumbnail bytes the server must never hold."""

    mp4: bytes
    jpeg: bytes


async def e2e_household(
    factory: Factory, members: int = 2, *, e2e: bool = True
) -> tuple[object, list[User], list[RecipientKey]]:
    """A household (its id), its members (owner first; each registered a key through the
    API) and their keys; switched to end-to-end unless `e2e` is False."""
    owner = await factory.user()
    home = await factory.household(owner)
    users = [owner]
    for _ in range(members - 1):
        user = await factory.user()
        await factory.share(home, owner, user)
        users.append(user)
    keys = []
    for user in users:
        key = RecipientKey.generate()
        client = await factory.signed_in(user)
        done = await client.put("/api/v1/account/e2e-key", json={"public_key": b64e(key.public)})
        assert done.status_code == 200, done.text
        keys.append(key)
    if e2e:
        browser = await factory.signed_in(owner)
        switched = await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
        assert switched.status_code == 200, switched.text
    return home, users, keys


def signed_in(url: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    login = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    client.headers["x-csrf-token"] = login.json()["csrf_token"]
    return client


def paired_delivery(
    url: str, owner: httpx.Client, household: object, root: Path, **kwargs: float
) -> Delivery:
    """A camera paired to `household` through the real API, with its delivery loop (not
    started: the test drives `step()`)."""
    code = owner.post(f"/api/v1/households/{household}/pairing-codes")
    assert code.status_code == 201, code.text
    store = IdentityStore(root / "state")
    pair(store, server=url, code=code.json()["code"], name="Front door")
    upload = UploadConfig(part_bytes=64 * 1024, backoff_initial_s=0.05, backoff_max_s=0.2)
    delivery = Delivery(Spool(root / "spool"), store, upload, poll_s=0.05, **kwargs)
    delivery.recover()
    return delivery


def record(delivery: Delivery, *, size: int = 150_000) -> Plain:
    """A clip committed to the agent's plain spool, as its recorder commits one: an MP4
    (ftyp, then an mdat of random bytes) and a JPEG thumbnail."""
    mdat = os.urandom(size)
    mp4 = (
        (24).to_bytes(4, "big") + b"ftypisom" + b"\x00\x00\x02\x00isomiso2"
        + (len(mdat) + 8).to_bytes(4, "big") + b"mdat" + mdat
    )  # fmt: skip
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(3000) + b"\xff\xd9"
    spool = delivery.spool
    tmp = spool.tmp_path()
    tmp.write_bytes(mp4)
    start = datetime.now(UTC)
    meta = {
        "camera": "front",
        "start_utc": start.isoformat(timespec="milliseconds"),
        "end_utc": (start + timedelta(seconds=4)).isoformat(timespec="milliseconds"),
        "duration_s": 4.0,
        "labels": ["motion", "person"],
        "peak_score": 0.4,
        "codec": "h264",
        "width": 320,
        "height": 192,
    }
    spool.commit(tmp, jpeg, meta)
    return Plain(mp4, jpeg)


def deliver(delivery: Delivery, clips: int, timeout_s: float = 30.0) -> None:
    """Drive the delivery loop until `clips` more clips were verified by the server."""
    wanted = delivery.delivered + clips
    deadline = time.monotonic() + timeout_s
    while delivery.delivered < wanted:
        assert time.monotonic() < deadline, f"not delivered: {delivery.status.refused}"
        delay = delivery.step()
        if delivery.delivered < wanted:
            time.sleep(min(max(delay, 0.01), 0.2))
