"""The `mqtt:` section: what it accepts, what it refuses (with the reason), and paths
taken relative to the configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from doorwarden.agent.config.file import load_agent_config
from doorwarden.agent.config.models import AgentConfig
from doorwarden.agent.config.mqtt import MqttConfig


def mqtt(**fields: Any) -> MqttConfig:
    return MqttConfig.model_validate({"url": "mqtt://192.0.2.5", **fields})


def test_defaults_and_ports() -> None:
    config = mqtt()
    assert (config.host, config.port, config.uses_tls) == ("192.0.2.5", 1883, False)
    assert config.topic_prefix == "doorwarden"
    assert config.discovery_prefix == "homeassistant"
    assert config.discovery is True
    assert config.snapshots is False  # no image leaves unless the owner turns it on
    assert config.server_token_file is None
    tls = mqtt(url="mqtts://broker.home.arpa")
    assert (tls.port, tls.uses_tls) == (8883, True)
    assert mqtt(url="mqtts://[::1]:9883").port == 9883


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://broker"}, "mqtt:// or mqtts://"),
        ({"url": "mqtt://user:pw@broker"}, "not in the URL"),
        ({"url": "mqtt://"}, "no host"),
        ({"url": "mqtt://broker/topic"}, "nothing after it"),
        ({"url": "mqtt://broker:99999"}, "bad port"),
        ({"url": "mqtt://broker:0"}, "bad port"),
        ({"password": "a", "password_file": "/run/pw"}, "one or the other"),
        ({"tls": {"ca_file": "/etc/ca.pem"}}, "mqtts://"),
        ({"tls": {"cert_file": "/etc/c.pem"}}, "go together"),
        ({"topic_prefix": "home/#"}, "pattern"),
        ({"topic_prefix": "/doorwarden"}, "pattern"),
        ({"discovery_prefix": "home+assistant"}, "pattern"),
        ({"reconnect_initial_s": 10, "reconnect_max_s": 5}, "must not exceed"),
        ({"client_id": "has space"}, "pattern"),
        ({"snapshot": True}, "Extra inputs"),  # a typo is refused, not ignored
    ],
)
def test_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        mqtt(**fields)


def test_the_password_is_not_in_the_repr() -> None:
    assert "hunter2" not in repr(mqtt(username="agent", password="hunter2"))


def test_relative_paths_are_taken_from_the_configuration_files_folder(tmp_path: Path) -> None:
    config = mqtt(
        url="mqtts://broker",
        password_file="secrets/mqtt-password",
        server_token_file="/etc/doorwarden/token",
        tls={"ca_file": "ca.pem"},
    ).resolved(tmp_path)
    assert config.password_file == tmp_path / "secrets/mqtt-password"
    assert config.server_token_file == Path("/etc/doorwarden/token")
    assert config.tls.ca_file == tmp_path / "ca.pem"


def test_every_field_has_a_title_and_a_description() -> None:
    for model in (MqttConfig, *{type(mqtt().tls)}):
        for name, field in model.model_fields.items():
            assert field.title and field.description, name


def test_the_agent_configuration_takes_an_mqtt_section() -> None:
    camera = {"name": "front", "source": {"kind": "synthetic"}}
    assert AgentConfig.model_validate({"cameras": [camera]}).mqtt is None
    config = AgentConfig.model_validate(
        {"cameras": [camera], "mqtt": {"url": "mqtt://127.0.0.1", "snapshots": True}}
    )
    assert config.mqtt is not None and config.mqtt.snapshots is True


def test_the_file_loader_takes_mqtt_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "cameras:\n  - name: front\n    source: {kind: synthetic}\n"
        "mqtt:\n  url: mqtts://broker.home.arpa\n  password_file: secrets/pw\n"
        "  server_token_file: owner-token\n  tls: {ca_file: /etc/ca.pem}\n"
    )
    config = load_agent_config(path).mqtt
    assert config is not None
    assert config.password_file == tmp_path / "secrets/pw"
    assert config.server_token_file == tmp_path / "owner-token"
    assert config.tls.ca_file == Path("/etc/ca.pem")
