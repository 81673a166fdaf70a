"""Steps 7 and 8 of `doorwarden demo --scenario`: the doorbell.

7. With the household Away, the Front door's doorbell rings once, through the real agent:
   `doorwarden agent ring front-door --state <its state dir>` (a subprocess, as a script
   or a button daemon would run it) reaches the demo's running agent on its socket; the
   agent records a clip labelled ring and sends the event over its control connection.
   The scenario then finds the event on the household's timeline (the events API) and
   the notification recorded for the resident (GET /api/v1/account/notifications), and
   prints what happened to it: with no push subscription (the demo's resident has none
   until they subscribe a browser) nothing is sent, and the notification says
   `no_channel`; the demo never pretends a push reached a phone.
8. The owner switches the household to Home (motion and people alert nobody; the agent
   hears the mode within a second, in its mode.json), rings again: the ring notifies all
   the same. Then back to Away.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from doorwarden.demo.cast import HOMES, RESIDENT

if TYPE_CHECKING:
    from doorwarden.demo.api import Api
    from doorwarden.demo.cast import DemoAccount, DemoHome


class Narrator(Protocol):
    """What these steps need of the scenario (scenario.py, which imports this module:
    a protocol rather than an import back)."""

    stage: Any  # scenario.Stage: devices, ring_states
    outcome: Any  # scenario.Outcome: rings, modes

    def say(self, text: str = "", indent: int = 6) -> None: ...
    def step(self, title: str) -> None: ...
    def look(self, key: str, path: str, account: DemoAccount | None, what: str) -> None: ...
    def api(self, account: DemoAccount) -> Api: ...
    def household(self, home: DemoHome) -> uuid.UUID: ...


HOME = HOMES[0]
CAMERA = HOME.camera.name
AWAY, AT_HOME = "away", "home"
WAIT_S = 30.0  # for the event and its notification; about a second on an idle machine
MODE_WAIT_S = 10.0
DEBOUNCE_S = 3.0  # the agent's default: a second press within it counts once
RANG = re.compile(r"^rang (?P<camera>\S+): event (?P<id>\S+) at (?P<at>\S+),")
SETTLED = ("delivered", "no_channel", "gave_up")


Finder = Callable[[], dict[str, Any] | None]


class RingError(Exception):
    """The ring did not go as it should; the message says where it stopped."""


@dataclass(frozen=True)
class Rang:
    agent_event_id: str
    at: datetime
    said: str  # the command's own line


def ring_command(state_dir: Path, camera: str = CAMERA) -> list[str]:
    return [sys.executable, "-m", "doorwarden", "agent", "ring", camera, "--state", str(state_dir)]


def ring(state_dir: Path, camera: str = CAMERA) -> Rang:
    """`doorwarden agent ring CAMERA` against the running agent of `state_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
    for _ in range(2):
        done = subprocess.run(  # noqa: S603 - our own CLI, with arguments we made
            ring_command(state_dir, camera),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        said = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            raise RingError(f"doorwarden agent ring failed ({done.returncode}): {said}")
        if "debounced" in said:  # a press moments ago: wait out the debounce once
            time.sleep(DEBOUNCE_S)
            continue
        found = RANG.match(said)
        if found is None:  # "no agent is running": queued on disk for the next start
            raise RingError(f"the demo's agent did not take the ring: {said}")
        return Rang(found["id"], datetime.fromisoformat(found["at"]), said)
    raise RingError(f"the ring was debounced twice: {said}")


def agent_mode(state_dir: Path) -> str | None:
    """The mode the agent last heard from the server (its mode.json), if any."""
    try:
        mode = json.loads((state_dir / "mode.json").read_text()).get("mode")
    except (OSError, ValueError, AttributeError):
        return None
    return mode if isinstance(mode, str) else None


def _same_instant(value: str, at: datetime) -> bool:
    """The same moment (to the millisecond the agent sends), however the server writes it."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return abs((moment - at).total_seconds()) < 0.001


def _hms(value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%H:%M:%S")


class DoorbellSteps:
    """The two steps, told through the scenario's voice and its signed-in API clients."""

    def __init__(self, scenario: Narrator) -> None:
        self.s = scenario
        self.household = scenario.household(HOME)
        self.device = scenario.stage.devices[HOME.slug]
        self.state_dir = scenario.stage.ring_states[HOME.slug]
        self.last_ring = 0.0

    # -- the steps -------------------------------------------------------------------

    def rings(self) -> None:
        self.s.step("Someone rings the Front door")
        owner = self.s.api(RESIDENT)
        self.set_mode(AWAY, "Alex is out")
        subscriptions = owner.get("/api/v1/account/push-subscriptions")
        first = self.ring_once(AWAY)
        h = self.household
        self.s.look("events", f"/households/{h}/events", RESIDENT, "the ring on the timeline")
        self.s.look(
            "notifications",
            "/api/v1/account/notifications",
            RESIDENT,
            "the notification and every delivery attempt",
        )
        self.s.look("ring_live", first["url"], RESIDENT, "the live page the notification opens")
        self.s.look(
            "chime",
            f"/households/{h}/cameras/grid",
            RESIDENT,
            "keep it open and click once (browsers play sound only after a click): a "
            "ring's push makes it chime and show a 'Watch live' banner",
        )
        self._explain_delivery(subscriptions)

    def home_mode(self) -> None:
        self.s.step("Home: motion stays quiet, the doorbell still rings")
        modes = self.s.api(RESIDENT).get(f"/api/v1/households/{self.household}/modes")
        setting = {m: modes["modes"][m]["cameras"].get(self.device) or {} for m in modes["modes"]}
        self.set_mode(AT_HOME, "Alex is back")
        self.s.say(
            f"in Home the Front door camera {_setting_words(setting.get(AT_HOME, {}))}; in "
            f"Away it {_setting_words(setting.get(AWAY, {}))}: motion and people are kept "
            "on the timeline either way, a ring notifies in every mode"
        )
        wait = DEBOUNCE_S - (time.monotonic() - self.last_ring)
        if wait > 0:
            time.sleep(wait)  # a second press within the debounce would count once
        self.ring_once(AT_HOME)
        self.set_mode(AWAY, "and back")
        self.s.look(
            "modes", f"/households/{self.household}/modes", RESIDENT, "modes, schedule, snooze"
        )

    # -- the parts -------------------------------------------------------------------

    def set_mode(self, mode: str, why: str) -> None:
        owner = self.s.api(RESIDENT)
        path = f"/api/v1/households/{self.household}/mode"
        current = owner.get(path)
        if current["mode"] == mode:
            self.s.say(f"{why}: the household is already {current['label']}")
        else:
            switched = owner.put(path, {"mode": mode})
            self.s.say(
                f"{why}: {RESIDENT.email} switches the household from {current['label']} to "
                f"{switched['label']} (an audit event, mode:set)"
            )
        self.s.outcome.modes.append(mode)
        began, deadline = time.monotonic(), time.monotonic() + MODE_WAIT_S
        while agent_mode(self.state_dir) != mode and time.monotonic() < deadline:
            time.sleep(0.1)
        heard = agent_mode(self.state_dir)
        if heard == mode:
            took = max(time.monotonic() - began, 0.1)
            self.s.say(
                f"  the Front door's agent has it within {took:.1f} s "
                "(its mode.json): it records and detects as that mode says"
            )
        else:
            self.s.say(f"  the Front door's agent has not heard it yet (it has {heard or 'none'})")

    def ring_once(self, mode: str) -> dict[str, Any]:
        """Ring through the agent, find the event and the resident's notification."""
        resident = self.s.api(RESIDENT)
        events = f"/api/v1/households/{self.household}/events"
        command = f"doorwarden agent ring {CAMERA} --state {self.state_dir}"
        began = time.monotonic()
        rang = ring(self.state_dir)
        self.last_ring = time.monotonic()
        self.s.say(f"$ {command}")
        self.s.say(f"  {rang.said}")
        event = self._wait(
            "the ring on the timeline",
            lambda: next(
                (
                    e
                    for e in resident.get(events, kind="ring", device_id=self.device, limit="20")
                    if _same_instant(e["occurred_at"], rang.at)
                ),
                None,
            ),
        )
        self.s.say(
            f"the server has the ring: event {event['id']}, {_hms(event['occurred_at'])} UTC "
            f"(the press's own time), kind ring{', new (not seen yet)' if event['new'] else ''}; "
            f"{time.monotonic() - began:.1f} s after the command"
        )
        note = self._wait(
            "the resident's notification",
            lambda: self._notification(rang.at, settled=True),
            settle=lambda: self._notification(rang.at, settled=False),
        )
        attempts = note["attempts"]
        tried = (
            ", ".join(f"{a['channel']} {a['status']}" for a in attempts)
            if attempts
            else "no delivery attempt"
        )
        self.s.say(
            f'notification for {RESIDENT.email}: "{note["title"]}: '
            f'{note["body"]}", status {note["status"]}, {tried}; it opens {note["url"]}'
        )
        record = {
            "mode": mode,
            "agent_event_id": rang.agent_event_id,
            "event_id": event["id"],
            "occurred_at": event["occurred_at"],
            "notification_id": note["id"],
            "notification_status": note["status"],
            "attempts": len(attempts),
            "url": note["url"],
        }
        self.s.outcome.rings.append(record)
        return record

    def _notification(self, at: datetime, *, settled: bool) -> dict[str, Any] | None:
        for note in self.s.api(RESIDENT).get("/api/v1/account/notifications", limit="50"):
            if (
                note["kind"] == "ring"
                and note["device_id"] == self.device
                and _same_instant(note["occurred_at"], at)
                and (not settled or note["status"] in SETTLED or note["attempts"])
            ):
                return dict(note)
        return None

    @staticmethod
    def _wait(what: str, find: Finder, settle: Finder | None = None) -> dict[str, Any]:
        """`find()` until it answers; then, at the deadline, whatever `settle()` has."""
        deadline = time.monotonic() + WAIT_S
        while True:
            found = find()
            if found is not None:
                return dict(found)
            if time.monotonic() > deadline:
                late = settle() if settle is not None else None
                if late is not None:
                    return dict(late)
                raise RingError(f"no sign of {what} within {WAIT_S:.0f} s (see demo.log)")
            time.sleep(0.2)

    def _explain_delivery(self, subscriptions: list[dict[str, Any]]) -> None:
        if not subscriptions:
            self.s.say(
                f"{RESIDENT.email} has no push subscription, so the server sent nothing "
                "(no_channel: no push, no e-mail). Subscribe a browser on /account "
                "('Notify this browser'), and rings push to it; offline, a browser's push "
                "service (Google's, Mozilla's) cannot be reached: the attempts are recorded "
                "as failed and retried with backoff. The chime plays in the open app when "
                "its service worker receives the push (tests/e2e/test_demo.py hands it one "
                "through chromium's DevTools, as the push service would)."
            )
        else:
            hosts = ", ".join(sorted({s["endpoint_host"] for s in subscriptions}))
            self.s.say(
                f"{RESIDENT.email} has {len(subscriptions)} push subscription(s) ({hosts}): "
                "each attempt is listed above and on /account; offline, a push service on "
                "the internet cannot be reached, so those attempts fail and are retried"
            )


def _setting_words(setting: dict[str, Any]) -> str:
    does = [w for w, on in (("records", "record"), ("detects", "detect")) if setting.get(on)]
    alerts = "alerts for motion and people" if setting.get("notify") else "alerts nobody for motion"
    return (" and ".join(does) or "neither records nor detects") + f", {alerts}"
