"""A camera's health report (PUT /api/v1/device/health): refused when malformed, kept per
camera, shown to the household's owners (page and API) and to nobody else, and each new
fact (disk full, a clip held, an eviction) alerted once, however often it is reported."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from doorwarden.agent.delivery.health import Backlog, health_body
from doorwarden.agent.delivery.upload_status import UploadStatus
from doorwarden.agent.recording.room import Eviction
from doorwarden.clock import ManualClock
from doorwarden.roles import Role
from tests.factories import Camera, Factory, assert_error, make_client

URL = "/api/v1/device/health"
SINCE = "2026-12-06T09:00:00+01:00"  # a zone other than UTC: kept as the same instant


def report(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "spool": {
            "free_bytes": 5 * 1024**3,
            "total_bytes": 32 * 1024**3,
            "pending_clips": 3,
            "pending_bytes": 6 * 1024**2,
            "disk_full": False,
        },
        "held": [],
        "deferred": [],
        "evicted": [],
    }
    body.update(copy.deepcopy(changes))
    return body


def held(sequence: int, code: str = "hash_mismatch", message: str = "no match") -> dict[str, Any]:
    return {"sequence": sequence, "code": code, "message": message, "since": SINCE}


def evicted(
    first: int | None, last: int | None, count: int, at: str = "2026-12-06T08:30:00Z"
) -> dict[str, Any]:
    return {"first": first, "last": last, "count": count, "reason": "disk_full", "at": at}


async def setup(factory: Factory) -> tuple[Any, Camera, httpx.AsyncClient]:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home, name="Porch")
    return home, camera, await factory.signed_in(owner)


async def send(camera: Camera, body: dict[str, Any]) -> None:
    response = await camera.client.put(URL, json=body)
    assert response.status_code == 204, response.text
    assert response.content == b""


async def alerts(browser: httpx.AsyncClient, home: Any) -> list[tuple[str, int]]:
    response = await browser.get(f"/api/v1/households/{home}/integrity-alerts")
    assert response.status_code == 200, response.text
    return sorted((a["kind"], a["sequence"]) for a in response.json())


async def listed_health(client: httpx.AsyncClient, home: Any) -> Any:
    response = await client.get(f"/api/v1/households/{home}/devices")
    assert response.status_code == 200, response.text
    [device] = response.json()
    return device["health"]


async def test_a_report_is_kept_and_the_owner_reads_it(
    factory: Factory, clock: ManualClock
) -> None:
    home, camera, browser = await setup(factory)
    assert await listed_health(browser, home) is None  # nothing reported yet
    body = report(held=[held(5)], evicted=[evicted(10, 12, 3)])
    body["deferred"] = [
        {
            "sequence": 9,
            "code": "missing_recipient",
            "message": "later",
            "next_attempt": "2026-12-06T11:00:00Z",
        }
    ]
    await send(camera, body)
    health = await listed_health(browser, home)
    assert health["reported_at"].startswith(clock.now().strftime("%Y-%m-%dT%H:%M:%S"))
    assert health["disk_full_since"] is None
    assert health["spool"] == body["spool"]
    # Times are kept as the instant they name, in UTC.
    assert health["held"] == [held(5) | {"since": "2026-12-06T08:00:00Z"}]
    assert health["deferred"] == body["deferred"]
    assert health["evicted"] == body["evicted"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[]", "body"),
        (json.dumps(report(spool="full")).encode(), "spool"),
        # Strict: no "5" for 5, no 1 for true, no 5.0 for 5.
        (json.dumps(report(held=[held(5) | {"sequence": "5"}])).encode(), "sequence"),
        (json.dumps(report(held=[held(5) | {"sequence": 5.0}])).encode(), "sequence"),
        (json.dumps(report(spool=report()["spool"] | {"disk_full": 1})).encode(), "disk_full"),
        (json.dumps(report(spool=report()["spool"] | {"free_bytes": -1})).encode(), "free_bytes"),
        (json.dumps(report(spool=report()["spool"] | {"free_bytes": 10**15})).encode(), "spool"),
        # Unknown keys, at the top and inside.
        (json.dumps(report(extra=1)).encode(), "extra"),
        (json.dumps(report(spool=report()["spool"] | {"temp_c": 40})).encode(), "temp_c"),
        (json.dumps(report(held=[held(5) | {"note": "x"}])).encode(), "note"),
        # Times without a zone, or not times at all.
        (json.dumps(report(held=[held(5) | {"since": "2026-12-06T09:00:00"}])).encode(), "since"),
        (json.dumps(report(held=[held(5) | {"since": 1733475600}])).encode(), "since"),
        (json.dumps(report(evicted=[evicted(1, 2, 2, at="yesterday")])).encode(), "at"),
        # Sequences bounded as the upload's path is (0..2**53); the range in order.
        (json.dumps(report(held=[held(-1)])).encode(), "sequence"),
        (
            b'{"spool": {"free_bytes": 1, "total_bytes": 2, "pending_clips": 0, '
            b'"pending_bytes": 0, "disk_full": false}, "held": [{"sequence": 9007199254740993, '
            b'"code": "x", "message": "", "since": "2026-12-06T09:00:00Z"}]}',
            "body",
        ),
        (json.dumps(report(evicted=[evicted(5, 4, 2)])).encode(), "evicted"),
        (json.dumps(report(evicted=[evicted(5, 6, 0)])).encode(), "count"),
        (json.dumps(report(evicted=[evicted(5, 6, 2) | {"reason": "tidy"}])).encode(), "reason"),
        # Bounded text.
        (json.dumps(report(held=[held(5, code="c" * 65)])).encode(), "code"),
        (json.dumps(report(held=[held(5, code="")])).encode(), "code"),
        (json.dumps(report(held=[held(5, message="m" * 301)])).encode(), "message"),
        (json.dumps(report(held=[held(5, message="a\x00b")])).encode(), "message"),
        # Lists too long.
        (json.dumps(report(held=[held(i) for i in range(101)])).encode(), "held"),
        (json.dumps(report(evicted=[evicted(i, i, 1) for i in range(51)])).encode(), "evicted"),
        (json.dumps({"held": []}).encode(), "spool"),
    ],
)
async def test_a_bad_report_is_refused_and_nothing_is_kept(
    factory: Factory, body: bytes, where: str
) -> None:
    home, camera, browser = await setup(factory)
    response = await camera.client.put(
        URL, content=body, headers={"content-type": "application/json"}
    )
    error = assert_error(response, 422, "validation_error")
    details: list[dict[str, list[str]]] = error["details"]  # type: ignore[assignment]
    locations = [part for detail in details for part in detail["loc"]]
    assert where in locations, error
    assert await listed_health(browser, home) is None
    assert await alerts(browser, home) == []


async def test_the_limits_themselves_are_accepted(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    body = report(
        held=[held(i, code="c" * 64, message="m" * 300) for i in range(100)],
        deferred=[],
        evicted=[evicted(i, i, 1) for i in range(50)],
    )
    body["held"][0]["sequence"] = 2**53
    assert len(json.dumps(body)) <= 64 * 1024
    await send(camera, body)
    health = await listed_health(browser, home)
    assert len(health["held"]) == 100 and len(health["evicted"]) == 50


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 8192):
        yield data[i : i + 8192]


async def test_a_report_over_64_kib_is_refused_with_413(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    # Valid JSON, padded past the limit: refused for its size alone.
    padded = json.dumps(report()).encode() + b" " * (64 * 1024)
    response = await camera.client.put(
        URL, content=padded, headers={"content-type": "application/json"}
    )
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"max_bytes": 65536}
    # Sent without a length (chunked): refused once 64 KiB have been read.
    streamed = await camera.client.put(
        URL, content=_chunks(padded), headers={"content-type": "application/json"}
    )
    assert_error(streamed, 413, "payload_too_large")
    assert await listed_health(browser, home) is None
    # Exactly at the limit is read (and then judged on its content).
    exact = json.dumps(report()).encode()
    exact += b" " * (64 * 1024 - len(exact))
    accepted = await camera.client.put(
        URL, content=exact, headers={"content-type": "application/json"}
    )
    assert accepted.status_code == 204, accepted.text


async def test_only_a_paired_camera_reports_its_health(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    anonymous = make_client(factory.app)
    assert_error(await anonymous.put(URL, json=report()), 401, "not_authenticated")
    forged = make_client(factory.app)
    forged.headers["authorization"] = "Bearer dwd_not-a-token"
    assert_error(await forged.put(URL, json=report()), 401)
    # A person is not a camera, not even its owner.
    refused = await browser.put(URL, json=report(spool=report()["spool"] | {"disk_full": True}))
    assert_error(refused, 403, "forbidden")
    # A removed camera is told so, and what it says is not kept.
    removed = await browser.delete(f"/api/v1/households/{home}/devices/{camera.id}")
    assert removed.status_code == 204
    assert_error(await camera.client.put(URL, json=report()), 401, "device_revoked")
    assert await alerts(browser, home) == []


async def test_each_new_fact_is_alerted_once(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    first = report(held=[held(5)], evicted=[evicted(10, 12, 3)])
    await send(camera, first)
    assert await alerts(browser, home) == [("clip_held", 5), ("clips_evicted", 10)]
    # The same report again (the agent resends until it gets its 204): nothing new.
    await send(camera, first)
    await send(camera, first)
    assert await alerts(browser, home) == [("clip_held", 5), ("clips_evicted", 10)]

    full = report(
        spool=report()["spool"] | {"free_bytes": 4096, "disk_full": True},
        held=[held(5), held(7, code="local_unreadable")],
        evicted=[evicted(10, 12, 3), evicted(None, None, 1, at="2026-12-06T08:40:00Z")],
    )
    await send(camera, full)
    expected = [
        ("camera_disk_full", 0),
        ("clip_held", 5),
        ("clip_held", 7),
        ("clips_evicted", 0),  # evicted before it was sealed: no sequence number
        ("clips_evicted", 10),
    ]
    assert await alerts(browser, home) == expected
    await send(camera, full)
    assert await alerts(browser, home) == expected
    # An older report arriving late, then the newer one again: no held clip or eviction
    # is alerted twice, even though the report before each did not list it.
    await send(camera, first)
    await send(camera, full)
    # (The disk did go from "not full" to "full" again as reported: that is told again.)
    assert await alerts(browser, home) == sorted([*expected, ("camera_disk_full", 0)])
    # A clip retried and held again is the same clip: not alerted again.
    await send(camera, report())
    await send(camera, report(held=[held(5, code="truncated")]))
    assert await alerts(browser, home) == sorted([*expected, ("camera_disk_full", 0)])


async def test_the_alerts_say_what_happened_and_are_audited(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    await send(
        camera,
        report(
            spool=report()["spool"] | {"disk_full": True, "free_bytes": 0},
            held=[held(5, code="hash_mismatch", message="the data does not match")],
            evicted=[evicted(10, 12, 3)],
        ),
    )
    listed = (await browser.get(f"/api/v1/households/{home}/integrity-alerts")).json()
    details = {a["kind"]: a["detail"] for a in listed}
    assert details["clip_held"] == "hash_mismatch: the data does not match"
    assert "3 clip(s) not yet sent were deleted" in details["clips_evicted"]
    assert "its disk was full" in details["clips_evicted"]
    assert "Its disk is full (0 of" in details["camera_disk_full"]
    events = (await browser.get(f"/api/v1/households/{home}/audit-events")).json()
    audited = [e for e in events if e["tag"] == "clip:integrity-alert"]
    assert len(audited) == 3


async def test_disk_full_since_is_the_servers_first_sight(
    factory: Factory, clock: ManualClock
) -> None:
    home, camera, browser = await setup(factory)
    full = report(spool=report()["spool"] | {"disk_full": True})
    await send(camera, full)
    since = (await listed_health(browser, home))["disk_full_since"]
    assert since is not None
    clock.advance(timedelta(minutes=5))
    await send(camera, full)
    health = await listed_health(browser, home)
    assert health["disk_full_since"] == since and health["reported_at"] != since
    await send(camera, report())
    assert (await listed_health(browser, home))["disk_full_since"] is None


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_the_cameras_page_shows_the_camera_reports(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    page = await browser.get(f"/households/{home}/cameras")
    assert page.status_code == 200 and "Camera reports" not in page.text  # none yet
    body = report(
        spool={
            "free_bytes": 0,
            "total_bytes": 8 * 1024**3,
            "pending_clips": 41,
            "pending_bytes": 3 * 1024**2,
            "disk_full": True,
        },
        held=[held(5, code="hash_mismatch", message="<script>alert(1)</script>")],
        deferred=[
            {
                "sequence": 9,
                "code": "missing_recipient",
                "message": "no key yet",
                "next_attempt": "2026-12-06T11:00:00Z",
            }
        ],
        evicted=[evicted(10, 12, 3), evicted(None, None, 1)],
    )
    await send(camera, body)
    page = await browser.get(f"/households/{home}/cameras")
    assert page.status_code == 200
    html = page.text
    assert 'id="camera-reports"' in html and f'id="report-{camera.id}"' in html
    assert "<script>alert(1)</script>" not in html  # the camera's text is escaped
    assert "&lt;script&gt;" in html
    text = _text(html)
    assert "Camera reports" in text and "Porch" in text
    assert "Disk full since" in text
    assert "0 Bytes free of 8.0 GiB" in text
    assert "41 clips (3.0 MiB)" in text
    assert "Held back: not sent without you" in text
    assert "Clip 5 · hash_mismatch" in text and "doorwarden agent retry 5" in text
    assert "Deferred: the camera tries again on its own" in text
    assert "Clip 9 · missing_recipient no key yet" in text and "next attempt" in text
    assert "3 clips (clips 10..12) · the disk was full" in text
    assert "1 clip (not yet sealed) · the disk was full" in text
    # The integrity alerts above say the same, each once, in a sentence to act on.
    assert "The disk of Porch is full" in text
    assert "Porch holds clip 5 back and will not send it on its own" in text
    assert "Porch deleted 3 clip(s) not yet sent (10..12) to make room" in text


async def test_nobody_but_the_owners_sees_a_cameras_report(factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    shared = await factory.user()
    await factory.share(home, owner, shared)
    await send(camera, report(spool=report()["spool"] | {"disk_full": True}, held=[held(5)]))
    assert (await listed_health(await factory.signed_in(owner), home))["held"]
    assert (await listed_health(await factory.with_token(owner), home))["held"]

    # A shared member sees the camera, not its report (as with integrity alerts).
    member = await factory.signed_in(shared)
    assert await listed_health(member, home) is None
    page = await member.get(f"/households/{home}/cameras")
    assert page.status_code == 200 and "Camera reports" not in page.text

    # Another household's owner and every staff role: neither the list nor the page.
    other = await factory.user()
    await factory.household(other, "Next door")
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency_in_good_standing(admin, "Police")
    outsiders = [
        await factory.signed_in(other),
        await factory.with_token(other),
        await factory.signed_in(admin),
        await factory.signed_in(await factory.user(Role.auditor)),
        await factory.signed_in(await factory.user(Role.legal_reviewer)),
        await factory.signed_in(await factory.user(Role.agency_officer, agency_id=agency)),
    ]
    for outsider in outsiders:
        listed = await outsider.get(f"/api/v1/households/{home}/devices")
        assert_error(listed, 403)
        alerted = await outsider.get(f"/api/v1/households/{home}/integrity-alerts")
        assert_error(alerted, 403)
        page = await outsider.get(f"/households/{home}/cameras")
        assert page.status_code == 403 and "Camera reports" not in page.text
    # The camera's own token reads nothing of it either.
    assert_error(await camera.client.get(f"/api/v1/households/{home}/devices"), 401)


async def test_the_agents_own_report_is_accepted(factory: Factory, tmp_path: Path) -> None:
    # The contract from both sides: the body the agent builds (agent/delivery/health.py),
    # with an eviction as the agent's spool records it, is what this server takes.
    home, camera, browser = await setup(factory)
    status = UploadStatus(
        str(camera.id),
        held={5: {"code": "hash_mismatch", "message": "no match", "since": SINCE}},
        deferred={
            9: {"code": "missing_recipient", "message": "", "next_attempt": SINCE, "attempts": 2}
        },
    )
    body = health_body(spool_dir=tmp_path, backlog=Backlog(2, 4096), status=status, room=None)
    body["evicted"] = [Eviction(10, 11, 2, "spool_limit", "2026-12-06T08:00:00+00:00").to_json()]
    await send(camera, body)
    health = await listed_health(browser, home)
    assert [h["sequence"] for h in health["held"]] == [5]
    assert health["spool"]["pending_clips"] == 2 and health["spool"]["total_bytes"] > 0
    assert await alerts(browser, home) == [("clip_held", 5), ("clips_evicted", 10)]
    await send(camera, body)  # its heartbeat resends it: nothing new
    assert await alerts(browser, home) == [("clip_held", 5), ("clips_evicted", 10)]


async def test_an_eviction_episode_that_grows_is_alerted_once_and_shown_whole(
    factory: Factory,
) -> None:
    """A disk full for a while evicts clip after clip; the camera reports one episode
    (same first clip, reason and start) whose count grows: one alert, the latest count."""
    home, camera, browser = await setup(factory)
    await send(camera, report(evicted=[evicted(10, 12, 3)]))
    await send(camera, report(evicted=[evicted(10, 20, 11)]))
    await send(camera, report(evicted=[evicted(10, 31, 22)]))
    assert await alerts(browser, home) == [("clips_evicted", 10)]
    devices = (await browser.get(f"/api/v1/households/{home}/devices")).json()
    assert devices[0]["health"]["evicted"] == [evicted(10, 31, 22)]
    # A new episode (it began later) is a new fact.
    later = evicted(40, 41, 2, at="2026-12-06T09:30:00Z")
    await send(camera, report(evicted=[evicted(10, 31, 22), later]))
    assert await alerts(browser, home) == [("clips_evicted", 10), ("clips_evicted", 40)]
