"""The device identity on disk: key and pairing files, their permissions, unpairing."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityError, IdentityStore, Plan
from doorwarden.crypto.keys import RecipientKey, key_id

TOKEN = "dwd_not-a-real-token-but-secret"


def identity(device_id: str = "dev-1", *, mode: str = "standard") -> DeviceIdentity:
    household = RecipientKey.generate().public
    return DeviceIdentity(
        server="https://doorwarden.example",
        device_id=device_id,
        household_id="hh-1",
        token=TOKEN,
        mode="e2e" if mode == "e2e" else "standard",
        recipients=[(key_id(household), household)],
        plan=Plan("recording", 30),
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_zero")
def test_key_and_state_are_private_even_with_umask_zero(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "state")
    key = store.signing_key()
    store.save(identity())

    assert mode_of(store.state_dir) == 0o700
    assert mode_of(store.key_path) == 0o600
    assert mode_of(store.identity_path) == 0o600
    assert store.key_path.read_bytes() == key.private_bytes()
    assert len(key.private_bytes()) == 32
    assert store.signing_key().public == key.public  # made once, then loaded
    assert sorted(p.name for p in store.state_dir.iterdir()) == ["device.json", "device.key"]


def test_a_key_other_users_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    store.signing_key()
    store.key_path.chmod(0o644)
    with pytest.raises(IdentityError) as refused:
        store.signing_key()
    assert str(store.key_path) in str(refused.value)
    assert "0644" in str(refused.value)
    assert f"chmod 600 {store.key_path}" in str(refused.value)


def test_a_key_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    fd = os.open(store.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    os.close(fd)
    with pytest.raises(IdentityError, match="not a 32-byte device key"):
        store.signing_key()


def test_a_world_readable_pairing_file_is_refused(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    store.save(identity())
    store.identity_path.chmod(0o604)
    with pytest.raises(IdentityError, match="chmod 600"):
        store.load()


def test_identity_round_trip(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "state")
    assert store.load() is None
    original = identity(mode="e2e")
    store.save(original)
    assert store.load() == original

    on_disk = json.loads(store.identity_path.read_text())
    assert on_disk["token"] == TOKEN  # the uploader needs it
    assert on_disk["recipients"][0]["key_id"] == original.recipients[0][0]
    assert on_disk["plan"] == {"kind": "recording", "retention_days": 30}

    replaced = dataclasses.replace(original, plan=Plan("live_only", None))
    store.save(replaced)
    assert store.load() == replaced
    assert [p.name for p in store.state_dir.iterdir()] == ["device.json"]  # no temp files


def test_the_token_is_never_shown(tmp_path: Path) -> None:
    shown = identity()
    assert TOKEN not in repr(shown)
    assert TOKEN not in str(shown)
    assert "dev-1" in repr(shown)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d.pop("token"), "token"),
        (lambda d: d.update(mode="plaintext"), "mode"),
        (lambda d: d["recipients"][0].update(key_id="0" * 32), "key_id"),
        (lambda d: d["recipients"][0].update(public_key="AAAA"), "public_key"),
        (lambda d: d["plan"].update(kind="unlimited"), "plan.kind"),
        (lambda d: d["plan"].update(retention_days=True), "retention_days"),
    ],
)
def test_bad_device_state_is_refused_naming_the_file(
    tmp_path: Path, change: object, complaint: str
) -> None:
    store = IdentityStore(tmp_path)
    store.save(identity())
    body = json.loads(store.identity_path.read_text())
    assert callable(change)
    change(body)
    store.identity_path.write_text(json.dumps(body))
    with pytest.raises(IdentityError) as refused:
        store.load()
    assert str(store.identity_path) in str(refused.value)
    assert complaint in str(refused.value)


def test_unparseable_device_state_is_refused(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    store.save(identity())
    store.identity_path.write_bytes(b"\xff{")
    with pytest.raises(IdentityError, match="not valid device state"):
        store.load()


def test_forget_then_pair_again_makes_a_new_key(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    old = store.signing_key()
    store.save(identity())
    store.forget()
    assert store.load() is None
    assert not store.key_path.exists()

    new = store.signing_key()
    assert new.public != old.public
    store.forget()
    store.forget()  # idempotent


def test_a_pairing_without_its_key_is_refused_not_rekeyed(tmp_path: Path) -> None:
    """What a crash half-way through forget() leaves (the key goes first)."""
    store = IdentityStore(tmp_path)
    store.signing_key()
    store.save(identity())
    store.key_path.unlink()
    with pytest.raises(IdentityError, match="pair it again"):
        store.signing_key()
    assert not store.key_path.exists()
    store.forget()
    store.signing_key()
