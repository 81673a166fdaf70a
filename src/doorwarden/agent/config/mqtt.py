"""The agent's MQTT bridge to the home's broker (`mqtt:` at the top of the agent's
configuration; issue 19, docs/mqtt.md).

Apart from models.py to keep each file small; the same rules: a title and a description
on every field, unknown keys rejected. Secrets (the broker's password, the owner's API
token) are best kept in files readable by the agent alone, named here by path.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TOPIC_LEVELS = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"  # no wildcards, no '$', no empty level
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttTls(Strict):
    ca_file: Path | None = Field(
        None,
        title="CA certificates",
        description="PEM file of the authority that signed the broker's certificate (a "
        "home broker's own CA); null: the system's trusted authorities. Only for mqtts://.",
    )
    cert_file: Path | None = Field(
        None,
        title="Client certificate",
        description="PEM certificate the agent shows the broker, for brokers that "
        "authenticate clients by certificate; needs key_file.",
    )
    key_file: Path | None = Field(
        None, title="Client key", description="The client certificate's private key (PEM)."
    )

    @model_validator(mode="after")
    def _pair(self) -> MqttTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttConfig(Strict):
    url: str = Field(
        title="Broker URL",
        description="mqtt://host:1883 or mqtts://host:8883 (TLS). Credentials go in "
        "username and password, not in the URL.",
        max_length=300,
    )
    username: str | None = Field(
        None, max_length=256, title="Username", description="The broker account's name."
    )
    password: str | None = Field(
        None,
        max_length=1024,
        repr=False,
        title="Password",
        description="The broker account's password; prefer password_file.",
    )
    password_file: Path | None = Field(
        None,
        title="Password file",
        description="A file holding the broker password (one line); keep it readable by "
        "the agent only.",
    )
    tls: MqttTls = Field(
        default_factory=MqttTls, title="TLS", description="Certificates for mqtts:// brokers."
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.-]+$",
        title="Client id",
        description="The MQTT client identifier; null: doorwarden-<device id>. Two "
        "clients with one id knock each other off the broker.",
    )
    topic_prefix: str = Field(
        "doorwarden",
        max_length=100,
        pattern=TOPIC_LEVELS,
        title="Topic prefix",
        description="States and commands are under <topic_prefix>/<device id>/.",
    )
    discovery: bool = Field(
        True,
        title="Home Assistant discovery",
        description="Publish Home Assistant MQTT discovery configurations (retained), so "
        "the cameras' entities appear by themselves.",
    )
    discovery_prefix: str = Field(
        "homeassistant",
        max_length=100,
        pattern=TOPIC_LEVELS,
        title="Discovery prefix",
        description="Home Assistant's discovery prefix (its MQTT integration's setting).",
    )
    snapshots: bool = Field(
        False,
        title="Snapshots",
        description="Publish each finished clip's thumbnail (JPEG, privacy zones black) "
        "to the broker. Off: no image or video ever goes to the broker, only states, "
        "rings and clip ids and times.",
    )
    server_token_file: Path | None = Field(
        None,
        title="Owner's API token file",
        description="A file holding an API token (dwt_...) of the household's owner, made "
        "on the web's account page: commands from the broker (the household's mode, a "
        "camera's detection switch) are sent to the server with it, and audited as the "
        "owner's. Null: the entities are read-only (no command topics).",
    )
    keepalive_s: int = Field(
        30,
        ge=5,
        le=600,
        title="Keepalive (s)",
        description="The broker declares the agent offline (its last will) after 1.5 "
        "times this without a word from it.",
    )
    reconnect_initial_s: float = Field(
        1.0,
        gt=0,
        le=60,
        title="First reconnect delay (s)",
        description="Wait before reconnecting to a broker that went away.",
    )
    reconnect_max_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        title="Longest reconnect delay (s)",
        description="Reconnect delays double after each failure up to this.",
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        title="Device name",
        description="The name Home Assistant shows for this camera box; null: "
        "doorwarden and the camera names.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError("the URL must start with mqtt:// or mqtts://")
        if parts.username is not None or parts.password is not None:
            raise ValueError("put the credentials in username and password, not in the URL")
        if not parts.hostname:
            raise ValueError("the URL has no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("the URL is mqtt[s]://host[:port], nothing after it")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        if port == 0:
            raise ValueError("bad port: 0")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("password and password_file: one or the other")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("reconnect_initial_s must not exceed reconnect_max_s")
        tls_set = self.tls.ca_file or self.tls.cert_file
        if tls_set and not self.uses_tls:
            raise ValueError("tls certificates are for mqtts:// URLs")
        return self

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or DEFAULT_PORTS[parts.scheme]

    def resolved(self, base: Path) -> MqttConfig:
        """Relative paths taken relative to `base` (the configuration file's folder)."""

        def at(path: Path | None) -> Path | None:
            if path is None:
                return None
            path = path.expanduser()
            return path if path.is_absolute() else base / path

        tls = self.tls.model_copy(
            update={k: at(getattr(self.tls, k)) for k in ("ca_file", "cert_file", "key_file")}
        )
        return self.model_copy(
            update={
                "tls": tls,
                "password_file": at(self.password_file),
                "server_token_file": at(self.server_token_file),
            }
        )
