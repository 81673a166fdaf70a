"""`doorwarden demo --scenario`: the story, told through the JSON API as each person's
browser or script would tell it, every step printed with where to look.

1. the cameras record motion events; the clips arrive sealed and verified;
2. the agency files a community request (residents choose) and a warrant naming two
   homes by address;
3. one resident shares a clip, the others ignore the request; the legal reviewer
   narrows the warrant to one camera and the hour of the clip, with a reason;
4. the disclosure packages are built; the agency downloads them and the demo checks
   them offline with the verifier (`doorwarden verify`), pinning the instance key;
5. the resident reads the notice and the household's access log;
6. the transparency report counts all of it, and the audit log's checkpoint grows;
7. later, someone rings the Front door (through the real agent, `doorwarden agent
   ring`): the ring on the timeline, the resident's notification and what became of it;
8. the household switched to Home (motion alerts nobody), a second ring notifies all
   the same, then back to Away (doorbell.py).
9. the Porch's owner answers the door: the live stream carries the camera's sound, and
   a tone sent with Talk reaches the doorbell's speaker (its ONVIF backchannel); the
   agency is refused both (talk.py).

The windows asked for lie in the past and hold clips recorded in this run: the scenario
waits for them (nothing here grants footage not yet recorded).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from doorwarden.demo.api import Api
from doorwarden.demo.cast import (
    ACROSS,
    AGENCY_NAME,
    COMMUNITY_AREA,
    HOMES,
    NEIGHBOUR,
    OFFICER,
    RESIDENT,
    REVIEWER,
    DemoAccount,
    DemoHome,
)
from doorwarden.demo.documents import warrant_document
from doorwarden.demo.doorbell import DoorbellSteps, RingError
from doorwarden.demo.talk import PorchSpeaker, TalkStep, TalkStepError
from doorwarden.demo.transparency import Figures, LogWatch, figures
from doorwarden.formats.checkpoint import NoteKey
from doorwarden.verify.package import PackageOptions, PackageReport, verify_package

STEPS = 9
HOME, NEXT_DOOR, ACROSS_ROAD = HOMES
COURT = "Demo Borough Magistrates' Court"
JUDGE = "District Judge M. Okafor"
NARROWING_REASON = (
    "The affidavit places the burglary at the front door of 12 Elm Street in one short "
    "interval; 14 Elm Street's driveway and the rest of the window are not particular to it."
)


class ScenarioError(Exception):
    """A step could not be completed; the message says which and why."""


@dataclass
class Stage:
    """What the scenario works on: the running demo."""

    base_url: str
    households: dict[str, uuid.UUID]  # by home slug
    devices: dict[str, str]  # camera device id by home slug
    agency_id: uuid.UUID
    since: datetime  # when this run's cameras started
    packages_dir: Path
    out: TextIO
    clip_timeout_s: float = 240.0
    ring_states: dict[str, Path] = field(default_factory=dict)  # agent state dir by home slug
    speaker: PorchSpeaker | None = None  # the Porch doorbell's speaker (talk.py)


@dataclass
class Outcome:
    """What happened, for scenario.json and the tests."""

    clips: dict[str, dict[str, Any]] = field(default_factory=dict)
    community: dict[str, Any] = field(default_factory=dict)
    warrant: dict[str, Any] = field(default_factory=dict)
    notices: list[dict[str, Any]] = field(default_factory=list)
    before: Figures | None = None
    after: Figures | None = None
    urls: dict[str, str] = field(default_factory=dict)
    rings: list[dict[str, Any]] = field(default_factory=list)  # doorbell.py, in order
    modes: list[str] = field(default_factory=list)  # the modes the doorbell steps set
    talk: dict[str, Any] = field(default_factory=dict)  # talk.py: heard, the tone, refusals


def _hms(value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Scenario:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.outcome = Outcome()
        self._apis: dict[str, Api] = {}
        self._step = 0
        self._window: tuple[datetime, datetime] | None = None

    # -- telling ---------------------------------------------------------------------

    def say(self, text: str = "", indent: int = 6) -> None:
        lines = text.splitlines() or [""]
        self.stage.out.write("".join((" " * indent + line).rstrip() + "\n" for line in lines))
        self.stage.out.flush()

    def step(self, title: str) -> None:
        self._step += 1
        self.say()
        self.say(f"[{self._step}/{STEPS}] {title}", indent=2)

    def look(self, key: str, path: str, account: DemoAccount | None, what: str) -> None:
        url = self.stage.base_url + path
        self.outcome.urls[key] = url
        who = f" (sign in as {account.email})" if account is not None else ""
        self.say(f"look: {url}{who}: {what}")

    def api(self, account: DemoAccount) -> Api:
        if account.email not in self._apis:
            self._apis[account.email] = Api(self.stage.base_url, account)
        return self._apis[account.email]

    def close(self) -> None:
        for api in self._apis.values():
            api.close()

    def household(self, home: DemoHome) -> uuid.UUID:
        return self.stage.households[home.slug]

    # -- the story -------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.monotonic()
        self.say(
            "Scenario: a burglary on Elm Street, from the camera to the public report; then "
            "the doorbell, and answering it.",
            0,
        )
        self.outcome.before = figures(self.stage.base_url)
        log = LogWatch(self.stage.base_url)
        try:
            window = self.record()
            community_id, warrant_id = self.file(window)
            self.choose_and_review(community_id, warrant_id)
            self.packages(community_id, warrant_id)
            self.resident_sees(warrant_id)
            self.transparency(log)
            self.doorbell()
            self.answer_door()
        finally:
            self.close()
        self.say()
        self.say(f"Scenario complete in {time.monotonic() - started:.0f} s.", 0)
        return self.outcome

    def doorbell(self) -> None:
        steps = DoorbellSteps(self)
        try:
            steps.rings()
            steps.home_mode()
        except RingError as exc:
            raise ScenarioError(str(exc)) from exc

    def answer_door(self) -> None:
        try:
            self.outcome.talk = TalkStep(self, self.stage.speaker).run()
        except TalkStepError as exc:
            raise ScenarioError(str(exc)) from exc

    def record(self) -> tuple[datetime, datetime]:
        self.step("Motion events recorded and sealed")
        self.say("Three cameras are recording on motion; waiting for their clips of this run ...")
        first: dict[str, dict[str, Any]] = {}  # each camera's first clip of this run
        deadline = time.monotonic() + self.stage.clip_timeout_s
        while len(first) < len(HOMES):
            for home in HOMES:
                if home.slug in first:
                    continue
                clips = self.api(home.owner).get(
                    f"/api/v1/households/{self.household(home)}/clips", limit="50"
                )
                new = [
                    c for c in clips if datetime.fromisoformat(c["start_at"]) >= self.stage.since
                ]
                if new:
                    clip = first[home.slug] = new[-1]  # the oldest: the list is newest first
                    labels = ", ".join(clip["labels"]) or "-"
                    self.say(
                        f"  {home.camera.label} ({home.name}): clip {_hms(clip['start_at'])}-"
                        f"{_hms(clip['end_at'])} UTC, {clip['duration_ms'] / 1000:.0f} s, {labels}"
                    )
            if len(first) == len(HOMES):
                break
            if time.monotonic() > deadline:
                missing = ", ".join(h.camera.label for h in HOMES if h.slug not in first)
                raise ScenarioError(
                    f"no clip from {missing} within {self.stage.clip_timeout_s:.0f} s "
                    "(see demo.log in the data directory)"
                )
            time.sleep(1.0)
        self.say(
            "Each clip was sealed on its camera (a fresh AES-256-GCM key wrapped to the "
            "household, an Ed25519 signature, a hash chain) and listed once the server had "
            "checked every byte."
        )
        self.outcome.clips = first
        h1 = self.household(HOME)
        self.look("timeline", f"/households/{h1}/clips", RESIDENT, "the timeline of clips")
        self.look("cameras", f"/households/{h1}/cameras", RESIDENT, '"Watch live" per camera')
        now = datetime.now(UTC).replace(microsecond=0)
        return self.stage.since - timedelta(minutes=2), now - timedelta(seconds=1)

    def file(self, window: tuple[datetime, datetime]) -> tuple[str, str]:
        self.step("The agency files a community request and a warrant")
        officer = self.api(OFFICER)
        base = f"/api/v1/agencies/{self.stage.agency_id}/requests"
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        community = officer.post(
            f"{base}/community",
            {
                "case_number": f"CM-{stamp}",
                "area": COMMUNITY_AREA,
                "window_start": _iso(window[0]),
                "window_end": _iso(window[1]),
                "public_text": "A house on Elm Street was broken into a few minutes ago. If "
                "your camera saw someone on the street, you may share the clip; you may "
                "also ignore this request, and nobody will know.",
            },
        )
        self.say(
            f"community request {community['case_number']} ({community['area_km2']:.2f} km2 "
            f"of Elm Street, {_hms(window[0])}-{_hms(window[1])} UTC): every home with a "
            "camera in the area is told; the agency is not told which ones"
        )
        case = f"CR-{stamp}"
        details = {
            "case_number": case,
            "issuing_court": COURT,
            "judge": JUDGE,
            "signed_on": datetime.now(UTC).date().isoformat(),
            "expires_at": _iso(datetime.now(UTC) + timedelta(days=30)),
            "scope": [
                {"kind": "address", "address": HOME.address},
                {"kind": "address", "address": NEXT_DOOR.address},
            ],
            "window_start": _iso(window[0]),
            "window_end": _iso(window[1]),
            "justification": f"Burglary at {HOME.address}; the intruder was seen at the door.",
        }
        warrant_pdf = warrant_document(
            case, COURT, JUDGE, AGENCY_NAME, [HOME.address, NEXT_DOOR.address], window
        )
        warrant = officer.post_multipart(
            f"{base}/warrants",
            details,
            {"document": ("warrant.pdf", warrant_pdf, "application/pdf")},
        )
        self.say(
            f"warrant {case} from {COURT}, signed by {JUDGE}: the cameras at "
            f"{HOME.address} and {NEXT_DOOR.address}, {_hms(window[0])}-{_hms(window[1])} UTC; "
            "both homes are told at once"
        )
        self.outcome.community = {"id": community["id"], "case_number": community["case_number"]}
        self._window = window
        self.outcome.warrant = {
            "id": warrant["id"],
            "case_number": case,
            "asked": [_iso(window[0]), _iso(window[1])],
        }
        self.look(
            "officer_request",
            f"/agencies/{self.stage.agency_id}/requests/{warrant['id']}",
            OFFICER,
            "the warrant as the agency follows it",
        )
        return str(community["id"]), str(warrant["id"])

    def choose_and_review(self, community_id: str, warrant_id: str) -> None:
        self.step("Residents choose; the legal reviewer narrows the warrant")
        neighbour = self.api(NEIGHBOUR)
        h2 = self.household(NEXT_DOOR)
        view = neighbour.get(f"/api/v1/households/{h2}/legal")
        [asked] = [c for c in view["community_requests"] if c["id"] == community_id]
        if not asked["shareable_clips"]:
            raise ScenarioError(f"{NEXT_DOOR.name} has no clip in the community request's window")
        chosen = asked["shareable_clips"][0]
        neighbour.post(
            f"/api/v1/households/{h2}/community-requests/{community_id}/share",
            {"clip_ids": [chosen]},
        )
        self.outcome.community["shared_clip"] = chosen
        self.say(
            f"{NEIGHBOUR.email} ({NEXT_DOOR.name}) shares 1 of "
            f"{len(asked['shareable_clips'])} clip(s) of the window; {HOME.name} and "
            f"{ACROSS_ROAD.name} ({ACROSS.email}) ignore it"
        )
        shares = self.api(OFFICER).get(
            f"/api/v1/agencies/{self.stage.agency_id}/requests/{community_id}/shares"
        )
        self.say(f"the agency sees {len(shares)} shared clip(s), never who was asked or ignored")
        reviewer = self.api(REVIEWER)
        review = f"/api/v1/review/requests/{warrant_id}"
        reviewer.post(f"{review}/start")
        detail = reviewer.get(review)
        checks = ", ".join(
            f"{c['name']} {'ok' if c['ok'] else 'to attest'}" for c in detail["checks"]
        )
        self.say(
            f"the reviewer sees {len(detail['targets'])} camera(s) in scope and the checklist: "
            f"{checks}"
        )
        kept = self.stage.devices[HOME.slug]
        clip = self.outcome.clips[HOME.slug]
        assert self._window is not None  # noqa: S101 - file() ran first
        asked_start, asked_end = self._window
        start = max(datetime.fromisoformat(clip["start_at"]), asked_start)
        end = min(datetime.fromisoformat(clip["end_at"]), asked_end)
        decided = reviewer.post(
            f"{review}/narrow",
            {
                "keep_devices": [kept],
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "attest": detail["attestations_needed"],
                "reason": NARROWING_REASON,
            },
        )
        self.outcome.warrant.update(
            status=decided["status"],
            kept_device=kept,
            approved=[decided["approved_start"], decided["approved_end"]],
            packages=[p["id"] for p in decided["packages"]],
        )
        self.say(
            f"narrowed to 1 of 2 cameras ({HOME.camera.label}, {HOME.address}) and "
            f"{_hms(decided['approved_start'])}-{_hms(decided['approved_end'])} UTC, "
            f'because: "{NARROWING_REASON}"'
        )
        self.look("review", f"/review/{warrant_id}", REVIEWER, "the review and its checklist")

    def packages(self, community_id: str, warrant_id: str) -> None:
        self.step("The disclosure packages are built and verified offline")
        officer = self.api(OFFICER)
        agency = f"/api/v1/agencies/{self.stage.agency_id}"
        request = officer.get(f"{agency}/requests/{warrant_id}")
        [warrant_package] = request["packages"]
        community_package = officer.post(f"{agency}/requests/{community_id}/packages")
        key_text = officer.call("GET", "/api/v1/log/key").text.strip()
        key = NoteKey.from_verifier(key_text)
        self.stage.packages_dir.mkdir(parents=True, exist_ok=True)
        for what, package, record in (
            ("warrant", warrant_package, self.outcome.warrant),
            ("community", community_package, self.outcome.community),
        ):
            path = self.stage.packages_dir / f"{record['case_number']}.zip"
            path.write_bytes(officer.call("GET", package["download_url"]).content)
            report = verify_package(path, PackageOptions(instance_key=key))
            record.update(package=package["id"], package_path=str(path), verified=report.ok)
            record["package_clips"] = [
                {"device": c.device, "sequence": c.sequence} for c in report.clips
            ]
            self.say(
                f"{what} package: {package['clips']} clip(s), {package['size']} bytes -> {path}"
            )
            self.say(f"  {self._verdict(report)}")
            if not report.ok:
                raise ScenarioError(f"the {what} package did not verify: {path}")
        self.say("check them yourself, offline, with the key the instance publishes:")
        path = self.outcome.warrant["package_path"]
        self.say(f"  doorwarden verify {path} --instance-key '{key_text}'")

    @staticmethod
    def _verdict(report: PackageReport) -> str:
        if not report.ok:
            failed = [c.name for c in report.checks if c.status == "fail"]
            failed += [f"clip {c.sequence}" for c in report.clips if not c.ok]
            return f"FAILED: {', '.join(failed) or 'see doorwarden verify'}"
        opened = sum(1 for c in report.clips if c.content_available)
        return (
            f"verified: signed by the instance key, every file as listed, "
            f"{len(report.clips)} clip(s) signed by their cameras and chained, {opened} "
            "decrypted to exactly what the camera signed"
        )

    def resident_sees(self, warrant_id: str) -> None:
        self.step("The resident sees the notice and the access log")
        resident = self.api(RESIDENT)
        h1 = self.household(HOME)
        view = resident.get(f"/api/v1/households/{h1}/legal")
        told = [n for n in view["notices"] if n["request_id"] == warrant_id]
        self.outcome.notices = told
        for notice in told:
            self.say(f"notice ({notice['kind']}): {notice['message']}")
        if not any(n["kind"] == "disclosure" for n in told):
            raise ScenarioError(f"{HOME.name} was not told what was disclosed")
        events = resident.get(f"/api/v1/households/{h1}/audit-events")
        legal = sorted({e["tag"] for e in events if e["tag"].startswith("legal:")})
        self.say(f"the household's access log lists the legal events about it: {', '.join(legal)}")
        self.look("requests", f"/households/{h1}/requests", RESIDENT, "requests and access")
        self.look("access_log", f"/households/{h1}/audit", RESIDENT, "the household's audit log")

    def transparency(self, log: LogWatch) -> None:
        self.step("The transparency report and the log checkpoint update")
        after = figures(self.stage.base_url)
        self.outcome.after = after
        before = self.outcome.before
        if after.available and before is not None:
            for line in after.changes_since(before):
                self.say(line)
        else:
            self.say("the transparency report is not served by this version yet")
        grown = log.wait_for_growth(timeout_s=30.0)
        self.say(
            f"the audit log holds {grown.after} entries (was {grown.before}); its newest "
            f"checkpoint is signed by {grown.origin}"
        )
        self.look("report", "/transparency/report", None, "the public transparency report")
        self.look("checkpoint", "/api/v1/log/checkpoint", None, "the signed log checkpoint")
        self.look("audit", "/audit", None, "every audit event (as auditor@demo.doorwarden)")
