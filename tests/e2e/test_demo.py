"""The demo as a newcomer runs it: `doorwarden demo --scenario` in a subprocess on a fresh
data directory and port, then chromium looks where the scenario says to look: the
resident's timeline has clips, the live page plays, the officer's page shows the
narrowed warrant and the resident's page the notice; with the resident's page open, a
ring through the demo's agent (`doorwarden agent ring`) makes a notification, whose push
(handed to the service worker through DevTools, as the browser's push service would:
none is reachable offline) chimes on the page and opens the live page. With `--mqtt`
(a private Mosquitto), Home Assistant's discovery topics appear on the broker, and a
privacy zone the resident draws in chromium is black in the next live frames, nothing
restarted. Ctrl-C then stops it cleanly.

The demo does everything itself (server, three cameras on real footage, the story); the
test only waits for it, with a deadline, and reads its scenario.json for ids and URLs.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from doorwarden.crypto.keys import RecipientKey, b64d, key_id
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.member_backup import open_passphrase_backup
from doorwarden.crypto.seal import open_clip
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, ConsoleLog, open_page
from tests.e2e.helpers import sign_in
from tests.e2e.microphone import tone_bursts
from tests.e2e.resident_setup import PushDelivery, notifications
from tests.e2e.test_camera_settings import DARK, LIT, LUMA, draw
from tests.e2e.test_live_audio import AUDIO_SEEN
from tests.e2e.test_live_view import FRAMES_SHOWN
from tests.e2e.test_talk import TONE_HZ, dominant_hz
from tests.live_server import free_port
from tests.mosquitto import Mosquitto, private_broker, retained

pytestmark = pytest.mark.browser

DEMO_PASSWORD = "doorwarden-demo"
RESIDENT = "resident@demo.doorwarden"
OFFICER = "officer@demo.doorwarden"
ACROSS = "across@demo.doorwarden"  # owns the Porch: the camera with sound and a speaker
PRIVATE = "private@demo.doorwarden"  # owns Quiet House, the end-to-end home
E2E_PASSPHRASE = "quiet house demo key"  # printed by the demo (demo/cast.py)
# Startup (about 20 s on a loaded 2-core machine), the first clips (20 s of footage and
# their upload) and the story: 3 minutes is the deadline, not the expectation.
SCENARIO_DEADLINE_S = 180


@dataclass
class DemoRun:
    process: subprocess.Popen[bytes]
    output: Path
    url: str
    outcome: dict[str, Any]
    data: Path
    broker: Mosquitto

    def log(self) -> str:
        return self.output.read_text(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _as_at_a_terminal() -> None:
    """Ctrl-C live, as a command typed at a terminal has it: a suite started as a shell's
    background job inherits SIGINT ignored, and the demo rightly keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[DemoRun]:
    root = tmp_path_factory.mktemp("demo-e2e")
    stack = contextlib.ExitStack()
    data, output, port = root / "data", root / "demo.out", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
    broker = stack.enter_context(private_broker(root / "mqtt"))  # its own: no other test's topics
    command = [sys.executable, "-m", "doorwarden", "demo", "--scenario"]
    command += ["--data-dir", str(data), "--port", str(port)]
    command += ["--mqtt", f"mqtt://{broker.host}:{broker.port}"]
    with output.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_as_at_a_terminal
        )
    try:
        deadline = time.monotonic() + SCENARIO_DEADLINE_S
        scenario = data / "scenario.json"
        while not scenario.exists():
            if process.poll() is not None:
                pytest.fail(f"the demo exited ({process.returncode}):\n{output.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no scenario.json in {SCENARIO_DEADLINE_S} s:\n{output.read_text()}")
            time.sleep(0.5)
        outcome = json.loads(scenario.read_text())
        yield DemoRun(process, output, f"http://127.0.0.1:{port}", outcome, data, broker)
    finally:
        _stop(process)
        stack.close()


@dataclass
class SignedIn:
    page: Page
    console: ConsoleLog


