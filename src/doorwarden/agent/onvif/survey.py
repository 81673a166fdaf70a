"""`doorwarden agent discover`'s work: probe (agent/onvif/discovery.py), then, with
credentials, read every camera found at once (agent/onvif/device.py), each bounded by
the timeout so one silent camera does not hold up the others' rows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from doorwarden.agent.onvif.device import DeviceReport, OnvifDeviceError, read_device
from doorwarden.agent.onvif.discovery import Discovered


@dataclass(frozen=True)
class Surveyed:
    found: Discovered
    host: str | None
    port: int | None
    report: DeviceReport | None = None
    error: str | None = None  # why the profiles could not be read


def survey(
    cameras: list[Discovered],
    *,
    username: str | None,
    password: str | None,
    timeout_s: float,
) -> list[Surveyed]:
    """Each camera with its device report (when `username` is given) or its error."""
    return asyncio.run(_survey(cameras, username, password, timeout_s))


async def _survey(
    cameras: list[Discovered], username: str | None, password: str | None, timeout_s: float
) -> list[Surveyed]:
    return list(await asyncio.gather(*(_one(c, username, password, timeout_s) for c in cameras)))


async def _one(
    found: Discovered, username: str | None, password: str | None, timeout_s: float
) -> Surveyed:
    address = found.device_address()
    if address is None:
        return Surveyed(found, None, None, error="it announced no http(s) service address")
    host, port = address
    if not username:
        return Surveyed(found, host, port)
    label = f"camera {found.name!r} at {host}:{port}" if found.name else None
    try:
        report = await read_device(host, port, username, password, timeout_s=timeout_s, label=label)
    except OnvifDeviceError as exc:
        return Surveyed(found, host, port, error=str(exc))
    return Surveyed(found, host, port, report)
