"""The client address (throttling and audit key) believes X-Forwarded-For only from a
configured proxy, and then takes the right-most hop that is not one of ours."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from doorwarden.config import Settings
from doorwarden.deps import client_address

SECRET = "x" * 40


def request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "headers": headers, "client": (peer, 1234)})


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "expected"),
    [
        ([], "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # no proxy configured: spoof ignored
        (["10.0.0.2"], "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not from our proxy
        (["10.0.0.2"], "10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # A client-supplied first hop cannot hide the address our proxy saw.
        (["10.0.0.2"], "10.0.0.2", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
        (["10.0.0.2", "10.0.0.3"], "10.0.0.2", "198.51.100.1, 10.0.0.3", "198.51.100.1"),
        (["10.0.0.2"], "10.0.0.2", None, "10.0.0.2"),
    ],
)
def test_client_address(
    proxies: list[str], peer: str, forwarded: str | None, expected: str
) -> None:
    settings = Settings(secret_key=SECRET, trusted_proxies=proxies)
    assert client_address(request(peer, forwarded), settings) == expected
