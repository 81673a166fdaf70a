"""The resident's pages for cameras and clips: the Cameras page (status, plan, alerts,
pairing, removal), the day's timeline in the household's time zone, and the player.

Forms are posted the way a browser posts them: the CSRF token comes from the page's own
hidden field, not from the header the API client carries.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from doorwarden.accounts.models import User
from doorwarden.clips.models import ClipHold
from doorwarden.clock import ManualClock
from doorwarden.crypto.keys import SigningKey, b64e
from doorwarden.crypto.manifest import GENESIS
from tests.factories import Camera, Factory, make_client
from tests.sealed_clips import Sealed, seal_clip, upload

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
OWNER_CONTROLS = ("Pair a new camera", "Save plan", "/remove", "Integrity alerts")


@dataclass
class Home:
    id: uuid.UUID
    owner: User
    camera: Camera
    owner_page: httpx.AsyncClient
    shared_page: httpx.AsyncClient
    other_page: httpx.AsyncClient  # the owner of another household
    other_home: uuid.UUID
    uploaded: int = 0
    previous: str = GENESIS


async def as_browser(factory: Factory, user: User) -> httpx.AsyncClient:
    """Signed in with the session cookie only: forms must carry their own token."""
    client = await factory.signed_in(user)
    del client.headers["x-csrf-token"]
    return client


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str] | None = None
) -> httpx.Response:
    """Open `page`, take its CSRF field, and submit `data` to `action` as its form does."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    match = CSRF_FIELD.search(shown.text)
    assert match is not None
    return await client.post(action, data={**(data or {}), "csrf_token": match.group(1)})


@pytest.fixture
async def home(factory: Factory) -> Home:
    owner, partner, neighbour = await factory.user(), await factory.user(), await factory.user()
    home_id = await factory.household(owner)  # Europe/London
    await factory.share(home_id, owner, partner)
    other_home = await factory.household(neighbour, "Next door")
    return Home(
        id=home_id,
        owner=owner,
        camera=await factory.camera(owner, home_id),
        owner_page=await as_browser(factory, owner),
        shared_page=await as_browser(factory, partner),
        other_page=await as_browser(factory, neighbour),
        other_home=other_home,
    )


async def add_clip(
    home: Home,
    start: datetime,
    labels: tuple[str, ...] = ("motion", "person"),
    camera: Camera | None = None,
) -> str:
    """Seal and upload the next clip of the home's camera (or of `camera`'s first); its id."""
    if camera is None:
        sealed = _seal(home.camera, home.uploaded, home.previous, start, labels)
        home.uploaded, home.previous = home.uploaded + 1, sealed.digest
        camera = home.camera
    else:
        sealed = _seal(camera, 0, GENESIS, start, labels)
    done = await upload(camera.client, sealed)
    assert done.status_code == 200, done.text
    return str(done.json()["clip_id"])


def _seal(
    camera: Camera, sequence: int, previous: str, start: datetime, labels: tuple[str, ...]
) -> Sealed:
    when = start.astimezone(UTC).isoformat(timespec="milliseconds")
    return seal_clip(
        camera.id, camera.key, camera.recipients, sequence, previous,
        size=3000, labels=labels, start=when,
    )  # fmt: skip


def listed_clips(html: str, home_id: uuid.UUID) -> list[str]:
    """Clip ids in the timeline, in page order (each clip links its time once)."""
    return re.findall(rf'class="clip-time" href="/households/{home_id}/clips/({UUID})"', html)


# --- Access ---------------------------------------------------------------------------


async def test_every_page_for_owner_shared_user_stranger_and_anonymous(
    home: Home, client: httpx.AsyncClient
) -> None:
    clip_id = await add_clip(home, datetime.now(UTC))
    pages = [
        f"/households/{home.id}/cameras",
        f"/households/{home.id}/clips",
        f"/households/{home.id}/clips/{clip_id}",
    ]
    for page in pages:
        owner = await home.owner_page.get(page)
        assert owner.status_code == 200, (page, owner.text)
        shared = await home.shared_page.get(page)
        assert shared.status_code == 200, (page, shared.text)
        for control in (*OWNER_CONTROLS, "Delete clip"):
            assert control not in shared.text, (page, control)
        assert (await home.other_page.get(page)).status_code == 403
        anonymous = await client.get(page)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == f"/login?next={page}"
    cameras = (await home.owner_page.get(pages[0])).text
    assert "Pair a new camera" in cameras and "Save plan" in cameras and "/remove" in cameras
    assert "Delete clip" in (await home.owner_page.get(pages[2])).text
    detail = (await home.shared_page.get(f"/households/{home.id}")).text
    for link in pages[:2]:
        assert f'href="{link}"' in detail


