"""A camera's doorbell sources (`ring:` in a camera's configuration; issue 17).

Apart from models.py to keep each file small; the same rules: a title and a description
on every field, unknown keys rejected.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpioRing(Strict):
    chip: str = Field(
        "/dev/gpiochip0",
        title="GPIO chip",
        description="The chip's device node (libgpiod; `gpiodetect` lists them).",
        pattern=r"^/dev/gpiochip[0-9]+$",
    )
    line: int = Field(ge=0, le=1023, title="Line", description="The button's line offset.")
    active_low: bool = Field(
        True,
        title="Active low",
        description="The line reads 0 while pressed (a button to ground with a pull-up).",
    )
    bias: Literal["pull_up", "pull_down", "disabled", "as_is"] = Field(
        "pull_up", title="Bias", description="The line's internal resistor, where the chip has one."
    )
    bounce_ms: int = Field(
        50,
        ge=0,
        le=1000,
        title="Contact debounce (ms)",
        description="Edges closer than this are one (the kernel filters them).",
    )


class MqttRing(Strict):
    host: str = Field(
        "127.0.0.1", min_length=1, max_length=253, title="Broker host", description="MQTT broker."
    )
    port: int = Field(1883, ge=1, le=65535, title="Broker port", description="Its port.")
    tls: bool = Field(False, title="TLS", description="Connect with TLS (port 8883 usually).")
    topic: str = Field(
        min_length=1,
        max_length=256,
        title="Topic",
        description="Topic of the press messages; MQTT wildcards (+, #) allowed.",
    )
    payload: str | None = Field(
        None,
        max_length=256,
        title="Payload",
        description="Only a message with exactly this payload (trimmed) is a press; "
        "null: any message on the topic.",
    )
    username: str | None = Field(None, title="User name", description="Broker login.")
    password: str | None = Field(None, repr=False, title="Password", description="Broker password.")


class OnvifRing(Strict):
    host: str = Field(min_length=1, max_length=253, title="Host", description="The camera.")
    port: int = Field(80, ge=1, le=65535, title="Port", description="Its ONVIF (HTTP) port.")
    username: str = Field(title="User name", description="An ONVIF user of the camera.")
    password: str = Field(repr=False, title="Password", description="Its password.")
    topics: list[str] = Field(
        default_factory=lambda: [
            "Device/Trigger/DigitalInput",
            "RuleEngine/MyRuleDetector/Visitor",
            "Doorbell",
            "Visitor",
        ],
        title="Topics",
        description="An event whose topic contains one of these (case-insensitive) and "
        "whose state turns true is a press.",
    )
    input_token: str | None = Field(
        None,
        title="Input token",
        description="Only this digital input (the event's InputToken); null: any.",
    )


class RingConfig(Strict):
    debounce_s: float = Field(
        3.0,
        ge=0,
        le=60,
        title="Debounce (s)",
        description="Presses within this long of the last ring count once.",
    )
    gpio: GpioRing | None = Field(
        None, title="GPIO button", description="A button on a GPIO line (needs `gpiod`)."
    )
    mqtt: MqttRing | None = Field(
        None, title="MQTT", description="Press messages on a broker's topic (needs `paho-mqtt`)."
    )
    onvif: OnvifRing | None = Field(
        None,
        title="ONVIF events",
        description="The camera's doorbell or input events by PullPoint (needs "
        "`onvif-zeep-async`).",
    )
