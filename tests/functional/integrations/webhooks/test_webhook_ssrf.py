"""Server-side request forgery: outside development, a webhook is never aimed at a
private, loopback, link-local (cloud metadata), unique-local, multicast or reserved
address, nor over plain http, whether the URL says so at registration or the host's DNS
answer changes to one before a delivery (rebinding): the checked address is the one
connected to."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.integrations.webhooks.models import DeliveryStatus
from tests.factories import Factory, assert_error
from tests.functional.integrations.webhooks.receiver import Receiver
from tests.functional.integrations.webhooks.webhooks_setup import deliver, deliveries, register
from tests.functional.notify.dispatch_setup import ring

PUBLIC = "93.184.216.34"  # a public address (TEST-NET addresses are not global)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "development": False,
            "webhook_resolve": {
                "hooks.example.com": PUBLIC,
                "intranet.example.com": "10.1.2.3",
                "metadata.example.com": "169.254.169.254",
                "v6.example.com": "::1",
                "mapped.example.com": "::ffff:127.0.0.1",
            },
        }
    )


REFUSED = [
    "http://hooks.example.com/hook",  # plain http outside development
    "https://127.0.0.1/hook",
    "https://127.1/hook",
    "https://2130706433/hook",
    "https://0.0.0.0/hook",
    "https://10.0.0.5/hook",
    "https://192.168.1.10/hook",
    "https://172.16.0.1/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://169.254.169.254/latest/meta-data/",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[fd00::1]/hook",
    "https://[fe80::1]/hook",
    "https://[ff02::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "https://localhost/hook",
    "https://printer.local/hook",
    "https://router.home.arpa/hook",
    "https://intranet/hook",
    "https://intranet.example.com/hook",  # resolves to 10.1.2.3
    "https://metadata.example.com/hook",  # resolves to 169.254.169.254
    "https://v6.example.com/hook",  # resolves to ::1
    "https://mapped.example.com/hook",  # resolves to ::ffff:127.0.0.1
    "https://user:secret@hooks.example.com/hook",
    "https://hooks.example.com/hook#fragment",
    "https://hooks.example.com:0/hook",
    "https://hooks.example.com:99999/hook",
    "https://hooks.exa mple.com/hook",
    "https:///hook",
    "not a url",
    "ftp://hooks.example.com/hook",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_private_and_malformed_urls_are_refused_at_registration(
    app: FastAPI, factory: Factory, url: str
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    response = await client.post(
        f"/api/v1/households/{home}/webhooks", json={"url": url, "event_kinds": ["ring"]}
    )
    error = assert_error(response, 422)
    assert error["code"] in ("endpoint_refused", "invalid_input"), error
    assert (await client.get(f"/api/v1/households/{home}/webhooks")).json() == []


async def test_a_public_name_is_accepted(app: FastAPI, factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    await register(client, home, "https://hooks.example.com/hook", ["ring"])


async def test_a_changed_dns_answer_is_refused_at_delivery(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock, settings: Settings
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    camera = await factory.camera(owner, home)
    # Registered while the name pointed at a public address; now it answers loopback,
    # where the receiver listens: a rebinding attack on the delivery.
    hook = await register(client, home, f"https://hooks.example.com:{receiver.port}/r", ["ring"])
    settings.webhook_resolve["hooks.example.com"] = "127.0.0.1"
    await ring(camera.client, clock.now())
    await deliver(app)
    assert receiver.requests == []
    (row,) = await deliveries(app, hook["id"])
    assert row.status is DeliveryStatus.pending  # the answer may change back: retried
    assert row.attempts == 1 and row.last_status_code is None
    assert "private, loopback or reserved" in (row.last_error or "")


async def test_a_url_changed_to_a_private_address_is_refused(
    app: FastAPI, factory: Factory
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    hook = await register(client, home, "https://hooks.example.com/hook", ["ring"])
    response = await client.patch(
        f"/api/v1/households/{home}/webhooks/{hook['id']}",
        json={"url": "https://169.254.169.254/latest/meta-data/"},
    )
    assert_error(response, 422, "endpoint_refused")
    listed = (await client.get(f"/api/v1/households/{home}/webhooks")).json()
    assert listed[0]["url"] == "https://hooks.example.com/hook"
    assert uuid.UUID(listed[0]["id"])


async def test_plain_http_is_refused_at_delivery_outside_development(
    app: FastAPI, factory: Factory, clock: ManualClock, settings: Settings
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    camera = await factory.camera(owner, home)
    settings.development = True  # registered on a development instance...
    hook = await register(client, home, "http://127.0.0.1:9/plain", ["ring"])
    settings.development = False  # ...which is no longer one
    await ring(camera.client, clock.now())
    await deliver(app)
    (row,) = await deliveries(app, hook["id"])
    assert row.attempts == 1 and row.last_status_code is None
    assert "https://" in (row.last_error or "")
