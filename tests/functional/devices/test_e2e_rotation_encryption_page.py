"""The household's encryption page (docs/e2e.md, "What the server sees"): before a
switch it says what the server still sees in end-to-end mode (times, camera, labels,
motion score) and what it does not (frames, thumbnails, live view), the trade-offs
(notifications without images, no search of content), and which members have no key
yet; only an owner switches, and only with the confirmation ticked."""

from __future__ import annotations

import html

from doorwarden.crypto.keys import RecipientKey, b64e
from tests.factories import Factory
from tests.functional.devices.test_camera_pages import as_browser, post_form


async def test_the_encryption_page_says_what_changes_and_switches_only_when_confirmed(
    factory: Factory,
) -> None:
    owner, partner = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, partner)
    owner_page = await as_browser(factory, owner)
    page = f"/households/{home}/encryption"

    shown = await owner_page.get(page)
    assert shown.status_code == 200, shown.text
    text = html.unescape(shown.text)
    assert 'data-mode="standard"' in text
    for visible in ("When each clip starts and ends", "Which camera", "motion score"):
        assert visible in text
    assert "Thumbnails</th><td><strong>No</strong>" in text
    assert "Video frames and audio</th><td><strong>No</strong>" in text
    assert "without a picture" in text and "No search of what is in the video" in text
    # Nobody has a key: both are named, and switching is refused with the reason.
    assert owner.email in text and partner.email in text
    detail = await owner_page.get(f"/households/{home}")
    assert f'href="{page}"' in detail.text

    api = await factory.signed_in(owner)
    key = RecipientKey.generate()
    assert (
        await api.put("/api/v1/account/e2e-key", json={"public_key": b64e(key.public)})
    ).status_code == 200
    shown = html.unescape((await owner_page.get(page)).text)
    without = shown.split('id="without-key"')[1].split("</ul>")[0]
    assert partner.email in without and owner.email not in without

    unconfirmed = await post_form(owner_page, page, page, {"mode": "e2e"})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.text
    assert (await api.get(f"/api/v1/households/{home}/plan")).json()["encryption"] == "standard"

    switched = await post_form(owner_page, page, page, {"mode": "e2e", "confirm": "yes"})
    assert switched.status_code == 303, switched.text
    assert (await api.get(f"/api/v1/households/{home}/plan")).json()["encryption"] == "e2e"
    assert 'data-mode="e2e"' in (await owner_page.get(switched.headers["location"])).text

    # A shared member reads the page but has no switch; a forged post is refused.
    shared_page = await as_browser(factory, partner)
    seen = await shared_page.get(page)
    assert seen.status_code == 200 and 'name="mode"' not in seen.text
    forged = await post_form(shared_page, page, page, {"mode": "standard", "confirm": "yes"})
    assert forged.status_code == 403
    assert (await api.get(f"/api/v1/households/{home}/plan")).json()["encryption"] == "e2e"
    stranger = await as_browser(factory, await factory.user())
    assert (await stranger.get(page)).status_code in (403, 404)
