"""The safety net for storage failures that escape a route (issue 23, decision 1): the
clip store's full disk is 507 `storage_full`, any other failure of it 503
`storage_unavailable`, both with Retry-After and one warning line, never a 500 with a
traceback. The clip upload routes answer these themselves; every other route relies on
the app's handlers. A test route drives the real local store on a real full filesystem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from doorwarden.storage import ClipStore
from tests.factories import assert_error, make_client
from tests.tmpfs import fill, release, small_tmpfs


def _add_store_routes(app: FastAPI) -> None:
    """A route that stores an object (and one that reads a missing one) through the app's
    own store, on the API and as a page."""
    store: ClipStore = app.state.clip_store

    async def put() -> dict[str, int]:
        return {"written": await store.put("test/object", b"x" * 256 * 1024)}

    async def read_missing() -> None:
        await store.get_range("test/missing", 0, 1)

    app.add_api_route("/api/v1/test-store", put, methods=["POST"])
    app.add_api_route("/test-store", put, methods=["POST"])
    app.add_api_route("/api/v1/test-store-missing", read_missing)


@pytest.fixture
def full_store(app: FastAPI, tmp_path: Path) -> Iterator[Path]:
    """The app's clip store on a small tmpfs, mounted where the store keeps its objects."""
    store_root = Path(app.state.clip_store.root)
    with small_tmpfs(store_root, 1024 * 1024) as mounted:
        yield mounted


def _assert_storage(response: httpx.Response, status: int, code: str, retry_after: int) -> None:
    assert response.headers["retry-after"] == str(retry_after)
    if "application/json" in response.headers["content-type"]:
        error = assert_error(response, status, code)
        assert error["details"] == {"retry_after": retry_after}
    else:
        assert response.status_code == status, response.text
        assert "text/html" in response.headers["content-type"]


async def test_full_store_answers_507_and_recovers(app: FastAPI, full_store: Path) -> None:
    _add_store_routes(app)
    async with make_client(app) as c:
        assert (await c.post("/api/v1/test-store")).status_code == 200
        fill(full_store, leave_bytes=4096)
        with capture_logs() as logs:
            api = await c.post("/api/v1/test-store")
            page = await c.post("/test-store", headers={"accept": "text/html"})
        _assert_storage(api, 507, "storage_full", 60)
        _assert_storage(page, 507, "storage_full", 60)
        warned = [e for e in logs if e["event"] == "request.storage_full"]
        assert [e["path"] for e in warned] == ["/api/v1/test-store", "/test-store"]
        assert all(e["log_level"] == "warning" for e in warned)
        assert not [e for e in logs if e.get("exc_info") or e["log_level"] == "error"]
        release(full_store)
        assert (await c.post("/api/v1/test-store")).status_code == 200


def _file_in_the_way(root: Path) -> None:
    """A file where the store needs a directory: every put under it fails (ENOTDIR)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "test").write_bytes(b"")


async def test_broken_store_answers_503(app: FastAPI) -> None:
    _add_store_routes(app)
    _file_in_the_way(Path(app.state.clip_store.root))
    async with make_client(app) as c:
        with capture_logs() as logs:
            response = await c.post("/api/v1/test-store")
    _assert_storage(response, 503, "storage_unavailable", 30)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "request.storage_unavailable"
    ]
    assert not [e for e in logs if e.get("exc_info")]


async def test_a_missing_object_escaping_a_route_is_still_a_bug(app: FastAPI) -> None:
    """Not a storage fault: the route should have checked (a 404 of its own); a 500."""
    _add_store_routes(app)
    async with make_client(app) as c:
        with capture_logs() as logs:
            response = await c.get("/api/v1/test-store-missing")
    assert_error(response, 500, "internal_error")
    assert [e["event"] for e in logs if e.get("exc_info")] == ["unhandled error"]
