"""`make_store`: the URL forms it accepts and the mistakes it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from doorwarden.storage import ClipStore, LocalClipStore, S3ClipStore, make_store


def test_plain_path(tmp_path: Path) -> None:
    store = make_store(str(tmp_path / "clips"))
    assert isinstance(store, LocalClipStore)
    assert store.root == tmp_path / "clips"
    assert isinstance(store, ClipStore)


def test_file_url(tmp_path: Path) -> None:
    store = make_store(f"file://{tmp_path}/my%20clips")
    assert isinstance(store, LocalClipStore)
    assert store.root == tmp_path / "my clips"
    assert isinstance(make_store(f"file://localhost{tmp_path}"), LocalClipStore)


def test_s3_url() -> None:
    store = make_store(
        "s3://doorwarden-clips",
        endpoint_url="https://s3.example.net",
        region="eu-west-1",
        access_key_id="AKID",
        secret_access_key="secret",
    )
    assert isinstance(store, S3ClipStore)
    assert isinstance(store, ClipStore)
    assert (store.bucket, store.prefix) == ("doorwarden-clips", "")
    assert "secret" not in repr(store)


def test_s3_url_with_a_prefix() -> None:
    store = make_store("s3://shared/tenants/doorwarden/", region="us-east-1")
    assert isinstance(store, S3ClipStore)
    assert (store.bucket, store.prefix) == ("shared", "tenants/doorwarden")


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("", {}, "empty"),
        ("s3://", {}, "names a bucket"),
        ("s3://AKID:secret@bucket", {}, "names a bucket"),
        ("s3://bucket?region=x", {}, "no query"),
        ("s3://bucket/../x", {}, "invalid key prefix"),
        ("file://server/share", {}, "local path"),
        ("gs://bucket", {}, "unsupported"),
        ("/var/clips", {"region": "us-east-1"}, "only to an s3:// store"),
        ("file:///var/clips", {"allow_http": True}, "only to an s3:// store"),
    ],
)
def test_refused(url: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_store(url, **options)  # type: ignore[arg-type]
