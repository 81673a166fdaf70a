"""What only the S3 backend has: multipart uploads, private objects, a key prefix inside
the bucket, and error messages that carry no credentials."""

from __future__ import annotations

import asyncio
import os
import time
import traceback

import pytest

from doorwarden.storage import S3ClipStore, StorageError
from doorwarden.storage.s3 import redact
from tests.unit.storage.conftest import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    S3Endpoint,
    closed_port,
)
from tests.unit.storage.helpers import Parked, SourceFailed, chunked, failing

MIB = 1024 * 1024
KEY = "households/h1/devices/d1/2026/11/25/000000000001.clip.dws"


async def test_large_objects_go_up_in_parts_and_small_in_one(s3_endpoint: S3Endpoint) -> None:
    bucket = s3_endpoint.new_bucket()
    store = s3_endpoint.store(bucket)
    await store.put("big", chunked(os.urandom(11 * MIB), MIB))
    await store.put("small", chunked(b"thumbnail", 3))
    etag = s3_endpoint.client.head_object(Bucket=bucket, Key="big")["ETag"]
    assert etag.strip('"').endswith("-3")  # a multipart upload of 3 parts (5 + 5 + 1 MiB)
    assert "-" not in s3_endpoint.client.head_object(Bucket=bucket, Key="small")["ETag"]


async def test_a_failed_multipart_upload_is_aborted(s3_endpoint: S3Endpoint) -> None:
    bucket = s3_endpoint.new_bucket()
    store = s3_endpoint.store(bucket)
    with pytest.raises(SourceFailed):
        await store.put(KEY, failing(os.urandom(12 * MIB), MIB, 11 * MIB))
    # No hidden parts left behind to be paid for.
    assert s3_endpoint.client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3_endpoint.client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


async def test_objects_are_private(s3_endpoint: S3Endpoint) -> None:
    bucket = s3_endpoint.new_bucket()
    store = s3_endpoint.store(bucket)
    await store.put("small", b"x")
    await store.put("big", chunked(os.urandom(6 * MIB), MIB))

    grants = s3_endpoint.client.get_object_acl(Bucket=bucket, Key="small")["Grants"]
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
    assert grants[0]["Grantee"]["Type"] == "CanonicalUser"  # the owner, nobody else
    # moto's GetObjectAcl fails on a multipart object created without an ACL header, so
    # look at its model: no ACL recorded means no x-amz-acl header was sent.
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    big = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_object(bucket, "big")
    assert big is not None
    assert big.acl is None


async def test_a_prefix_keeps_the_store_inside_its_folder(s3_endpoint: S3Endpoint) -> None:
    bucket = s3_endpoint.new_bucket()
    s3_endpoint.client.put_object(Bucket=bucket, Key="someone-else/file", Body=b"theirs")
    store = s3_endpoint.store(bucket, prefix="tenants/doorwarden/")
    assert store.prefix == "tenants/doorwarden"
    await store.put("a/b.dws", b"ours")

    assert await store.list() == ["a/b.dws"]
    assert await store.get_range("a/b.dws", 0, 4) == b"ours"
    body = s3_endpoint.client.get_object(Bucket=bucket, Key="tenants/doorwarden/a/b.dws")["Body"]
    assert body.read() == b"ours"


async def test_errors_and_repr_carry_no_credentials() -> None:
    store = S3ClipStore(
        "clips",
        endpoint_url=f"http://user:endpoint-password@127.0.0.1:{closed_port()}",
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        session_token="session-token-value",
        allow_http=True,
        connect_timeout_s=1,
        max_retries=0,
    )
    with pytest.raises(StorageError) as caught:
        await store.put(KEY, b"x")
    shown = [
        str(caught.value),
        repr(caught.value),
        "".join(traceback.format_exception(caught.value)),
        repr(store),
    ]
    assert "put" in shown[0] and KEY in shown[0]  # still says what failed
    for text in shown:
        for secret in (SECRET_ACCESS_KEY, ACCESS_KEY_ID, "session-token-value", "endpoint-pass"):
            assert secret not in text


def test_redact() -> None:
    message = (
        "Generic S3 error: Error performing PUT https://u:pw@s3.example/b/k?x=AKID123 in 5ms"
        ' - Server returned non-2xx status code: 403 Forbidden: <?xml version="1.0"?>'
        "<Error><AWSAccessKeyId>AKID123</AWSAccessKeyId></Error>\n\nDebug source: SECRET"
    )
    summary = redact(message, ("AKID123", "SECRET"))
    assert summary == (
        "Generic S3 error: Error performing PUT https://s3.example/b/k?x=[redacted] in 5ms"
        " - Server returned non-2xx status code: 403 Forbidden"
    )


async def test_a_cancelled_multipart_upload_is_aborted(s3_endpoint: S3Endpoint) -> None:
    bucket = s3_endpoint.new_bucket()
    store = s3_endpoint.store(bucket)
    source = Parked(os.urandom(11 * MIB), b"never sent")  # two parts go up, then it waits
    task = asyncio.create_task(store.put(KEY, source))
    await asyncio.wait_for(source.started.wait(), timeout=10)

    def pending_uploads() -> list[object]:
        return list(s3_endpoint.client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))

    deadline = time.monotonic() + 10
    while not pending_uploads():  # the upload has started on the server
        assert time.monotonic() < deadline, "the multipart upload never started"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pending_uploads() == []  # aborted, not left behind
    assert await store.list() == []
