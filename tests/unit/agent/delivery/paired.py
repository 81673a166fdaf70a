"""A paired agent on disk for the delivery tests: a real identity, signing key, plain
spool and sealed spool (random bytes stand in for MP4s: the crypto does not care), and
a device API answered by `httpx.MockTransport` or a real HTTP server: the transport is
the network, not our code."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from doorwarden.agent.config.models import UploadConfig
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore, Plan
from doorwarden.agent.delivery.sealer import SealedSpool
from doorwarden.agent.delivery.worker import Delivery
from doorwarden.agent.recording.spool import Spool, SpoolEntry
from doorwarden.crypto.keys import RecipientKey, key_id

SERVER = "https://doorwarden.example"
CLIP = re.compile(r"^/api/v1/device/clips/(\d+)(/data|/thumbnail|/complete)?$")


@dataclass
class Paired:
    root: Path
    store: IdentityStore
    identity: DeviceIdentity

    @property
    def spool(self) -> Spool:
        return Spool(self.root / "spool")

    def record(self, n: int, *, size: int = 3000) -> list[SpoolEntry]:
        return [commit_plain(self.spool, size=size) for _ in range(n)]

    def sealed(self, **kwargs: Any) -> SealedSpool:
        sealed = SealedSpool(
            self.spool.directory, self.identity, self.store.signing_key(), **kwargs
        )
        sealed.recover(self.spool)
        return sealed

    def seal(self, n: int, *, size: int = 3000) -> SealedSpool:
        self.record(n, size=size)
        sealed = self.sealed()
        sealed.seal_pending(self.spool)
        return sealed

    def delivery(self, client: httpx.Client, **kwargs: Any) -> Delivery:
        upload = UploadConfig(part_bytes=4096, backoff_initial_s=0.05, backoff_max_s=0.4)
        return Delivery(self.spool, self.store, upload, client=client, poll_s=0.05, **kwargs)


def paired(root: Path, server: str = SERVER) -> Paired:
    household = RecipientKey.generate()
    store = IdentityStore(root / "state")
    store.signing_key()
    identity = DeviceIdentity(
        server=server,
        device_id="dev-1",
        household_id="hh-1",
        token="dwd_secret",
        mode="standard",
        recipients=[(key_id(household.public), household.public)],
        plan=Plan("recording", 30),
    )
    store.save(identity)
    return Paired(root, store, identity)


def commit_plain(spool: Spool, *, size: int = 3000) -> SpoolEntry:
    tmp = spool.tmp_path()
    tmp.write_bytes(os.urandom(size))
    start = datetime.now(UTC)
    meta = {
        "camera": "front",
        "start_utc": start.isoformat(timespec="milliseconds"),
        "end_utc": (start + timedelta(seconds=2)).isoformat(timespec="milliseconds"),
        "duration_s": 2.0,
        "labels": ["motion"],
        "peak_score": 0.25,
        "codec": "h264",
        "width": 160,
        "height": 96,
    }
    return spool.commit(tmp, b"\xff\xd8 thumb", meta)


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"refused: {code}", "details": {}}}
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeServer:
    """The device API as a transport: `answers[sequence]` answers that clip's offer
    (a Response, or a callable for several attempts); others are accepted as verified."""

    identity: DeviceIdentity
    answers: dict[int, httpx.Response | Callable[[], httpx.Response]] = field(default_factory=dict)
    offers: list[int] = field(default_factory=list)
    health: list[dict[str, Any]] = field(default_factory=list)
    health_status: int = 204

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/device" and request.method == "GET":
            body = self.identity.to_json()
            return httpx.Response(
                200,
                json={"mode": body["mode"], "recipients": body["recipients"], "plan": body["plan"]},
            )
        if path == "/api/v1/device/health" and request.method == "PUT":
            self.health.append(json.loads(request.content))
            return httpx.Response(self.health_status)
        match = CLIP.match(path)
        if match and match.group(2) is None and request.method == "PUT":
            sequence = int(match.group(1))
            self.offers.append(sequence)
            answer = self.answers.get(sequence)
            if answer is None:
                return httpx.Response(200, json={"status": "verified", "received": 0})
            return answer() if callable(answer) else answer
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))
