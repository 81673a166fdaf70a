"""The MQTT bridge: an `Observers` listener (agent/observe.py) that publishes what the
cameras see to the home's broker and takes Home Assistant's commands (docs/mqtt.md).

Camera threads call the listener methods; each only hands its event to the bridge's own
thread, which runs an asyncio loop with `aiomqtt`, so a slow or absent broker never
holds up a camera. On every connection the bridge publishes "online" on its
availability topic (the last will, retained, says "offline" when the connection dies
without a goodbye), the discovery configurations, and every current state, all retained:
a broker restarted without persistence, or Home Assistant restarted (its birth message
on `<discovery_prefix>/status`), gets everything again. A lost connection is retried with
a doubling delay. Rings and clips that happen while it is down are sent on reconnection
if they are less than a minute old; older ones are dropped (a doorbell chime ten minutes
late is worse than none).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from doorwarden import __version__
from doorwarden.agent.config.mqtt import MqttConfig
from doorwarden.agent.delivery.identity import DeviceIdentity
from doorwarden.agent.mqtt import discovery
from doorwarden.agent.mqtt.commands import (
    Commands,
    ServerAccess,
    parse_mode,
    parse_switch,
    read_token,
)
from doorwarden.agent.mqtt.setup import (
    broker_password,
    host_node,
    require_aiomqtt,
    tls_context,
)
from doorwarden.agent.mqtt.states import OFFLINE, ONLINE, Message, States, Topics
from doorwarden.agent.observe import ClipFinished

log = structlog.get_logger("doorwarden.agent.mqtt")

QOS = 1
EVENT_MAX_AGE_S = 60.0  # a ring or clip older than this when the broker is back is dropped
OUTBOX_MAX = 1000  # messages waiting for the broker; the oldest go first beyond it
MAX_PENDING_COMMANDS = 16  # commands waiting on the server; more are dropped (a flood)
CONNECT_TIMEOUT_S = 10.0
_STOP = ("stop",)


class MqttBridge:
    """Built by `build` (or directly, in tests); `start`, then `stop`. The listener
    methods may be called from any thread, before `start` too."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        cameras: Sequence[str],
        node: str,
        device_name: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        access: ServerAccess | None = None,
        mode: str | None = None,
        detection: Mapping[str, bool] | None = None,
    ) -> None:
        import aiomqtt  # noqa: PLC0415 - the agent-mqtt extra, only when `mqtt:` is set

        self._aiomqtt = aiomqtt
        self.config = config
        self.node = discovery.node_id(node)
        self.topics = Topics(f"{config.topic_prefix}/{self.node}")
        self.device = discovery.Device(
            self.node, config.name or device_name or "doorwarden " + ", ".join(cameras), __version__
        )
        self.client_id = config.client_id or f"doorwarden-{self.node}"
        self._password = password
        self._tls = tls
        self._states = States(
            self.topics, cameras, mode=mode, snapshots=config.snapshots, detection=detection
        )
        self._access = access
        self._commands: Commands | None = None  # its HTTP client is made on the loop
        self._modes = list(discovery.DEFAULT_MODES)
        if mode is not None and mode not in self._modes:
            self._modes.append(mode)
        # Made by `start`: a bridge built and never started leaves nothing open.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early: list[tuple[Any, ...]] = []  # events before `start`
        self._early_lock = threading.Lock()
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._outbox: deque[Message] = deque(maxlen=OUTBOX_MAX)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._in_session = False  # connected: the writer says goodbye when stopping
        self._republish = False
        self._tasks: set[asyncio.Task[Any]] = set()
        # For status and tests: whether connected now, connections made, messages sent.
        self.connected = threading.Event()
        self.connections = 0
        self.published = 0

    @classmethod
    def build(
        cls,
        config: MqttConfig,
        *,
        cameras: Sequence[str],
        identity: DeviceIdentity | None,
        mode: str | None = None,
        detection: Mapping[str, bool] | None = None,
    ) -> MqttBridge:
        """The bridge of an agent: secrets read from their files; commands only with the
        owner's token and a pairing (the server to send them to)."""
        require_aiomqtt()  # said now, not on the bridge's thread
        password = broker_password(config)
        tls = tls_context(config) if config.uses_tls else None
        access = None
        if config.server_token_file is not None and identity is None:
            log.warning("mqtt.read_only", reason="the agent is not paired: no server to ask")
        elif config.server_token_file is not None and identity is not None:
            try:
                token = read_token(config.server_token_file)
                access = ServerAccess(
                    identity.server, identity.household_id, identity.device_id, token
                )
            except ValueError as exc:  # home automation must not stop the cameras
                log.warning("mqtt.read_only", reason=str(exc))
        node = identity.device_id if identity is not None else (config.client_id or host_node())
        return cls(
            config, cameras=cameras, node=node, password=password, tls=tls, access=access,
            mode=mode, detection=detection,
        )  # fmt: skip

    @property
    def commands(self) -> bool:
        """Whether this bridge takes commands (it has the owner's token)."""
        return self._access is not None

    # -- the Observers listener (any thread; returns at once) ---------------------------

    def motion(self, camera: str, active: bool) -> None:
        self._put(("flag", "motion", camera, bool(active)))

    def person(self, camera: str, active: bool) -> None:
        self._put(("flag", "person", camera, bool(active)))

    def ring(self, camera: str, at: datetime) -> None:
        self._put(("ring", camera, at))

    def clip(self, clip: ClipFinished) -> None:
        self._put(("clip", clip))

    def settings(self, camera: str, effective: Any) -> None:
        self._put(("settings", camera, dict(effective)))

    def mode(self, mode: str | None) -> None:
        self._put(("mode", mode))

    def _put(self, item: tuple[Any, ...]) -> None:
        loop = self._loop
        if loop is None:
            with self._early_lock:
                loop = self._loop
                if loop is None:
                    if len(self._early) < OUTBOX_MAX:
                        self._early.append(item)
                    return
        with contextlib.suppress(RuntimeError):  # stopped: the loop is closed
            loop.call_soon_threadsafe(self._queue.put_nowait, item)

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        with self._early_lock:
            for item in self._early:
                self._queue.put_nowait(item)
            self._early.clear()
            self._loop = loop
        self._thread = threading.Thread(
            target=self._thread_main, name="doorwarden-mqtt", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say "offline" (retained) and disconnect; safe to call again."""
        thread = self._thread
        if thread is None:
            return
        self._put(_STOP)
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning("mqtt.stop_timeout", timeout_s=timeout_s)

    def _thread_main(self) -> None:
        loop = self._loop
        if loop is None:  # start() sets it before the thread runs
            return
        try:
            loop.run_until_complete(self._main())
        except Exception:  # never a silent dead bridge; the cameras carry on
            log.exception("mqtt.bridge_failed")
        finally:
            self.connected.clear()
            _finish_tasks(loop)
            loop.close()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        if self._access is not None:
            self._commands = Commands(self._access)
        run = asyncio.create_task(self._run())
        consume = asyncio.create_task(self._consume(run))
        try:
            await run
        except asyncio.CancelledError:
            pass  # stopped while connecting: nothing to say goodbye on
        finally:
            consume.cancel()
            for task in [consume, *self._tasks]:
                task.cancel()
            await asyncio.gather(consume, *self._tasks, return_exceptions=True)
            if self._commands is not None:
                await self._commands.aclose()

    async def _consume(self, run: asyncio.Task[None]) -> None:
        """Events from the cameras, in order, into the states and the outbox."""
        while True:
            item = await self._queue.get()
            kind = item[0]
            if kind == "stop":
                self._stopping = True
                self._stopped.set()
                self._wake.set()
                if not self._in_session:
                    run.cancel()  # connecting or waiting to retry: no one to tell
                continue
            if kind == "flag":
                messages = self._states.set_flag(item[1], item[2], item[3])
            elif kind == "ring":
                messages = self._states.ring(item[1], item[2])
            elif kind == "clip":
                messages = self._states.clip(item[1])
            elif kind == "settings":
                messages = self._states.settings(item[1], item[2])
            else:
                messages = self._states.set_mode(item[1])
                if item[1] is not None and item[1] not in self._modes:
                    self._modes.append(item[1])
                    self._republish = True
            self._outbox.extend(messages)
            self._wake.set()

    async def _run(self) -> None:
        """Connect, publish, serve; on a lost connection wait and connect again."""
        delay = self.config.reconnect_initial_s
        while not self._stopping:
            try:
                async with self._client() as client:
                    self._in_session = True
                    delay = self.config.reconnect_initial_s
                    await self._session(client)
            except self._aiomqtt.MqttError as exc:
                log.warning(
                    "mqtt.disconnected", broker=self.config.url, error=str(exc), retry_s=delay
                )
            except OSError as exc:
                log.warning(
                    "mqtt.disconnected", broker=self.config.url, error=str(exc), retry_s=delay
                )
            finally:
                self._in_session = False
                self.connected.clear()
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)
            delay = min(delay * 2, self.config.reconnect_max_s)

    def _client(self) -> Any:
        will = self._aiomqtt.Will(self.topics.availability, OFFLINE, qos=QOS, retain=True)
        return self._aiomqtt.Client(
            self.config.host,
            self.config.port,
            username=self.config.username,
            password=self._password,
            identifier=self.client_id,
            will=will,
            clean_session=True,  # a command queued while the agent was away is not carried out late
            keepalive=self.config.keepalive_s,
            timeout=CONNECT_TIMEOUT_S,
            tls_context=self._tls,
        )

    async def _session(self, client: Any) -> None:
        now = time.monotonic()
        # States are republished whole below; events wait at most EVENT_MAX_AGE_S.
        kept = [m for m in self._outbox if not m.retain and now - m.at < EVENT_MAX_AGE_S]
        if len(kept) < sum(1 for m in self._outbox if not m.retain):
            log.info("mqtt.events_dropped", count=len(self._outbox) - len(kept))
        self._outbox = deque(kept, maxlen=OUTBOX_MAX)
        await self._publish(client, self.topics.availability, ONLINE.encode(), retain=True)
        await self._publish_all(client)
        if self.commands:
            for topic in self.topics.commands:
                await client.subscribe(topic, qos=QOS)
            self._spawn(self._refresh_modes())
        if self.config.discovery:
            await client.subscribe(f"{self.config.discovery_prefix}/status", qos=QOS)
        self.connections += 1
        self.connected.set()
        log.info("mqtt.connected", broker=self.config.url, node=self.node, commands=self.commands)
        reader = asyncio.create_task(self._read(client))
        writer = asyncio.create_task(self._write(client))
        done, pending = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a lost connection raises MqttError here

    async def _publish_all(self, client: Any) -> None:
        if self.config.discovery:
            for topic, payload in discovery.configs(
                prefix=self.config.discovery_prefix, topics=self.topics, device=self.device,
                cameras=self._states.cameras, commands=self.commands, modes=self._modes,
            ):  # fmt: skip
                await self._publish(client, topic, payload, retain=True)
        for message in self._states.retained():
            await self._publish(client, message.topic, message.payload, retain=True)

    async def _publish(self, client: Any, topic: str, payload: bytes, *, retain: bool) -> None:
        await client.publish(topic, payload, qos=QOS, retain=retain)
        self.published += 1

    async def _write(self, client: Any) -> None:
        while True:
            self._wake.clear()
            if self._republish:
                self._republish = False
                await self._publish_all(client)
            while self._outbox:
                message = self._outbox[0]  # left in place until the broker has it
                await self._publish(client, message.topic, message.payload, retain=message.retain)
                self._outbox.popleft()
            if self._stopping:
                await self._publish(client, self.topics.availability, OFFLINE.encode(), retain=True)
                return
            if not self._republish:
                await self._wake.wait()

    async def _read(self, client: Any) -> None:
        status = f"{self.config.discovery_prefix}/status"
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if topic == status:
                if payload.strip() == b"online":  # Home Assistant (re)started: tell it again
                    self._republish = True
                    self._wake.set()
                continue
            command = self.topics.command_of(topic)
            if command is None:
                continue
            if message.retain:  # it would be carried out again on every connection
                log.warning("mqtt.bad_command", topic=topic, reason="retained command ignored")
                continue
            if len(self._tasks) >= MAX_PENDING_COMMANDS:
                log.warning("mqtt.bad_command", topic=topic, reason="too many commands at once")
                continue
            self._spawn(self._command(topic, command, payload))

    async def _command(self, topic: str, command: tuple[str, str | None], payload: bytes) -> None:
        commands = self._commands
        if commands is None:
            return
        kind, camera = command
        if kind == "mode":
            mode = parse_mode(payload, self._modes)
            if mode is None:
                log.warning(
                    "mqtt.bad_command", topic=topic, payload=repr(payload[:64]), options=self._modes
                )
                return
            await commands.set_mode(mode)
            return
        enabled = parse_switch(payload)
        if camera not in self._states.detection or enabled is None:
            log.warning("mqtt.bad_command", topic=topic, payload=repr(payload[:64]))
            return
        await commands.set_detection(camera, enabled)

    async def _refresh_modes(self) -> None:
        commands = self._commands
        names = await commands.mode_names() if commands is not None else None
        if names and names != self._modes:
            self._modes = names
            self._republish = True
            self._wake.set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and await what is left on the bridge's loop before it closes (as asyncio.run
    does): stopped in the middle of a CONNECT, aiomqtt leaves its own task behind, and the
    client's socket would later call into a closed loop."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
