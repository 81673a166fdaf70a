"""The installable web app's routes and the resident's screens as the server renders
them (the browser's side is tests/e2e/test_pwa*.py and test_resident_screens.py, which
skip where there is no chromium): the service worker and manifest are public and
revalidated, the icons are what the generator draws, filters that do not parse are
dropped and said, and the pages are the household's members' alone."""

from __future__ import annotations

from fastapi import FastAPI

from doorwarden.roles import Role
from doorwarden.web import icons
from tests.factories import Factory, make_client


async def test_the_service_worker_and_manifest_are_public_and_revalidated(app: FastAPI) -> None:
    anonymous = make_client(app)
    worker = await anonymous.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"
    assert "notificationclick" in worker.text and "showNotification" in worker.text
    manifest = await anonymous.get("/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest.headers["content-type"] == "application/manifest+json"
    body = manifest.json()
    assert body["display"] == "standalone" and body["start_url"] == "/households"
    assert body["scope"] == "/" and body["name"] == "doorwarden"
    assert {(i["sizes"], i["type"]) for i in body["icons"]} == {
        ("192x192", "image/png"),
        ("512x512", "image/png"),
    }
    for icon in body["icons"]:
        assert (await anonymous.get(icon["src"])).status_code == 200
    await anonymous.aclose()


def test_the_committed_icons_are_what_the_generator_draws() -> None:
    for size in icons.SIZES:
        committed = (icons.ICONS_DIR / f"icon-{size}.png").read_bytes()
        assert committed == icons.png(size), f"run python -m doorwarden.web.icons ({size})"


async def test_the_timeline_drops_filters_that_do_not_parse(app: FastAPI, factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    page = await factory.signed_in(owner)
    good = await page.get(
        f"/households/{home}/events",
        params={"device_id": str(camera.id), "kind": "person", "day": "2026-12-06"},
    )
    assert good.status_code == 200
    assert f'data-device-id="{camera.id}"' in good.text
    assert 'data-kind="person"' in good.text and 'data-day="2026-12-06"' in good.text
    assert "Ignored a filter" not in good.text
    bad = await page.get(
        f"/households/{home}/events",
        params={"device_id": "x" * 5000, "kind": "<script>", "day": "2026-13-40" + "9" * 5000},
    )
    assert bad.status_code == 200
    assert "Ignored a filter that could not be read: device_id, kind, day." in bad.text
    assert 'data-device-id=""' in bad.text and 'data-kind=""' in bad.text
    assert "<script>" not in bad.text.split("</header>", 1)[1].split("<script src=")[0]
    await page.aclose()


async def test_the_grid_has_a_tile_per_paired_camera(app: FastAPI, factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    front = await factory.camera(owner, home, "Front door")
    back = await factory.camera(owner, home, "Back door")
    page = await factory.signed_in(owner)
    grid = await page.get(f"/households/{home}/cameras/grid")
    assert grid.status_code == 200
    for camera in (front, back):
        assert f'data-stream="/api/v1/households/{home}/devices/{camera.id}/live"' in grid.text
        assert f'href="/households/{home}/cameras/{camera.id}/live"' in grid.text
    assert grid.text.count("No snapshot yet") == 2  # no clips yet
    await page.aclose()


async def test_the_screens_are_the_households_members_alone(app: FastAPI, factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    stranger = await factory.signed_in(await factory.user())
    admin = await factory.signed_in(await factory.user(Role.operator_admin))
    anonymous = make_client(app)
    for path in ("/events", "/cameras/grid"):
        url = f"/households/{home}{path}"
        assert (await stranger.get(url)).status_code == 403, url
        assert (await admin.get(url)).status_code == 403, url
        refused = await anonymous.get(url)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    for client in (stranger, admin, anonymous):
        await client.aclose()