@pytest.fixture(scope="module")
def signed_in(browser: Browser, demo: DemoRun) -> Iterator[dict[str, SignedIn]]:
    """One signed-in browser context per account, shared by this module's tests (a
    sign-in costs an argon2 check, which a busy machine makes slow)."""
    made: dict[str, SignedIn] = {}
    try:
        for email in (RESIDENT, OFFICER):
            console = ConsoleLog()
            page = open_page(browser, console)
            sign_in(page, demo.url, email, DEMO_PASSWORD)
            expect(page).not_to_have_url(re.compile(r"/login"))
            made[email] = SignedIn(page, console)
        yield made
    finally:
        for each in made.values():
            each.page.context.close()


def as_(signed_in: dict[str, SignedIn], email: str) -> tuple[Page, ConsoleLog]:
    each = signed_in[email]
    each.console.errors.clear()
    return each.page, each.console


def test_the_scenario_said_each_step_and_where_to_look(demo: DemoRun) -> None:
    told = demo.log()
    for step in range(1, 10):
        assert f"[{step}/9]" in told, told
    assert "$ doorwarden agent ring front-door" in told and "rang front-door: event" in told
    assert "Scenario complete" in told and "Traceback" not in told
    assert demo.outcome["warrant"]["status"] == "narrowed"
    assert demo.outcome["warrant"]["verified"] and demo.outcome["community"]["verified"]
    # Through the API too: the officer sees the narrowed warrant and its package.
    client = httpx.Client(base_url=demo.url, timeout=60)
    signed_in = client.post("/api/v1/session", json={"email": OFFICER, "password": DEMO_PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    warrant = demo.outcome["warrant"]["id"]
    asked = client.get(f"/api/v1/agencies/{demo.outcome['agency_id']}/requests/{warrant}")
    client.close()
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "narrowed" and len(asked.json()["packages"]) == 1


def test_the_resident_timeline_shows_clips(demo: DemoRun, signed_in: dict[str, SignedIn]) -> None:
    page, console = as_(signed_in, RESIDENT)
    page.goto(demo.outcome["urls"]["timeline"])
    expect(page.locator("ol.timeline li.clip").first).to_be_visible()
    expect(page.locator("#clips-heading")).to_contain_text("clip")
    assert console.errors == []


def test_the_live_page_plays(demo: DemoRun, signed_in: dict[str, SignedIn]) -> None:
    home, device = demo.outcome["households"]["demo-house"], demo.outcome["devices"]["demo-house"]
    page, console = as_(signed_in, RESIDENT)
    page.goto(f"{demo.url}/households/{home}/cameras/{device}/live")
    expect(page.locator("#live")).to_have_attribute("data-state", "streaming", timeout=30_000)
    shown = page.locator("#live-video").evaluate(FRAMES_SHOWN)
    errors = list(console.errors)
    page.goto("about:blank")  # stop watching (the agent stops encoding for live)
    # vtest.avi at 10 fps, re-encoded live on a busy machine: frames keep coming.
    assert shown["frames"] >= 5 and shown["advanced"] >= 0.5, shown
    assert (shown["width"], shown["height"]) == (768, 576), shown
    assert errors == []


def test_the_officer_sees_the_narrowed_warrant(
    demo: DemoRun, signed_in: dict[str, SignedIn]
) -> None:
    page, console = as_(signed_in, OFFICER)
    page.goto(demo.outcome["urls"]["officer_request"])
    expect(page.locator("main")).to_contain_text(demo.outcome["warrant"]["case_number"])
    expect(page.locator("main")).to_contain_text(re.compile("narrowed", re.IGNORECASE))
    expect(page.locator("#decision-reason")).to_contain_text("not particular to it")
    assert console.errors == []


def test_the_resident_sees_the_notice(demo: DemoRun, signed_in: dict[str, SignedIn]) -> None:
    page, console = as_(signed_in, RESIDENT)
    page.goto(demo.outcome["urls"]["requests"])
    notices = page.locator(".legal-notices")
    expect(notices).to_contain_text(demo.outcome["warrant"]["case_number"])
    expect(notices).to_contain_text("narrowed")
    assert console.errors == []


def test_a_ring_chimes_on_the_open_resident_page_and_opens_live_view(
    demo: DemoRun, signed_in: dict[str, SignedIn]
) -> None:
    """The scenario's ring once more, with the resident's page open: through the demo's
    running agent, to a notification recorded for the resident, whose push the page's
    service worker receives (from DevTools: offline there is no push service) and passes
    to the page, which chimes."""
    home, device = demo.outcome["households"]["demo-house"], demo.outcome["devices"]["demo-house"]
    page, console = as_(signed_in, RESIDENT)
    page.context.grant_permissions(["notifications"], origin=demo.url)
    page.goto(demo.outcome["urls"]["chime"])
    page.evaluate("() => navigator.serviceWorker.ready")
    push = PushDelivery(page, demo.url)
    push.registration_id()
    resident = httpx.Client(base_url=demo.url, timeout=60)
    try:
        login = {"email": RESIDENT, "password": DEMO_PASSWORD}
        assert resident.post("/api/v1/session", json=login).status_code == 200
        before = {n["id"] for n in resident.get("/api/v1/account/notifications").json()}
        state = demo.data / "agents" / "demo-house" / "state"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
        command = [sys.executable, "-m", "doorwarden", "agent", "ring", "front-door"]
        rang = subprocess.run(
            [*command, "--state", str(state)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rang.returncode == 0 and rang.stdout.startswith("rang front-door"), rang
        deadline = time.monotonic() + 30
        while True:
            new = [
                n
                for n in resident.get("/api/v1/account/notifications").json()
                if n["id"] not in before and n["kind"] == "ring"
            ]
            if new or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        resident.close()
    [note] = new
    assert note["device_id"] == device
    assert note["url"] == f"/households/{home}/cameras/{device}/live"
    # What notify/ would encrypt for a subscription (notify/payload.py), as it arrives.
    push.deliver(
        {
            "v": 1,
            "kind": note["kind"],
            "id": note["id"],
            "title": note["title"],
            "body": note["body"],
            "url": note["url"],
            "thumbnail": note["thumbnail"],
            "at": note["occurred_at"],
        }
    )
    [shown] = notifications(page)
    assert shown["title"] == "Someone is at the door" and shown["tag"] == note["id"]
    expect(page.locator("html")).to_have_attribute("data-chimes", "1")
    banner = page.get_by_role("alert")
    expect(banner.get_by_role("link", name="Watch live")).to_have_attribute("href", note["url"])
    banner.get_by_role("link", name="Watch live").click()
    expect(page).to_have_url(f"{demo.url}{note['url']}")
    expect(page.locator("#live")).to_be_visible()
    errors = list(console.errors)
    page.goto("about:blank")  # stop watching
    assert errors == []


def test_the_porch_owner_hears_the_camera_and_talks_through_its_speaker(
    demo: DemoRun, browser: Browser, tmp_path: Path
) -> None:
    """Issue 18 in the demo: Ravi, in chromium with a fake microphone playing tone bursts,
    hears the Porch camera (Unmute; the video decodes its sound) and presses Talk; the
    tone reaches the Porch doorbell's speaker (the ONVIF rig's recording, read here)."""
    told = demo.log()
    if "two-way talk needs GStreamer's RTSP server" in told:
        if os.environ.get("CI") == "true":
            pytest.fail("the demo ran without the Porch speaker")
        pytest.skip("the Porch speaker is absent here (GStreamer's RTSP server)")
    assert "the tone reached the Porch camera's speaker" in told, told
    heard = demo.data / "porch-speaker" / "audio.s16"
    before = heard.stat().st_size
    wav = tone_bursts(tmp_path / "tone.wav", TONE_HZ)
    flags = ["--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}"]
    with_mic = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + flags
    )
    console = ConsoleLog()
    try:
        page = open_page(with_mic, console)
        page.context.grant_permissions(["microphone"], origin=demo.url)
        sign_in(page, demo.url, ACROSS, DEMO_PASSWORD)
        expect(page).not_to_have_url(re.compile(r"/login"))
        page.goto(demo.outcome["urls"]["talk_live"])
        expect(page.locator("#live")).to_have_attribute("data-state", "streaming", timeout=30_000)
        mute = page.locator("#live-mute")
        expect(mute).to_have_text("Unmute")
        mute.click()
        expect(mute).to_have_text("Mute")
        sound = page.locator("#live-video").evaluate(AUDIO_SEEN)
        assert sound["decoded"] > 0 and sound["tracks"] == 1 and not sound["muted"], sound
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#talk")).to_have_attribute("data-state", "talking")
        page.wait_for_timeout(2_500)
        page.get_by_role("button", name="Stop").click()
        expect(page.locator("#talk")).to_have_attribute("data-state", "ended")
        errors = list(console.errors)
    finally:
        with_mic.close()
    rate, size = 8000, -1  # G.711 at 8 kHz: what the rig's backchannel takes
    for _ in range(50):  # until the speaker stops hearing
        if heard.stat().st_size == size:
            break
        size = heard.stat().st_size
        time.sleep(0.2)
    samples = np.frombuffer(heard.read_bytes()[before:], dtype="<i2").astype(np.float64) / 32768
    assert samples.size >= 1.5 * rate, samples.size
    found = dominant_hz(samples[rate // 2 :], rate)  # past the encoder's start-up
    assert abs(found - TONE_HZ) < 20, found
    assert errors == []


SIGINT_BIT = 1 << (signal.SIGINT - 1)


def test_home_assistant_discovers_every_camera_on_the_broker(demo: DemoRun) -> None:
    """`--mqtt`: each camera's motion, person and doorbell entities, retained with their
    availability, and the owner's commands (a detection switch, the mode select)."""
    configs = retained(demo.broker.host, demo.broker.port, "homeassistant/#", settle_s=1.0)
    entities: dict[str, set[str]] = {}
    for topic, payload in configs.items():
        if not payload:
            continue  # an entity the agent removed (read-only where commands are off)
        body = json.loads(payload)
        component = topic.split("/")[1]
        kind = body.get("device_class") or component
        entities.setdefault(component, set()).add(f"{kind}:{body['state_topic']}")
        assert body["availability_topic"] and body["unique_id"], body
        assert "image" not in json.dumps(body).lower(), body  # snapshots are off
    motion = {e for e in entities.get("binary_sensor", set()) if e.startswith("motion:")}
    person = {e for e in entities.get("binary_sensor", set()) if e.startswith("occupancy:")}
    doorbells = {e for e in entities.get("event", set()) if e.startswith("doorbell:")}
    assert len(motion) == len(person) == len(doorbells) == 3, entities  # the demo's 3 cameras
    assert len(entities.get("switch", set())) == 3 and entities.get("select"), entities
    online = retained(demo.broker.host, demo.broker.port, "doorwarden/#")
    assert [t for t, v in online.items() if t.endswith("availability") and v == b"online"]


def test_a_privacy_zone_drawn_in_the_browser_is_black_in_the_next_live_frames(
    demo: DemoRun, signed_in: dict[str, SignedIn]
) -> None:
    """The issue's whole loop in the demo: the resident draws over a snapshot, saves, the
    agent applies it, and the live page (open on its one connection throughout) goes
    black there, with nothing restarted."""
    home, device = demo.outcome["households"]["demo-house"], demo.outcome["devices"]["demo-house"]
    page, console = as_(signed_in, RESIDENT)
    live = page.context.new_page()
    try:
        live.goto(f"{demo.url}/households/{home}/cameras/{device}/live")
        expect(live.locator("#live")).to_have_attribute("data-state", "streaming", timeout=30_000)
        live.wait_for_function(
            "() => { const v = document.getElementById('live-video'); "
            "return v.videoWidth > 0 && v.currentTime > 0.5; }",
            timeout=15_000,
        )
        live.wait_for_function(
            f"() => {{ const v = document.getElementById('live-video'); "
            f"const l = ({LUMA})(v); return l && l.left > {LIT}; }}",
            timeout=15_000,
        )  # the scene is lit on the left before the zone

        page.goto(f"{demo.url}/households/{home}/cameras/{device}/settings")
        expect(page.locator("#camera-settings")).to_have_attribute("data-ready", "true")
        page.get_by_role("button", name="Take a snapshot").click()
        expect(page.locator("#camera-settings")).to_have_attribute(
            "data-snapshot", re.compile(r"^\d+x\d+$"), timeout=15_000
        )
        page.get_by_role("radio", name="Privacy zones").check()
        draw(page, [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#applied-status")).to_have_text("Applied", timeout=15_000)

        deadline = time.monotonic() + 15
        while True:
            now = live.locator("#live-video").evaluate(LUMA)
            # A picture (the stream restarts with the new mask: for a moment there is
            # none, and an empty canvas reads black everywhere), black on the left only.
            if now is not None and now["time"] > 0 and now["left"] < DARK < now["right"]:
                break
            assert time.monotonic() < deadline, f"the left half never went black: {now}"
            live.wait_for_timeout(100)
    finally:
        live.close()
    assert console.errors == []


def interrupt_another_thread(pid: int) -> int:
    """Ctrl-C as the kernel may deliver it: to one of the process's threads other than the
    main one (any thread that does not block SIGINT may receive a process's signal).
    Which thread was chosen (its id)."""
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda t: int(t.name)):
        tid = int(task.name)
        status = (task / "status").read_text()
        blocked = int(re.search(r"^SigBlk:\s*([0-9a-f]+)$", status, re.M).group(1), 16)  # type: ignore[union-attr]
        if tid != pid and not blocked & SIGINT_BIT:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.tgkill(pid, tid, signal.SIGINT) != 0:
                raise OSError(ctypes.get_errno(), "tgkill failed")
            return tid
    raise AssertionError("no thread but the main one takes SIGINT")


def _windows(plaintext: bytes, count: int = 6) -> list[bytes]:
    """64-byte windows spread over a clip's plaintext, past its first kilobyte (headers
    that any MP4 shares)."""
    span = len(plaintext) - 1024 - 64
    return [plaintext[1024 + i * span // count :][:64] for i in range(count)]


def test_the_end_to_end_home_records_clips_only_its_resident_opens(
    demo: DemoRun, browser: Browser
) -> None:
    """Quiet House (demo/e2e_home.py): its camera's clips are sealed end to end -- mode e2e,
    wrapped to the resident's key only, refused by the server's player -- and the key the
    printed passphrase unlocks opens them; the server's files hold none of the plaintext.
    In chromium, the resident unlocks the key with that passphrase."""
    home = demo.outcome["households"]["quiet-house"]
    api = httpx.Client(base_url=demo.url, timeout=30)
    try:
        login = api.post("/api/v1/session", json={"email": PRIVATE, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        api.headers["x-csrf-token"] = login.json()["csrf_token"]
        deadline = time.monotonic() + SCENARIO_DEADLINE_S
        while not (clips := api.get(f"/api/v1/households/{home}/clips").json()):
            assert time.monotonic() < deadline, "Quiet House's camera delivered no clip"
            time.sleep(1)
        clip = clips[0]["id"]
        for path in ("video", "thumbnail"):
            refused = api.get(f"/api/v1/households/{home}/clips/{clip}/{path}")
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"]["code"] == "end_to_end"
        export = api.get(f"/api/v1/households/{home}/clips/{clip}/sealed")
        assert export.status_code == 200, export.text
        backup = api.post("/api/v1/account/keyring/backups/passphrase/fetch")
        assert backup.status_code == 200, backup.text
        me = api.get("/api/v1/account").json()["id"]
    finally:
        api.close()
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        files = {name.split(".", 1)[1]: archive.read(name) for name in archive.namelist()
                 if name[0].isdigit()}  # fmt: skip
        device = json.loads(archive.read("devices.json"))
    signed = SignedManifest.loads(files["manifest.json"])
    key = RecipientKey.from_bytes(
        open_passphrase_backup(backup.json(), user_id=me, passphrase=E2E_PASSPHRASE)
    )
    assert signed.manifest.mode == "e2e"
    assert [w.recipient for w in signed.manifest.recipients] == [key_id(key.public)]
    [public] = [b64d(d["public_key"], what="k", length=32) for d in device]
    plaintext = b"".join(open_clip(signed, public, [files["clip.dws"]], key))
    assert plaintext[4:8] == b"ftyp"  # an MP4, opened with the resident's key only
    server_files = [
        p for p in demo.data.rglob("*")
        if p.is_file() and not p.is_relative_to(demo.data / "agents")
        and not p.is_relative_to(demo.data / "footage")
    ]  # fmt: skip
    needles = _windows(plaintext)
    leaked = [str(p) for p in server_files if any(n in p.read_bytes() for n in needles)]
    assert leaked == []

    context_page = open_page(browser, ConsoleLog())
    try:
        sign_in(context_page, demo.url, PRIVATE, DEMO_PASSWORD)
        context_page.goto(f"{demo.url}/account/keyring")
        context_page.locator("#unlock-passphrase").fill(E2E_PASSPHRASE)
        context_page.get_by_role("button", name="Unlock with my passphrase").click()
        expect(context_page.locator("#key-ready")).to_be_visible(timeout=60_000)
        expect(context_page.locator("#ready-key-id")).to_contain_text(key_id(key.public))

        # With no command line: the clip plays verified, decrypted in the page...
        context_page.goto(f"{demo.url}/households/{home}/clips/{clip}")
        status = context_page.locator("#e2e-status")
        expect(status).to_have_attribute("data-state", re.compile("verified|warning"),
                                         timeout=60_000)  # fmt: skip
        expect(status).to_contain_text(re.compile("decrypted on this device", re.IGNORECASE))
        # Streamed while it was checked: the demo's camera sealed it as fragmented MP4.
        player = context_page.locator("#e2e-player")
        expect(player).to_have_attribute("data-playback", "stream")
        context_page.wait_for_function(
            "() => { const v = document.getElementById('clip-video');"
            " return v && v.readyState >= 2 && v.duration > 0; }",
            timeout=30_000,
        )
        # ... and the camera streams live, sealed to the resident, opened here.
        device = demo.outcome["devices"]["quiet-house"]
        context_page.goto(f"{demo.url}/households/{home}/cameras/{device}/live")
        live = context_page.locator("#live")
        expect(live).to_have_attribute("data-state", "streaming", timeout=30_000)
        expect(live).to_have_attribute("data-e2e", "verified", timeout=30_000)
        shown = context_page.locator("#live-video").evaluate(FRAMES_SHOWN)
        assert shown["frames"] >= 3 and shown["advanced"] > 0, shown
    finally:
        context_page.context.close()


def test_ctrl_c_stops_everything_cleanly(demo: DemoRun) -> None:
    """Last in this module: it ends the demo the others looked at. The Ctrl-C goes to a
    thread other than the main one, which the main thread must notice all the same."""
    if sys.platform == "linux":
        interrupt_another_thread(demo.process.pid)
    else:  # pragma: no cover - tgkill and /proc are Linux's
        demo.process.send_signal(signal.SIGINT)
    code = demo.process.wait(timeout=90)
    told = demo.log()
    assert code == 0, told
    assert "Stopping: the cameras finish their clips" in told and "Stopped." in told, told
    assert "Traceback" not in told, told
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{demo.url}/healthz", timeout=2)
