"""crypto/member_backup.py: backups of a member key under a passphrase (Argon2id) or a
passkey's PRF output. The browser makes the same records (tests/e2e/test_e2e_keys.py
opens one across the two)."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest

from doorwarden.crypto import member_backup
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import RecipientKey, b64d, b64e, key_id

CHEAP: dict[str, int] = {"m_kib": 19 * 1024, "t": 2, "p": 1}
USER = "3f1c0a52-7a4e-4f5e-9d1a-0c6b8a1e2f3d"


@pytest.fixture(scope="module")
def key() -> RecipientKey:
    return RecipientKey.generate()


@pytest.fixture(scope="module")
def record(key: RecipientKey) -> dict[str, Any]:
    return member_backup.passphrase_backup(
        key.private_bytes(), user_id=USER, passphrase="tröpfchen im regen", **CHEAP
    )


def test_the_record_has_the_shared_format(record: dict[str, Any], key: RecipientKey) -> None:
    assert set(record) == {"key_id", "method", "kdf", "nonce", "ciphertext"}
    assert record["key_id"] == key_id(key.public)
    assert record["method"] == "passphrase"
    assert record["kdf"]["name"] == "argon2id"
    assert {k: record["kdf"][k] for k in CHEAP} == CHEAP
    assert member_backup.check_record(record) is record
    assert key.private_bytes() not in str(record).encode()


def test_the_right_passphrase_opens_it_in_any_unicode_form(
    record: dict[str, Any], key: RecipientKey
) -> None:
    opened = member_backup.open_passphrase_backup(
        record, user_id=USER, passphrase="tröpfchen im regen"
    )
    assert opened == key.private_bytes()
    decomposed = "tro\u0308pfchen im regen"  # the same text typed another way: NFKC agrees
    assert (
        member_backup.open_passphrase_backup(record, user_id=USER, passphrase=decomposed) == opened
    )


@pytest.mark.parametrize(
    ("passphrase", "user_id"),
    [
        ("tröpfchen im regen ", USER),  # one space more
        ("Tröpfchen im regen", USER),
        ("tröpfchen im regen", "another-user"),  # a record moved to another account
    ],
)
def test_anything_else_is_only_wrong(record: dict[str, Any], passphrase: str, user_id: str) -> None:
    with pytest.raises(member_backup.WrongPassphrase) as caught:
        member_backup.open_passphrase_backup(record, user_id=user_id, passphrase=passphrase)
    assert str(caught.value) == "wrong passphrase"


def test_a_changed_key_id_or_ciphertext_reads_as_wrong(record: dict[str, Any]) -> None:
    other = copy.deepcopy(record)
    other["key_id"] = key_id(RecipientKey.generate().public)
    flipped = copy.deepcopy(record)
    raw = bytearray(b64d(flipped["ciphertext"], what="c"))
    raw[0] ^= 1
    flipped["ciphertext"] = b64e(bytes(raw))
    for bad in (other, flipped):
        with pytest.raises(member_backup.WrongPassphrase):
            member_backup.open_passphrase_backup(bad, user_id=USER, passphrase="tröpfchen im regen")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("kdf", "m_kib"), 1024),  # below the floor: a weak backup
        (("kdf", "m_kib"), 8 * 1024 * 1024),  # 8 GiB: a forged record must not hog memory
        (("kdf", "t"), 1),
        (("kdf", "p"), 64),
        (("kdf", "t"), True),
        (("kdf", "salt"), "AAAA"),
        (("nonce",), "A" * 22),
        (("ciphertext",), "A" * 43),
        (("method",), "pin"),
        (("kdf", "name"), "scrypt"),
        (("key_id",), "short"),
    ],
)
def test_malformed_records_are_refused_before_any_work(
    record: dict[str, Any], path: tuple[str, ...], value: object
) -> None:
    bad = copy.deepcopy(record)
    target = bad
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(MalformedError):
        member_backup.open_passphrase_backup(bad, user_id=USER, passphrase="tröpfchen im regen")


def test_extra_fields_and_empty_passphrases_are_refused(
    record: dict[str, Any], key: RecipientKey
) -> None:
    with pytest.raises(MalformedError):
        member_backup.check_record({**record, "hint": "dog"})
    with pytest.raises(MalformedError):
        member_backup.passphrase_backup(key.private_bytes(), user_id=USER, passphrase="", **CHEAP)
    with pytest.raises(MalformedError):
        member_backup.passphrase_backup(b"short", user_id=USER, passphrase="x", **CHEAP)


def test_a_passkey_backup_opens_with_the_same_prf_output_only(key: RecipientKey) -> None:
    prf, salt = os.urandom(32), os.urandom(32)
    record = member_backup.passkey_backup(
        key.private_bytes(),
        user_id=USER,
        prf_output=prf,
        credential_id="Y3JlZC1pZC0xMjM0NTY3OA",
        prf_salt=salt,
    )
    assert record["kdf"] == {
        "name": "webauthn-prf",
        "credential_id": "Y3JlZC1pZC0xMjM0NTY3OA",
        "salt": b64e(salt),
    }
    assert (
        member_backup.open_passkey_backup(record, user_id=USER, prf_output=prf)
        == key.private_bytes()
    )
    with pytest.raises(member_backup.WrongPassphrase):
        member_backup.open_passkey_backup(record, user_id=USER, prf_output=os.urandom(32))
    with pytest.raises(MalformedError):
        member_backup.open_passphrase_backup(record, user_id=USER, passphrase="x")


def test_argon2id_is_deterministic_per_salt() -> None:
    # The page (noble's Argon2id) must derive the same bytes: tests/e2e/test_e2e_keys.py
    # opens records across the two.
    salt = bytes(range(16))
    one = member_backup.argon2id("pass phrase", salt, **CHEAP)
    assert one == member_backup.argon2id("pass phrase", salt, **CHEAP)
    assert one != member_backup.argon2id("pass phrase", bytes(16), **CHEAP)
    assert len(one) == 32
