"""A JSON API client signed in as one demo account, as a script would use the API: the
session cookie from POST /api/v1/session and its CSRF token on every unsafe call."""

from __future__ import annotations

import json
from typing import Any

import httpx

from doorwarden.demo.cast import DEMO_PASSWORD, DemoAccount


class ApiError(Exception):
    """A call the demo needed was refused; the message has the method, path and error."""


def _describe(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


class Api:
    def __init__(self, base_url: str, account: DemoAccount, *, timeout_s: float = 60.0) -> None:
        self.account = account
        self.client = httpx.Client(base_url=base_url, timeout=timeout_s)
        signed_in = self.client.post(
            "/api/v1/session", json={"email": account.email, "password": DEMO_PASSWORD}
        )
        if signed_in.status_code != 200:
            self.client.close()
            raise ApiError(f"signing in as {account.email} failed: {_describe(signed_in)}")
        self.client.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise ApiError(
                f"{method} {path} as {self.account.email}: {response.status_code} "
                f"{_describe(response)}"
            )
        return response

    def get(self, path: str, **params: str) -> Any:
        return self.call("GET", path, params=params or None).json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.call("POST", path, json=body if body is not None else {})
        return response.json() if response.content else None

    def put(self, path: str, body: dict[str, Any]) -> Any:
        response = self.call("PUT", path, json=body)
        return response.json() if response.content else None

    def post_multipart(
        self, path: str, details: dict[str, Any], files: dict[str, tuple[str, bytes, str]]
    ) -> Any:
        return self.call("POST", path, data={"details": json.dumps(details)}, files=files).json()
