"""The demo, put together: the data directory, the settings, the cast, the server, the
cameras, the sign-ins printed, the story (--scenario), and an orderly stop.

Stopping (Ctrl-C, SIGTERM, or `stop()`): the cameras first, each finishing the clip in
progress and delivering what is left while the server still takes it; then the server.
Whatever could not be delivered stays in the agents' spools and goes at the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import structlog
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from structlog.types import EventDict, WrappedLogger

from doorwarden.agent.config.mqtt import MqttConfig
from doorwarden.agent.delivery.identity import IDENTITY_FILE
from doorwarden.config import Settings, SignupMode
from doorwarden.demo.api import Api, ApiError
from doorwarden.demo.cast import (
    ACCOUNTS,
    ALL_HOMES,
    DEMO_PASSWORD,
    E2E_HOME,
    E2E_PASSPHRASE,
    HOMES,
    LOG_ORIGIN,
    DemoHome,
)
from doorwarden.demo.datadir import DataDir, DataDirError, check, find_vtest, wipe
from doorwarden.demo.scenario import Outcome, Scenario, ScenarioError, Stage
from doorwarden.demo.seed import Seeded, seed
from doorwarden.demo.server import ServerError, ServerThread, check_port_free
from doorwarden.demo.talk import RIG, PorchSpeaker

if TYPE_CHECKING:
    from doorwarden.demo.cameras import DemoAgent, Stopped

REPOSITORY = Path(__file__).resolve().parents[3]
log = structlog.get_logger("doorwarden.demo")


class DemoSettings(Settings):
    """The demo's settings come from the demo alone: no DOORWARDEN_* variable and no
    DOORWARDEN_CONFIG file, so a demo can never seed its accounts into a real instance's
    database or write to its storage."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True)
class Options:
    data_dir: Path = Path("data/demo")
    port: int = 8000
    host: str = "127.0.0.1"
    scenario: bool = False
    fresh: bool = False
    footage: Path | None = None  # vtest.avi, if not in the usual places
    people: bool = False  # run the people detector on the Front door camera
    mqtt: str | None = None  # --mqtt URL: the cameras also publish to this broker
    clip_timeout_s: float = 240.0


@dataclass
class Started:
    seconds_to_url: float | None = None  # from the process start, where it can be read
    seconds_here: float = 0.0  # from Demo.start()
    made: list[str] = field(default_factory=list)


