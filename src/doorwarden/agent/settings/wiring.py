"""The settings' part of building an agent (agent/app.py): the kept settings are loaded
before any camera is built, so a restart starts with what the web set, link or not."""

from __future__ import annotations

from dataclasses import dataclass

from doorwarden.agent.config.models import AgentConfig, CameraConfig
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.settings.key import SettingsKey
from doorwarden.agent.settings.state import CameraSettingsState
from doorwarden.agent.settings.store import SettingsStore


@dataclass(frozen=True)
class LoadedSettings:
    state: CameraSettingsState
    key: SettingsKey

    def camera(self, name: str) -> CameraConfig:
        """The camera's configuration as it starts: the YAML with the web's overrides."""
        return self.state.effective[name].config

    def detection_enabled(self, name: str) -> bool:
        return self.state.effective[name].detection_enabled


def load_settings(
    config: AgentConfig, identity: DeviceIdentity | None, store: IdentityStore
) -> LoadedSettings:
    """The settings each camera starts with. The stored documents are checked again
    against the pinned key when this agent has one."""
    state = CameraSettingsState(
        config.cameras,
        SettingsStore(config.state_dir),
        identity.device_id if identity is not None else None,
    )
    state.load(identity.settings_key if identity is not None else None)
    return LoadedSettings(state, SettingsKey(identity, store))
