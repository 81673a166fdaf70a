"""What an ONVIF camera says about itself: device information, media profiles (name,
token, encoding, resolution, frame rate) and each profile's RTSP URI (GetStreamUri,
RTP-Unicast over RTSP), with the main stream (largest picture) and the sub-stream
(smallest) picked out. Through `onvif-zeep-async`, imported when called.

Every failure becomes one `OnvifDeviceError` whose message names the camera and says
what to do: wrong credentials, no answer in time, nothing listening, a reply that is
not ONVIF (zeep refuses XML entities; a DTD or malformed envelope is refused here too).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

MAX_PROFILES = 32  # a camera reporting more is broken or hostile; the rest are dropped


class OnvifDeviceError(Exception):
    """`kind`: auth | timeout | unreachable | malformed | fault."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class DeviceInfo:
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    hardware_id: str = ""


@dataclass(frozen=True)
class Profile:
    token: str
    name: str
    encoding: str = ""
    width: int = 0
    height: int = 0
    fps: float | None = None
    uri: str | None = None

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def describe(self) -> str:
        size = f"{self.width}x{self.height}" if self.pixels else "?x?"
        rate = f" {self.fps:g} fps" if self.fps else ""
        return f"{self.name or self.token} {size} {self.encoding or '?'}{rate}"


@dataclass(frozen=True)
class DeviceReport:
    host: str
    port: int
    info: DeviceInfo
    profiles: list[Profile] = field(default_factory=list)

    @property
    def main(self) -> Profile | None:
        """The largest picture with a stream URI (ties: the higher frame rate)."""
        usable = [p for p in self.profiles if p.uri]
        return max(usable, key=lambda p: (p.pixels, p.fps or 0), default=None)

    @property
    def sub(self) -> Profile | None:
        """The smallest picture with a stream URI, when smaller than the main one."""
        main = self.main
        usable = [p for p in self.profiles if p.uri and main is not None and p.pixels < main.pixels]
        return min(usable, key=lambda p: (p.pixels, -(p.fps or 0)), default=None)


def where(host: str, port: int) -> str:
    return f"the camera at {host}:{port}"


async def read_device(
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    *,
    timeout_s: float = 10.0,
    label: str | None = None,
) -> DeviceReport:
    """Device information, profiles and stream URIs; OnvifDeviceError naming `label`
    (default: "the camera at HOST:PORT")."""
    name = label or where(host, port)
    try:
        return await asyncio.wait_for(_read(host, port, username, password), timeout_s)
    except TimeoutError as exc:
        raise OnvifDeviceError(
            "timeout", f"{name} did not answer within {timeout_s:g} s (is it ONVIF, is "
            "the port right?)",
        ) from exc  # fmt: skip
    except OnvifDeviceError:
        raise
    except Exception as exc:
        raise translate(exc, name) from exc


def translate(exc: BaseException, name: str) -> OnvifDeviceError:
    """A failure from onvif-zeep-async, zeep, aiohttp or lxml as one clear error."""
    import aiohttp  # noqa: PLC0415 - comes with onvif-zeep-async
    import zeep.exceptions  # noqa: PLC0415

    cause: BaseException = exc
    while getattr(cause, "__cause__", None) is not None and type(cause).__name__ == "ONVIFError":
        cause = cause.__cause__  # type: ignore[assignment]
    text = " ".join(str(cause).split())[:200]
    if _is_auth(cause):
        return OnvifDeviceError("auth", f"{name} refused the user name or password ({text})")
    if isinstance(cause, aiohttp.ClientConnectorError | ConnectionError | OSError):
        return OnvifDeviceError("unreachable", f"cannot connect to {name}: {text}")
    if isinstance(cause, aiohttp.ClientError):
        return OnvifDeviceError("unreachable", f"{name} broke off the connection: {text}")
    if isinstance(cause, zeep.exceptions.DTDForbidden | zeep.exceptions.EntitiesForbidden):
        # Not quoted: the declarations are the sender's, whatever they hold.
        return OnvifDeviceError("malformed", f"{name} sent XML with a DTD or entities: refused")
    if isinstance(
        cause,
        zeep.exceptions.XMLSyntaxError | zeep.exceptions.DTDForbidden
        | zeep.exceptions.EntitiesForbidden | zeep.exceptions.XMLParseError
        | zeep.exceptions.ValidationError | AttributeError | TypeError | ValueError,
    ):  # fmt: skip
        return OnvifDeviceError(
            "malformed", f"{name} sent a reply that is not usable ONVIF: {text}"
        )
    if isinstance(cause, zeep.exceptions.Fault):
        return OnvifDeviceError("fault", f"{name} answered with a SOAP fault: {text}")
    if isinstance(cause, zeep.exceptions.TransportError):
        return OnvifDeviceError("fault", f"{name} answered HTTP {cause.status_code}")
    return OnvifDeviceError("fault", f"{name}: {type(cause).__name__}: {text}")


