"""MQTT end to end: a real agent (AgentApp with a paced synthetic camera, paired through
the real pairing API) connected to a real server (uvicorn on loopback) and to a real
Mosquitto, with Home Assistant's side played by a paho client on the broker.

* the camera's motion reaches its state topic; the discovery offers the select and the
  switch (the agent has the owner's token);
* Home Assistant's mode and detection commands go to the server as the owner's requests:
  the server audits them as the owner's, pushes the change to the agent, and only then
  does the state topic change;
* bad commands (unknown option, oversized, retained) are ignored with a log line and
  change nothing; a shared member's token changes nothing either (the server refuses);
* no image leaves through the broker (snapshots are off), the agent's stop says offline.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from structlog.testing import capture_logs

from doorwarden.accounts.models import User
from doorwarden.agent.app import AgentApp
from doorwarden.agent.config.models import AgentConfig
from doorwarden.agent.delivery.identity import IdentityStore
from doorwarden.agent.delivery.pairing import pair
from doorwarden.audit.models import AuditEvent
from doorwarden.config import Settings
from tests.factories import PASSWORD, Factory
from tests.live_server import running_server
from tests.mosquitto import Recorder, clear_retained, recording, retained, shared_broker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")
WAIT_S = 30.0  # an agent's start (its camera, its link) on a loaded machine


@dataclass
class Home:
    url: str
    household: uuid.UUID
    owner: User
    shared: User
    tokens: dict[str, str]
    root: Path
    broker: tuple[str, int]
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    device_id: str = ""
    agents: list[AgentApp] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"dwtest-{self.tag}"

    @property
    def ha(self) -> str:
        return f"dwha-{self.tag}"

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"

    def config(self, token: str | None) -> AgentConfig:
        token_file = None
        if token is not None:
            token_file = self.root / f"{token}.token"
            token_file.write_text(self.tokens[token] + "\n")
        camera = {
            "name": "front",
            "source": {"kind": "synthetic", "scene": "object", "enter_at_s": 2.0,
                       "duration_s": 600, "width": 320, "height": 192, "fps": 10, "pace": True},
            "detect": {"kind": "none"},
            "record": {"pre_roll_s": 0.5, "post_roll_s": 0.5, "min_clip_s": 1, "max_clip_s": 3},
        }  # fmt: skip
        mqtt = {
            "url": f"mqtt://{self.broker[0]}:{self.broker[1]}", "topic_prefix": self.prefix,
            "discovery_prefix": self.ha, "reconnect_initial_s": 0.2,
            "server_token_file": str(token_file) if token_file else None,
        }  # fmt: skip
        return AgentConfig.model_validate(
            {"spool_dir": str(self.root / "spool"), "state_dir": str(self.root / "state"),
             "cameras": [camera], "mqtt": mqtt}
        )  # fmt: skip

    def start_agent(self, token: str | None) -> AgentApp:
        agent = AgentApp.from_config(self.config(token))
        agent.start()
        self.agents.append(agent)
        return agent


def signed_in(url: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    login = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    client.headers["x-csrf-token"] = login.json()["csrf_token"]
    return client


def pair_agent(home: Home) -> None:
    owner = signed_in(home.url, home.owner.email)
    try:
        code = owner.post(f"/api/v1/households/{home.household}/pairing-codes")
        assert code.status_code == 201, code.text
    finally:
        owner.close()
    identity = pair(
        IdentityStore(home.root / "state"), server=home.url, code=code.json()["code"],
        name="Front door",
    )  # fmt: skip
    home.device_id = identity.device_id


@pytest.fixture
async def home(settings: Settings, factory: Factory, tmp_path: Path) -> AsyncIterator[Home]:
    owner, shared = await factory.user(), await factory.user()
    household = await factory.household(owner)
    await factory.share(household, owner, shared)
    tokens = {"owner": await factory.api_token(owner), "shared": await factory.api_token(shared)}
    with (
        shared_broker(tmp_path / "mosquitto") as broker,
        running_server(settings.model_copy(update={"development": True})) as url,
    ):
        state = Home(url, household, owner, shared, tokens, tmp_path / "agent", broker)
        await asyncio.to_thread(pair_agent, state)
        try:
            yield state
        finally:
            for agent in state.agents:
                await asyncio.to_thread(agent.stop)
            left = {**retained(*broker, f"{state.prefix}/#", 0.3),
                    **retained(*broker, f"{state.ha}/#", 0.3)}  # fmt: skip
            clear_retained(*broker, list(left))


async def audited(factory: Factory, household: uuid.UUID, tag: str) -> list[AuditEvent]:
    async with factory.app.state.sessionmaker() as db:
        rows = await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.household_id == household, AuditEvent.tag == tag)
            .order_by(AuditEvent.id)
        )
        return list(rows)


def publish(broker: tuple[str, int], topic: str, payload: bytes, *, retain: bool = False) -> None:
    """Home Assistant's side: a command, as its select or switch sends it."""
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"ha-{uuid.uuid4().hex[:8]}")
    client.connect(*broker)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def wait(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def discovery(rec: Recorder, home: Home, component: str, key: str) -> dict[str, Any]:
    topic = f"{home.ha}/{component}/doorwarden_{home.device_id}/{key}/config"
    rec.wait(lambda: bool(rec.last(topic)), topic, WAIT_S)
    body: dict[str, Any] = json.loads(rec.last(topic) or b"")
    return body


async def test_home_assistants_commands_reach_the_server_as_the_owners_and_come_back(
    home: Home, factory: Factory
) -> None:
    topics = [f"{home.prefix}/#", f"{home.ha}/#"]
    base = home.base
    # A command someone left retained on the broker: the agent gets it on every connection
    # (flagged retained) and must not carry it out each time, nor at all.
    await asyncio.to_thread(publish, home.broker, f"{base}/mode/set", b"disarmed", retain=True)
    with recording(*home.broker, topics) as rec:
        await asyncio.to_thread(home.start_agent, "owner")
        # The agent has the owner's token: Home Assistant may command the mode and switch.
        select_config = await asyncio.to_thread(discovery, rec, home, "select", "mode")
        assert select_config["command_topic"] == f"{base}/mode/set"
        assert select_config["options"] == ["home", "away", "disarmed"]
        switch = await asyncio.to_thread(discovery, rec, home, "switch", "front_detection")
        assert switch["command_topic"] == f"{base}/front/detection/set"
        # The mode as the server told the agent; the camera's motion, as it sees it.
        await asyncio.to_thread(rec.wait_payload, f"{base}/mode", b"home", WAIT_S)
        await asyncio.to_thread(rec.wait_payload, f"{base}/front/motion", b"ON", WAIT_S)

        # The select: away. The server sets it as the owner and tells the agent.
        await asyncio.to_thread(publish, home.broker, f"{base}/mode/set", b"away")
        await asyncio.to_thread(rec.wait_payload, f"{base}/mode", b"away", WAIT_S)
        (event,) = await audited(factory, home.household, "mode:set")
        assert event.actor_user_id == home.owner.id
        assert event.extra["mode"] == "away"
        assert "(mqtt)" in (event.user_agent or "")

        # The switch: detection off, kept with the camera's other web settings.
        await asyncio.to_thread(publish, home.broker, f"{base}/front/detection/set", b"OFF")
        await asyncio.to_thread(rec.wait_payload, f"{base}/front/detection", b"OFF", WAIT_S)
        (change,) = await audited(factory, home.household, "camera:settings:update")
        assert change.actor_user_id == home.owner.id
        owner = await asyncio.to_thread(signed_in, home.url, home.owner.email)
        path = f"/api/v1/households/{home.household}/devices/{home.device_id}"
        try:
            state = (await asyncio.to_thread(owner.get, f"{path}/cameras/front/settings")).json()
        finally:
            owner.close()
        assert state["settings"] == {"detection.enabled": False}
        assert state["version"] == 1
        # Detection off: the camera stops reporting motion.
        await asyncio.to_thread(rec.wait_payload, f"{base}/front/motion", b"OFF", WAIT_S)

        # Bad commands: each ignored with a log line, nothing changes on the server.
        bad = [
            (f"{base}/mode/set", b"vacation"),
            (f"{base}/mode/set", b"away" * 100),
            (f"{base}/front/detection/set", b"maybe"),
            (f"{base}/garage/detection/set", b"ON"),
        ]
        with capture_logs() as logs:
            for topic, payload in bad:
                await asyncio.to_thread(publish, home.broker, topic, payload)
            await asyncio.to_thread(
                wait,
                lambda: sum(e["event"] == "mqtt.bad_command" for e in logs) >= len(bad),
                "a log line per bad command",
            )
        await asyncio.sleep(0.5)
        assert len(await audited(factory, home.household, "mode:set")) == 1
        assert len(await audited(factory, home.household, "camera:settings:update")) == 1
        assert rec.last(f"{base}/mode") == b"away"

        # A clip went by (its id and times), and no image with it: snapshots are off.
        await asyncio.to_thread(
            rec.wait, lambda: rec.last(f"{base}/front/clip") is not None, "a clip", WAIT_S
        )
        clip = json.loads(rec.last(f"{base}/front/clip") or b"")
        assert set(clip) == {"id", "camera", "started_at", "ended_at", "labels"}
        agent = home.agents[0]
        await asyncio.to_thread(agent.stop)
        await asyncio.to_thread(rec.wait_payload, f"{base}/availability", b"offline", WAIT_S)
    for message in rec.messages:
        assert b"\xff\xd8" not in message.payload, message.topic
        assert "thumbnail" not in message.topic


async def test_a_shared_members_token_changes_nothing(home: Home, factory: Factory) -> None:
    with recording(*home.broker, [f"{home.prefix}/#"]) as rec, capture_logs() as logs:
        await asyncio.to_thread(home.start_agent, "shared")
        await asyncio.to_thread(rec.wait_payload, f"{home.base}/mode", b"home", WAIT_S)
        await asyncio.to_thread(publish, home.broker, f"{home.base}/mode/set", b"disarmed")
        await asyncio.to_thread(
            wait,
            lambda: any(e["event"] == "mqtt.command_refused" for e in logs),
            "the server's refusal",
        )
    refused = next(e for e in logs if e["event"] == "mqtt.command_refused")
    assert refused["status"] == 403
    assert "dwt_" not in json.dumps(logs, default=str)  # the token is never logged
    assert await audited(factory, home.household, "mode:set") == []
    assert rec.last(f"{home.base}/mode") == b"home"