async def test_shared_user_cannot_post_owner_forms(home: Home) -> None:
    clip_id = await add_clip(home, datetime.now(UTC))
    cameras = f"/households/{home.id}/cameras"
    for action, data in [
        (f"{cameras}/pairing-codes", {}),
        (f"/households/{home.id}/plan", {"kind": "live_only", "retention_days": "7"}),
        (f"{cameras}/{home.camera.id}/remove", {"confirm": "yes"}),
        (f"/households/{home.id}/clips/{clip_id}/delete", {"confirm": "yes"}),
    ]:
        refused = await post_form(home.shared_page, cameras, action, data)
        assert refused.status_code == 403, action
    assert "Front door" in (await home.owner_page.get(cameras)).text
    assert (await home.owner_page.get(f"/households/{home.id}/clips/{clip_id}")).status_code == 200


# --- The Cameras page --------------------------------------------------------------------


async def test_cameras_show_status_and_newest_event(home: Home, clock: ManualClock) -> None:
    page = f"/households/{home.id}/cameras"
    before = (await home.owner_page.get(page)).text
    assert "Front door" in before and "no clips yet" in before
    start = (clock.now() - timedelta(minutes=1)).replace(microsecond=0)
    await add_clip(home, start - timedelta(hours=1), ("motion",))
    newest = await add_clip(home, start, ("motion", "person"))
    shown = (await home.owner_page.get(page)).text
    assert 'badge-ok">online' in shown
    assert f'href="/households/{home.id}/clips/{newest}"' in shown
    assert start.astimezone(UTC).isoformat() in shown  # the <time datetime=...> of the event
    assert ">person</span>" in shown
    clock.advance(timedelta(minutes=3))  # cameras call in every minute; 2 min quiet: offline
    assert ">offline</span>" in (await home.owner_page.get(page)).text


async def test_a_pairing_code_is_shown_once_and_pairs_a_camera(home: Home, app: FastAPI) -> None:
    page = f"/households/{home.id}/cameras"
    made = await post_form(home.owner_page, page, f"{page}/pairing-codes")
    assert made.status_code == 200, made.text
    code = re.search(r'id="pairing-code-value">([A-Z2-9-]{14})<', made.text)
    assert code is not None
    command = f"doorwarden agent pair --server http://testserver --code {code.group(1)}"
    assert command in made.text
    assert "shown only this once" in made.text
    assert code.group(1) not in (await home.owner_page.get(page)).text  # never shown again

    key = SigningKey.generate()
    agent = make_client(app, "203.0.113.60")
    paired = await agent.post(
        "/api/v1/devices/pair",
        json={"code": code.group(1), "name": "Back gate", "public_key": b64e(key.public)},
    )
    assert paired.status_code == 201, paired.text
    assert "Back gate" in (await home.owner_page.get(page)).text
    await agent.aclose()


async def test_pairing_without_the_form_token_is_refused(home: Home) -> None:
    refused = await home.owner_page.post(f"/households/{home.id}/cameras/pairing-codes")
    assert refused.status_code == 403
    assert "did not come from this site" in refused.text


