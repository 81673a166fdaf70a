"""Where each camera's settings come from, in words (`doorwarden agent status`): every
field the web can set, its value, and "web (vN)" or "file". Reads only the YAML and
`settings.json`; loads no video library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doorwarden.agent.config.models import AgentConfig
from doorwarden.agent.settings.merge import merge
from doorwarden.agent.settings.store import SettingsStore
from doorwarden.formats.camera_settings import SettingsError


def settings_lines(config: AgentConfig | None, state_dir: Path) -> list[str]:
    stored = SettingsStore(state_dir).load()
    if config is None:
        # Without the YAML only what the web set can be shown.
        lines = []
        for name, kept in sorted(stored.items()):
            lines.append(f"  {name}: web settings v{kept.version}")
            lines += [
                f"    {field:<20} {_value(value):<24} web (v{kept.version})"
                for field, value in sorted(kept.overrides.items())
            ]
        return lines or ["  no settings from the web"]
    lines = []
    for camera in config.cameras:
        entry = stored.get(camera.name)
        overrides = entry.overrides if entry is not None else {}
        version = entry.version if entry is not None else 0
        lines.append(f"  {camera.name}" + (f": web settings v{version}" if entry else ""))
        try:
            effective = merge(camera, overrides, version=version)
        except SettingsError as exc:
            lines.append(f"    web settings v{version} not applied ({exc}): the file rules")
            effective = merge(camera, {})
        lines += [
            f"    {field:<20} {_value(value):<24} {source}"
            for field, value, source in effective.field_lines()
        ]
    return lines


def _value(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], list):
        return f"{len(value)} polygon(s)"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if value is None:
        return "(all)"
    return (
        str(value).lower()
        if isinstance(value, bool)
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )
