"""What the bridge needs before it runs, read once at the agent's start: the broker's
password, the TLS context, the aiomqtt package. Each failure is an `MqttSetupError`
naming the key, which stops the agent's build with that reason (a broken `mqtt:` section
is said at start, not discovered later)."""

from __future__ import annotations

import socket
import ssl

from doorwarden.agent.config.mqtt import MqttConfig


class MqttSetupError(Exception):
    """The bridge cannot be built: aiomqtt missing, a password or TLS file unreadable."""


def require_aiomqtt() -> None:
    try:
        import aiomqtt  # noqa: F401, PLC0415 - the agent-mqtt extra
    except ImportError as exc:
        raise MqttSetupError("mqtt needs aiomqtt: pip install 'doorwarden[agent-mqtt]'") from exc


def broker_password(config: MqttConfig) -> str | None:
    if config.password_file is None:
        return config.password
    try:
        return config.password_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise MqttSetupError(f"mqtt.password_file: {exc}") from exc


def tls_context(config: MqttConfig) -> ssl.SSLContext:
    """Certificate checks always on; the home broker's own CA when one is named."""
    try:
        ca = str(config.tls.ca_file) if config.tls.ca_file is not None else None
        context = ssl.create_default_context(cafile=ca)
        if config.tls.cert_file is not None and config.tls.key_file is not None:
            context.load_cert_chain(config.tls.cert_file, config.tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise MqttSetupError(f"mqtt.tls: {exc}") from exc
    return context


def host_node() -> str:
    """An unpaired agent without a client id: its topics are named after the host."""
    return "host-" + socket.gethostname()