def process_age() -> float | None:
    """Seconds since this process started (Linux), to time the demo as a person sees it."""
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(after_name[19])  # field 22, starttime, in clock ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class DemoLogs:
    """Server and agent logs go to a file; errors (and a camera failing) also to the
    console, one short line each, so the story is not drowned in request logs."""

    def __init__(self, path: Path, console: TextIO) -> None:
        self.path = path
        self.console = console
        self.stream = path.open("a", buffering=1)
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s")
        )
        logging.getLogger().addHandler(self.handler)  # uvicorn's own messages
        self.configure()

    def echo_problems(self, _: WrappedLogger, method: str, event: EventDict) -> EventDict:
        name = str(event.get("event", ""))
        serious = method in ("error", "critical", "exception")
        if serious or (name.startswith("camera.") and method == "warning"):
            where = event.get("camera") or event.get("path") or ""
            self.console.write(f"  ! {method}: {name} {where} (details in {self.path})\n")
        return event

    def configure(self) -> None:
        """(Again after create_app, which configures logging to the console.)"""
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                self.echo_problems,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.PrintLoggerFactory(file=self.stream),
            cache_logger_on_first_use=False,
        )

    def close(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        structlog.reset_defaults()
        self.stream.close()


class Demo:
    def __init__(self, options: Options, out: TextIO = sys.stdout) -> None:
        self.options = options
        self.out = out
        self.data = DataDir(options.data_dir)
        self.base_url = f"http://{options.host}:{options.port}"
        self.seeded: Seeded | None = None
        self.agents: dict[str, DemoAgent] = {}  # by home slug
        self.server: ServerThread | None = None
        self.since = datetime.now(UTC)
        self.started = Started()
        self.vtest: Path | None = None
        self.speaker: PorchSpeaker | None = None  # the Porch doorbell's (demo/talk.py)
        self._stack = contextlib.ExitStack()

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def phase(self, name: str, began: float) -> None:
        """Startup timings, in the log (docs/demo.md quotes them)."""
        log.info("demo.phase", phase=name, seconds=round(time.monotonic() - began, 2))

    # -- starting --------------------------------------------------------------------

    def start(self) -> None:
        began = time.monotonic()
        check(self.data.root, fresh=self.options.fresh)  # before writing anything there
        self._stack.enter_context(self.data.locked())
        if self.options.fresh:
            removed = wipe(self.data.root)
            self.say(f"--fresh: removed {len(removed)} item(s) from {self.data.root}:")
            for line in removed or ["(it was empty)"]:
                self.say(f"  {line}")
        first = self.data.prepare()
        logs = DemoLogs(self.data.log, self.out)
        self._stack.callback(logs.close)
        settings = self.settings()
        # First, in the background: it listens in a fraction of a second, long before the
        # cameras start; stopped last (the Porch camera may be talking to it until then).
        self.speaker = PorchSpeaker(REPOSITORY / RIG, self.data.root / "porch-speaker")
        self._stack.callback(self.speaker.stop)
        self.speaker.start()
        self.say(
            f"{'Setting up' if first else 'Reusing'} the demo in {self.data.root} "
            "(SQLite and local files, development mode, offline)"
        )
        from doorwarden.main import clip_store, create_app  # noqa: PLC0415 - heavy; after checks

        self.phase("imported the server", began)
        unpaired = frozenset(
            home.slug
            for home in ALL_HOMES
            if not (self.data.agents / home.slug / "state" / IDENTITY_FILE).exists()
        )
        self.seeded = asyncio.run(
            seed(
                settings.effective_database_url,
                clip_store(settings),
                password_cost=settings.password_cost,
                pair=unpaired,
                e2e_home=True,
            )
        )
        self.phase("migrated and seeded", began)
        self.started.made = self.seeded.made
        check_port_free(self.options.host, self.options.port)
        app = create_app(settings)
        logs.configure()  # create_app configured logging to the console
        self.server = ServerThread(
            app, self.options.host, self.options.port, ping_s=settings.live_ping_s
        )
        self.server.start()
        self.phase("serving", began)
        self.since = datetime.now(UTC)
        self.start_cameras()
        self.phase("cameras paired and started", began)
        self.started.seconds_here = time.monotonic() - began
        self.started.seconds_to_url = process_age()
        self.banner()

    def settings(self) -> Settings:
        return DemoSettings(
            development=True,
            secret_key=self.data.secret_key(),
            data_dir=self.data.root,
            bind_host=self.options.host,
            bind_port=self.options.port,
            public_base_url=self.base_url,
            signup_mode=SignupMode.open,
            log_origin=LOG_ORIGIN,
            log_interval_s=2.0,  # checkpoints follow the story within seconds
            # Three homes on one street: the public map shows their cell from 3 cameras
            # (an instance's default is 5); it never shows fewer than 3 households.
            coverage_min_cameras=3,
            coverage_min_households=3,
            coverage_cache_s=10.0,
            # The homes are minutes old: a real instance waits weeks before a home counts
            # on the map (households made to order must not fill a cell); the demo, in
            # development mode, shows them once their cameras delivered a clip.
            coverage_min_age_days=0,
            coverage_move_days=0,
            coverage_interval_s=10.0,
            coverage_round_to=2,
            community_min_households=3,  # the street's three homes (an instance: 5 at least)
        )

    def start_cameras(self) -> None:
        from doorwarden.demo.cameras import DemoAgent  # noqa: PLC0415 - loads the video stack

        assert self.seeded is not None  # noqa: S101 - start() seeds first
        self.vtest = find_vtest(self.options.footage, REPOSITORY)
        for home in ALL_HOMES:
            agent = DemoAgent(home, self.data.agents / home.slug)
            if not agent.paired_with(self.base_url):
                code = self.seeded.pairing_codes.get(home.slug) or self._pairing_code(home)
                agent.pair(self.base_url, code)
            self.agents[home.slug] = agent
        for home in ALL_HOMES:
            uses_vtest = home.camera.footage == "vtest" and self.vtest is not None
            footage = self.vtest if uses_vtest else None
            speaker = self.speaker if home.camera.talk else None
            self.agents[home.slug].start(
                footage,
                render_into=self.data.footage,
                people=self.options.people,
                talk=speaker.talk_config if speaker is not None else None,
                # Not the end-to-end home's: Home Assistant's view is the street's three.
                mqtt=None if home is E2E_HOME else self._mqtt(home, self.data.agents / home.slug),
            )

    def _mqtt(self, home: DemoHome, root: Path) -> MqttConfig | None:
        """--mqtt: the home's camera publishes to the broker. Its owner's API token, made
        once and kept in the camera's folder, lets Home Assistant's select and switch act
        as the owner (each change audited as theirs)."""
        if self.options.mqtt is None:
            return None
        token = root / "mqtt-owner-token"
        if not token.is_file():
            with Api(self.base_url, home.owner) as owner:
                made = owner.post("/api/v1/account/tokens", {"name": f"MQTT ({home.slug})"})
            root.mkdir(parents=True, exist_ok=True)
            token.touch(mode=0o600)
            token.write_text(str(made["token"]) + "\n")
        return MqttConfig(url=self.options.mqtt, server_token_file=token)

    def _pairing_code(self, home: DemoHome) -> str:
        """A one-time code, made by the owner on the Cameras page's API."""
        assert self.seeded is not None  # noqa: S101 - start() seeds first
        with Api(self.base_url, home.owner) as owner:
            made = owner.post(
                f"/api/v1/households/{self.seeded.households[home.slug]}/pairing-codes"
            )
        return str(made["code"])

    def banner(self) -> None:
        assert self.seeded is not None  # noqa: S101 - start() seeds first
        timing = self.started.seconds_to_url
        took = f"{timing:.1f} s after the command" if timing is not None else ""
        self.say()
        if self.started.made:
            kinds = Counter(item.split(":", 1)[0] for item in self.started.made)
            self.say("Seeded " + ", ".join(f"{n} {kind}(s)" for kind, n in kinds.items()))
        else:
            self.say("Seeded nothing new: the accounts, homes and cameras are those of last time")
        self.say(f"\ndoorwarden demo is running at {self.base_url}/  ({took or 'ready'})")
        self.say(f"Sign in with any of these; every password is '{DEMO_PASSWORD}':")
        for account in ACCOUNTS:
            self.say(f"  {account.email:<27} {account.role.value:<15} {account.what}")
        self.say("Cameras (one per home, on Elm Street; the public map is /transparency/coverage):")
        for home in ALL_HOMES:
            agent = self.agents[home.slug]
            household = self.seeded.households[home.slug]
            source = (
                "OpenCV's vtest.avi, looped"
                if agent_vtest(home, self.vtest)
                else ("a synthetic scene (someone walks past every 20 s)")
            )
            people = self.options.people and home.camera.people_detection
            extra = ", people detection" if people else ""
            extra += ", a privacy zone" if home.camera.privacy_zones else ""
            self.say(f"  {home.camera.label} at {home.name}, {home.address}: {source}{extra}")
            self.say(
                f"    live: {self.base_url}/households/{household}/cameras/{agent.device_id}/live"
            )
            if home is E2E_HOME:
                self.say(
                    f"    end to end: sign in as {home.owner.email}, unlock the key on "
                    f"{self.base_url}/account/keyring with the passphrase '{E2E_PASSPHRASE}'; "
                    "this server cannot open these clips"
                )
        if self.vtest is None:
            self.say(
                "  note: vtest.avi was not found (../shared/data/vtest.avi, or Debian's "
                "opencv-doc; --footage PATH names it): the synthetic scene plays instead"
            )
        if self.speaker is not None:
            self.say(f"  {self.speaker.words()}")
        if self.options.mqtt is not None:
            self.say(
                f"MQTT: the cameras publish to {self.options.mqtt} under doorwarden/<device id>/, "
                "with Home Assistant discovery under homeassistant/ (docs/mqtt.md)"
            )
        timeline = f"{self.base_url}/households/{self.seeded.households[HOMES[0].slug]}/clips"
        self.say(f"The first clips reach {timeline} within about a minute.")
        self.say(f"Logs: {self.data.log}")
        self.say("Ctrl-C stops everything; run again to continue, or with --fresh to start over.")

    # -- the story -------------------------------------------------------------------

    def run_scenario(self) -> Outcome:
        assert self.seeded is not None  # noqa: S101 - start() first
        stage = Stage(
            base_url=self.base_url,
            households=self.seeded.households,
            devices={slug: str(agent.device_id) for slug, agent in self.agents.items()},
            agency_id=self.seeded.agency_id,
            since=self.since,
            packages_dir=self.data.packages,
            out=self.out,
            clip_timeout_s=self.options.clip_timeout_s,
            ring_states={slug: self.data.agents / slug / "state" for slug in self.agents},
            speaker=self.speaker,
        )
        outcome = Scenario(stage).run()
        self.write_outcome(outcome)
        return outcome

    def write_outcome(self, outcome: Outcome) -> None:
        body = asdict(outcome)
        for key in ("before", "after"):
            figures = getattr(outcome, key)
            body[key] = figures.to_json() if figures is not None else None
        body["households"] = (
            {k: str(v) for k, v in self.seeded.households.items()} if self.seeded else {}
        )
        body["agency_id"] = str(self.seeded.agency_id) if self.seeded else None
        body["devices"] = {slug: agent.device_id for slug, agent in self.agents.items()}
        body["base_url"] = self.base_url
        partial = self.data.scenario.with_suffix(".partial")
        partial.write_text(json.dumps(body, indent=1, default=str))
        partial.replace(self.data.scenario)

    # -- stopping --------------------------------------------------------------------

    def stop(self) -> None:
        """Stop what was started (safe to call after a failed start, and twice)."""
        if self.agents or self.server is not None:
            self.say("\nStopping: the cameras finish their clips in progress and deliver them ...")
        stopped: list[Stopped] = []

        def stop_one(agent: DemoAgent) -> None:
            stopped.append(agent.stop())

        threads = [threading.Thread(target=stop_one, args=(a,)) for a in self.agents.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for done in stopped:
            waiting = f", {done.waiting} kept for the next run" if done.waiting else ""
            self.say(f"  {done.name}: {done.delivered} clip(s) delivered this run{waiting}")
        self.agents = {}
        if self.server is not None:
            if not self.server.stop():
                self.say("  the server did not stop in time")
            self.server = None
            self.say(f"Stopped. Everything is kept in {self.data.root}.")
        self._stack.close()


def agent_vtest(home: DemoHome, vtest: Path | None) -> bool:
    return home.camera.footage == "vtest" and vtest is not None


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) stops the demo as Ctrl-C does."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(options: Options, out: TextIO = sys.stdout) -> int:
    """`doorwarden demo`: start, tell the story if asked, serve until Ctrl-C; exit code."""
    demo = Demo(options, out)
    code = 0
    with interrupt_on_sigterm():
        try:
            demo.start()
            if options.scenario:
                demo.run_scenario()
                demo.say(f"\nThe demo keeps running at {demo.base_url}/ (Ctrl-C stops it).")
            # Short sleeps, not one long one: the kernel may hand Ctrl-C to any of the
            # demo's threads, and Python runs the handler (KeyboardInterrupt) only when the
            # main thread next wakes. One long sleep could hold a Ctrl-C for an hour.
            while True:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        except (DataDirError, ServerError, ScenarioError, ApiError) as exc:
            out.write(f"error: {exc}\n")
            code = 1
        finally:
            # A second Ctrl-C must not cut the orderly stop short (clips in progress).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                demo.stop()
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)
    return code
