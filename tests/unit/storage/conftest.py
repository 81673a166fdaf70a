"""Both clip store backends behind one fixture, so every contract test runs on each.

The S3 backend talks to a real S3-protocol server on loopback (moto's, in a thread of this
process), not to a mock of obstore: the requests, multipart uploads and error replies are
the real thing. If moto cannot start, the S3 tests are skipped with the reason printed,
except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from doorwarden.storage import ClipStore, LocalClipStore, S3ClipStore

IN_CI = os.environ.get("CI") == "true"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIDDOORWARDENTEST01"
SECRET_ACCESS_KEY = "doorwarden-test-secret-" + uuid.uuid4().hex  # fresh per run


@dataclass
class S3Endpoint:
    url: str
    client: Any  # a boto3 S3 client, for checks behind the store's back

    def new_bucket(self) -> str:
        # A bucket per test: tests cannot see each other's objects.
        name = f"dw-test-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def store(self, bucket: str, **options: Any) -> S3ClipStore:
        return S3ClipStore(
            bucket,
            endpoint_url=self.url,
            region=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            allow_http=True,
            **options,
        )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    try:
        import boto3
        from moto.server import ThreadedMotoServer

        # Its access log would drown the test output; its errors still show.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )
        client.list_buckets()  # proves the server answers
    except Exception as exc:  # noqa: BLE001 - any failure means "no S3 server"; we say why
        reason = f"moto's S3 server could not start ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(f"{reason}; CI must run the S3 storage tests")
        print(f"\nSKIP: {reason}")  # noqa: T201 - the reason must be visible, not only in -ra
        pytest.skip(reason)
    try:
        yield S3Endpoint(url=url, client=client)
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> ClipStore:
    if backend == "local":
        return LocalClipStore(tmp_path / "clips")
    endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
    return endpoint.store(endpoint.new_bucket())


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable_store(backend: str, tmp_path: Path) -> ClipStore:
    """A store any real I/O on which fails: a key refused by it was refused before
    storage was touched."""
    if backend == "local":
        blocker = tmp_path / "a-file"
        blocker.write_bytes(b"")
        return LocalClipStore(blocker / "clips")  # every path under it is ENOTDIR
    return S3ClipStore(
        "unreachable",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        allow_http=True,
        connect_timeout_s=1,
        max_retries=0,
    )
