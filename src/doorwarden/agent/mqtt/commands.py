"""Commands from the broker, carried out by the server as the owner's own requests.

The agent holds an API token of the household's owner (`mqtt.server_token_file`, made
on the web's account page) and calls the same endpoints the web page does, with it as
the Bearer: the server authorises it by its policy and audits the change as the owner's
(`household:mode:set`, `camera:settings:update`). The agent changes nothing itself: the
new mode or setting comes back over its control connection like any other change, and
only then does the state topic change, so Home Assistant shows what was applied.

A payload that is not a known option is ignored with a log line; so is a refusal (a
token that is not the owner's, revoked or expired) or an unreachable server.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog

from doorwarden import __version__
from doorwarden.agent.mqtt.states import OFF, ON

log = structlog.get_logger("doorwarden.agent.mqtt.commands")

TOKEN_PREFIX = "dwt_"
MAX_PAYLOAD = 64  # a mode name or ON/OFF; anything longer is not a command
MAX_TOKEN = 512
CONFLICT_RETRIES = 3  # a settings change made meanwhile (409): read again and retry
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ServerAccess:
    url: str  # the server the agent is paired with
    household_id: str
    device_id: str
    token: str = field(repr=False)  # the owner's API token


def read_token(path: Path) -> str:
    """The owner's API token from its file; ValueError saying what is wrong."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not text.startswith(TOKEN_PREFIX) or len(text) > MAX_TOKEN or not text.isprintable():
        raise ValueError(f"{path} does not hold an API token (dwt_...)")
    return text


def parse_switch(payload: bytes) -> bool | None:
    """ON / OFF (Home Assistant's switch payloads); None for anything else."""
    text = _text(payload)
    return {ON: True, OFF: False}.get(text) if text is not None else None


def parse_mode(payload: bytes, modes: Sequence[str]) -> str | None:
    text = _text(payload)
    return text if text is not None and text in modes else None


def _text(payload: bytes) -> str | None:
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


class Commands:
    """The server calls, on the bridge's event loop."""

    def __init__(self, access: ServerAccess, *, timeout_s: float = TIMEOUT_S) -> None:
        self.access = access
        self._client = httpx.AsyncClient(
            base_url=access.url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            headers={
                "user-agent": f"doorwarden-agent/{__version__} (mqtt)",
                "authorization": f"Bearer {access.token}",
            },
            follow_redirects=False,  # a redirect would carry the owner's token elsewhere
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def _household(self) -> str:
        return f"/api/v1/households/{uuid.UUID(self.access.household_id)}"

    async def mode_names(self) -> list[str] | None:
        """The household's mode names (GET .../modes); None when the server cannot say."""
        answer = await self._call("GET", f"{self._household}/modes", what="modes")
        if answer is None:
            return None
        modes = answer.get("modes")
        if not isinstance(modes, dict) or not all(isinstance(m, str) for m in modes):
            log.warning("mqtt.modes_unreadable")
            return None
        return list(modes)

    async def set_mode(self, mode: str) -> bool:
        """PUT .../mode: the household's mode, as the owner sets it on the web."""
        body = {"mode": mode}
        done = (
            await self._call("PUT", f"{self._household}/mode", json=body, what="mode") is not None
        )
        if done:
            log.info("mqtt.command_done", command="mode", mode=mode)
        return done

    async def set_detection(self, camera: str, enabled: bool) -> bool:
        """The camera's `detection.enabled` override, kept with its other overrides: read
        the settings and their version, write them back with the one field changed."""
        path = (
            f"{self._household}/devices/{uuid.UUID(self.access.device_id)}"
            f"/cameras/{camera}/settings"
        )
        for _ in range(CONFLICT_RETRIES):
            current = await self._call("GET", path, what="settings")
            if current is None:
                return False
            version, settings = current.get("version"), current.get("settings")
            if not isinstance(version, int) or not isinstance(settings, dict):
                log.warning("mqtt.settings_unreadable", camera=camera)
                return False
            body = {"version": version, "settings": {**settings, "detection.enabled": enabled}}
            response = await self._request("PUT", path, json=body)
            if response is None:
                return False
            if response.status_code == 409:  # changed meanwhile: read the new version
                continue
            if response.status_code != 200:
                _refused("detection", response)
                return False
            log.info("mqtt.command_done", command="detection", camera=camera, enabled=enabled)
            return True
        log.warning("mqtt.command_failed", command="detection", error="version conflicts")
        return False

    async def _call(
        self, method: str, path: str, *, what: str, json: Any = None
    ) -> dict[str, Any] | None:
        response = await self._request(method, path, json=json)
        if response is None:
            return None
        if response.status_code != 200:
            _refused(what, response)
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning("mqtt.command_failed", command=what, error="not a JSON object")
            return None
        return body

    async def _request(self, method: str, path: str, *, json: Any = None) -> httpx.Response | None:
        try:
            return await self._client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            log.warning("mqtt.server_unreachable", path=path, error=str(exc) or type(exc).__name__)
            return None


def _refused(what: str, response: httpx.Response) -> None:
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = f"http_{response.status_code}", response.text[:200]
    log.warning(
        "mqtt.command_refused", command=what, status=response.status_code, code=code,
        message=message,
    )  # fmt: skip
