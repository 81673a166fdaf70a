"""Which addresses a webhook may reach, and that the address connected to is the one
checked."""

from __future__ import annotations

import ipaddress

import pytest

from doorwarden.integrations.webhooks import ssrf


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.0.1", "100.64.0.1",
        "169.254.169.254", "0.0.0.0", "224.0.0.251", "240.0.0.1", "255.255.255.255",  # noqa: S104 - refused, not bound
        "::1", "::", "fd00::1", "fe80::1", "ff02::1", "::ffff:10.0.0.1",
        "::ffff:169.254.169.254", "64:ff9b::7f00:1", "2002:c0a8:0101::", "2001:db8::1",
    ],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not ssrf.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert ssrf.is_public(ipaddress.ip_address(address))


async def test_every_answer_must_be_public_and_the_first_is_pinned() -> None:
    target = ssrf.check_url("https://hooks.example.com:8443/in?x=1", development=False)
    assert target.host_header == "hooks.example.com:8443"

    async def mixed(_host: str, _port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.1"]

    async def public(_host: str, _port: int) -> list[str]:
        return ["2606:4700:4700::1111", "93.184.216.34"]

    with pytest.raises(ssrf.Refused):
        await ssrf.pin(target, development=False, resolver=mixed)
    pinned = await ssrf.pin(target, development=False, resolver=public)
    assert pinned.url == "https://[2606:4700:4700::1111]:8443/in?x=1"
    # Development allows private answers, and still connects to the address resolved.
    local = await ssrf.pin(target, development=True, resolver=mixed)
    assert local.url == "https://93.184.216.34:8443/in?x=1"


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def nothing(_host: str, _port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    target = ssrf.check_url("https://nowhere.example.com/", development=False)
    with pytest.raises(ssrf.Refused, match="does not resolve"):
        await ssrf.pin(target, development=False, resolver=nothing)