async def test_plan_changes_through_the_form_only_with_its_token(home: Home) -> None:
    page = f"/households/{home.id}/cameras"
    action = f"/households/{home.id}/plan"
    forged = await home.owner_page.post(action, data={"kind": "live_only", "retention_days": "7"})
    assert forged.status_code == 403
    assert "Clips are recorded" in (await home.owner_page.get(page)).text

    saved = await post_form(
        home.owner_page, page, action, {"kind": "recording", "retention_days": "7"}
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{page}?done=plan#plan"
    shown = (await home.owner_page.get(saved.headers["location"])).text
    assert "Plan saved" in shown and "7 days" in shown

    for kind, days in (("forever", "7"), ("recording", "0"), ("recording", "lots")):
        bad = {"kind": kind, "retention_days": days}
        refused = await post_form(home.owner_page, page, action, bad)
        assert refused.status_code == 400, bad
        assert 'role="alert"' in refused.text

    live = await post_form(
        home.owner_page, page, action, {"kind": "live_only", "retention_days": "7"}
    )
    assert live.status_code == 303
    shown = (await home.owner_page.get(page)).text
    assert "Live view only: only doorbell presses are kept, for a day" in shown


async def test_removing_a_camera_asks_first(home: Home) -> None:
    page = f"/households/{home.id}/cameras"
    action = f"{page}/{home.camera.id}/remove"
    asked = await post_form(home.owner_page, page, action)
    assert asked.status_code == 200
    assert "Remove Front door?" in asked.text and 'name="confirm" value="yes"' in asked.text
    assert (await home.camera.client.get("/api/v1/device")).status_code == 200  # still paired

    removed = await post_form(home.owner_page, page, action, {"confirm": "yes"})
    assert removed.status_code == 303
    assert removed.headers["location"] == f"{page}?done=removed"
    shown = (await home.owner_page.get(removed.headers["location"])).text
    assert "Camera removed" in shown and "No cameras yet" in shown
    gone = await home.camera.client.get("/api/v1/device")
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "device_revoked"
    # Removed already, another household's camera, or none: 404, with or without confirm.
    for device in (home.camera.id, uuid.uuid4()):
        for data in ({}, {"confirm": "yes"}):
            missing = await post_form(home.owner_page, page, f"{page}/{device}/remove", data)
            assert missing.status_code == 404


async def test_integrity_alerts_are_for_owners(home: Home) -> None:
    now = datetime.now(UTC)
    await add_clip(home, now)
    gap = _seal(home.camera, 3, home.previous, now, ("motion",))  # 1 and 2 never arrive
    assert (await upload(home.camera.client, gap)).status_code == 200
    page = f"/households/{home.id}/cameras"
    owner = (await home.owner_page.get(page)).text
    assert "Integrity alerts" in owner
    assert "Clips 1..2 from Front door never arrived" in owner
    shared = (await home.shared_page.get(page)).text
    assert "Integrity alerts" not in shared and "never arrived" not in shared


# --- The timeline ------------------------------------------------------------------------


async def test_the_timeline_is_the_households_local_day(home: Home) -> None:
    # London is on BST (UTC+1) in July: local 1 July is 30 June 23:00 .. 1 July 23:00 UTC.
    before = await add_clip(home, datetime(2026, 6, 30, 22, 30, tzinfo=UTC))  # 23:30 on 30 June
    first = await add_clip(home, datetime(2026, 6, 30, 23, 30, tzinfo=UTC))  # 00:30 on 1 July
    midday = await add_clip(home, datetime(2026, 7, 1, 12, 0, tzinfo=UTC), ("motion",))
    after = await add_clip(home, datetime(2026, 7, 1, 23, 30, tzinfo=UTC))  # 00:30 on 2 July
    page = await home.owner_page.get(f"/households/{home.id}/clips?day=2026-07-01")
    assert page.status_code == 200
    assert listed_clips(page.text, home.id) == [midday, first]  # newest first
    assert "13:00:00 BST" in page.text and "00:30:00 BST" in page.text
    assert "Wednesday 1 July 2026" in page.text
    assert 'loading="lazy"' in page.text
    assert f'src="/api/v1/households/{home.id}/clips/{first}/thumbnail"' in page.text
    assert "day=2026-06-30" in page.text and "day=2026-07-02" in page.text  # previous, next
    june = await home.owner_page.get(f"/households/{home.id}/clips?day=2026-06-30")
    assert listed_clips(june.text, home.id) == [before]
    july_2 = await home.owner_page.get(f"/households/{home.id}/clips?day=2026-07-02")
    assert listed_clips(july_2.text, home.id) == [after]


async def test_the_timeline_opens_on_today(home: Home) -> None:
    now = await add_clip(home, datetime.now(UTC))
    old = await add_clip(home, datetime.now(UTC) + timedelta(days=-3))
    page = await home.owner_page.get(f"/households/{home.id}/clips")
    assert listed_clips(page.text, home.id) == [now]
    assert old not in page.text
    assert 'rel="next"' not in page.text  # nothing is recorded tomorrow


async def test_the_timeline_filters_by_label_and_camera(home: Home, factory: Factory) -> None:
    day = "?day=2026-07-01"
    both = await add_clip(home, datetime(2026, 7, 1, 8, 0, tzinfo=UTC), ("motion", "person"))
    motion = await add_clip(home, datetime(2026, 7, 1, 9, 0, tzinfo=UTC), ("motion",))
    gate = await factory.camera(home.owner, home.id, name="Back gate")
    at_gate = await add_clip(home, datetime(2026, 7, 1, 10, 0, tzinfo=UTC), camera=gate)
    base = f"/households/{home.id}/clips{day}"

    async def ids(query: str) -> list[str]:
        response = await home.owner_page.get(base + query)
        assert response.status_code == 200, response.text
        return listed_clips(response.text, home.id)

    assert await ids("") == [at_gate, motion, both]
    assert await ids("&label=any") == [at_gate, motion, both]
    assert await ids("&label=person") == [at_gate, both]
    assert await ids("&label=motion") == [at_gate, motion, both]
    assert await ids(f"&camera={gate.id}") == [at_gate]
    assert await ids(f"&camera={home.camera.id}&label=person") == [both]
    assert await ids("&label=car") == []
    shown = (await home.owner_page.get(base + f"&camera={gate.id}")).text
    assert "Back gate · 12 s" in shown
    assert f'<option value="{gate.id}" selected>Back gate</option>' in shown


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("day=2026-13-45", "Day: enter a date"),
        ("day=yesterday", "Day: enter a date"),
        ("day=0001-01-01", "Day: choose a day from"),
        ("day=9999-12-31", "Day: choose a day from"),
        ("camera=front-door", "Camera: choose one"),
        ("label=%3Cscript%3E", "Label: use a label"),
    ],
)
async def test_malformed_filters_are_a_400_page(home: Home, query: str, message: str) -> None:
    page = await home.owner_page.get(f"/households/{home.id}/clips?{query}")
    assert page.status_code == 400
    assert message in page.text
    assert 'name="day"' in page.text  # the form is still there to correct it
    assert "<script>" not in page.text