def _is_auth(exc: BaseException) -> bool:
    import zeep.exceptions  # noqa: PLC0415

    if type(exc).__name__ == "ONVIFAuthError":
        return True
    if isinstance(exc, zeep.exceptions.TransportError):
        return exc.status_code in (401, 403)
    if isinstance(exc, zeep.exceptions.Fault):
        said = f"{exc.message} {exc.code} {exc.subcodes}".lower().replace(" ", "")
        return "notauthorized" in said or "notauthorised" in said or "unauthorized" in said
    return False


async def _read(host: str, port: int, username: str | None, password: str | None) -> DeviceReport:
    from onvif import ONVIFCamera  # type: ignore[import-untyped]  # noqa: PLC0415 - optional

    device = ONVIFCamera(host, port, username, password, adjust_time=True, no_cache=True)
    try:
        await device.update_xaddrs()
        devicemgmt = await device.create_devicemgmt_service()
        raw = await devicemgmt.GetDeviceInformation()
        info = DeviceInfo(
            *(_text(getattr(raw, k, None)) for k in
              ("Manufacturer", "Model", "FirmwareVersion", "SerialNumber", "HardwareId"))
        )  # fmt: skip
        media = await device.create_media_service()
        profiles = []
        for item in list(await media.GetProfiles() or [])[:MAX_PROFILES]:
            profile = _profile(item)
            if profile is None:
                continue
            uri = await _stream_uri(media, profile.token)
            profiles.append(Profile(**{**profile.__dict__, "uri": uri}))
        return DeviceReport(host, port, info, profiles)
    finally:
        await device.close()


async def _stream_uri(media: Any, token: str) -> str | None:
    import zeep.exceptions  # noqa: PLC0415

    request = {
        "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
        "ProfileToken": token,
    }
    try:
        result = await media.GetStreamUri(request)
    except zeep.exceptions.Fault:
        return None  # a profile without a stream (a snapshot-only or audio profile)
    uri = _text(getattr(result, "Uri", None))
    return uri if uri.lower().startswith(("rtsp://", "rtsps://")) else None


def _profile(item: Any) -> Profile | None:
    token = _text(getattr(item, "token", None))
    if not token:
        return None
    encoder = getattr(item, "VideoEncoderConfiguration", None)
    resolution = getattr(encoder, "Resolution", None)
    rate = getattr(getattr(encoder, "RateControl", None), "FrameRateLimit", None)
    return Profile(
        token=token[:64],
        name=_text(getattr(item, "Name", None))[:64],
        encoding=_text(getattr(encoder, "Encoding", None))[:16],
        width=_int(getattr(resolution, "Width", None)),
        height=_int(getattr(resolution, "Height", None)),
        fps=float(rate) if isinstance(rate, int | float) and 0 < rate <= 1000 else None,
    )


def _text(value: object) -> str:
    return " ".join(str(value).split())[:256] if value is not None else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and 0 < value <= 16384 else 0