async def test_unknown_cameras_and_clips_are_404(home: Home, factory: Factory) -> None:
    neighbour_camera = await factory.camera(home.owner, home.other_home, name="Not yours")
    theirs = await add_clip(home, datetime.now(UTC), camera=neighbour_camera)
    for camera in (uuid.uuid4(), neighbour_camera.id):
        page = await home.owner_page.get(f"/households/{home.id}/clips?camera={camera}")
        assert page.status_code == 404
        assert "No such camera" in page.text
    for clip in (uuid.uuid4(), theirs):  # another household's clip does not exist here
        player = await home.owner_page.get(f"/households/{home.id}/clips/{clip}")
        assert player.status_code == 404
        assert "No such clip" in player.text
    malformed = await home.owner_page.get(f"/households/{home.id}/clips/not-a-clip")
    assert malformed.status_code == 422
    assert "Not yours" not in (await home.owner_page.get(f"/households/{home.id}/clips")).text


# --- The player --------------------------------------------------------------------------


async def test_the_player_points_at_the_api_and_links_the_day(home: Home) -> None:
    first = await add_clip(home, datetime(2026, 7, 1, 8, 0, tzinfo=UTC), ("motion",))
    second = await add_clip(home, datetime(2026, 7, 1, 9, 0, tzinfo=UTC))
    third = await add_clip(home, datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
    api = f"/api/v1/households/{home.id}/clips/{second}"
    page = await home.owner_page.get(f"/households/{home.id}/clips/{second}")
    assert page.status_code == 200
    assert f'<video id="clip-video" controls preload="metadata" playsinline src="{api}/video"' in (
        page.text
    )
    assert f'poster="{api}/thumbnail"' in page.text
    assert f'href="{api}/download" download' in page.text
    assert f'href="/households/{home.id}/clips/{first}" rel="prev"' in page.text
    assert f'href="/households/{home.id}/clips/{third}" rel="next"' in page.text
    assert "10:00:00 BST" in page.text and "Front door" in page.text and "12 s" in page.text
    assert "h264, 1280 x 720" in page.text
    video = await home.owner_page.get(f"{api}/video", headers={"range": "bytes=0-99"})
    assert video.status_code == 206  # the same cookie the page's <video> will send
    last = await home.owner_page.get(f"/households/{home.id}/clips/{third}")
    assert "Last clip of the day" in last.text


async def test_deleting_a_clip_asks_first_then_deletes(home: Home) -> None:
    clip_id = await add_clip(home, datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    page = f"/households/{home.id}/clips/{clip_id}"
    asked = await post_form(home.owner_page, page, f"{page}/delete")
    assert asked.status_code == 200
    assert "Delete this clip for good?" in asked.text
    assert (await home.owner_page.get(page)).status_code == 200  # nothing deleted yet

    forged = await home.owner_page.post(f"{page}/delete", data={"confirm": "yes"})
    assert forged.status_code == 403
    deleted = await post_form(home.owner_page, page, f"{page}/delete", {"confirm": "yes"})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == (
        f"/households/{home.id}/clips?day=2026-07-01&done=deleted"
    )
    timeline = await home.owner_page.get(deleted.headers["location"])
    assert "Clip deleted for good." in timeline.text
    assert listed_clips(timeline.text, home.id) == []
    assert (await home.owner_page.get(page)).status_code == 404


async def test_a_legal_hold_is_explained_not_an_error_page(home: Home, app: FastAPI) -> None:
    clip_id = await add_clip(home, datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    async with app.state.sessionmaker.begin() as db:
        db.add(ClipHold(clip_id=uuid.UUID(clip_id), reason="preservation request 2026-17"))
    page = f"/households/{home.id}/clips/{clip_id}"
    refused = await post_form(home.owner_page, page, f"{page}/delete", {"confirm": "yes"})
    assert refused.status_code == 409
    assert "under a legal hold" in refused.text
    assert "<video" in refused.text  # the player page, with the message on it
    assert (await home.owner_page.get(page)).status_code == 200
