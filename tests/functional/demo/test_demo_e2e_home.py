"""The demo's end-to-end household (demo/e2e_home.py): seeded once; its resident's key is
registered and its only private copy is the passphrase backup the key page unlocks with
the printed passphrase; the household seals end to end. (That its camera's clips are
end-to-end ciphertext is checked on the running demo: tests/e2e/test_demo.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from doorwarden.crypto.keys import RecipientKey, b64e, key_id
from doorwarden.crypto.member_backup import WrongPassphrase, open_passphrase_backup
from doorwarden.db import create_engine, create_sessionmaker
from doorwarden.demo.cast import ACCOUNTS, E2E_HOME, E2E_PASSPHRASE, HOMES, PRIVATE
from doorwarden.demo.seed import seed
from doorwarden.devices.models import Encryption, HouseholdPlan, MemberKey
from doorwarden.keyring.models import KeyBackup
from doorwarden.storage import make_store
from tests.factories import CHEAP_COST as COST


async def test_the_end_to_end_home_is_seeded_once_with_a_key_its_passphrase_unlocks(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    store = make_store(str(tmp_path / "clips"))
    first = await seed(
        url, store, password_cost=COST, e2e_home=True, pair=frozenset({"quiet-house"})
    )
    again = await seed(url, store, password_cost=COST, e2e_home=True)
    assert again.made == [] and again.households == first.households
    assert set(first.households) == {h.slug for h in [*HOMES, E2E_HOME]}
    assert set(first.pairing_codes) == {E2E_HOME.slug}
    assert any(m.startswith("end-to-end key: " + PRIVATE.email) for m in first.made)
    assert PRIVATE in ACCOUNTS and E2E_PASSPHRASE in PRIVATE.what  # printed in the banner

    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as db:
            home = first.households[E2E_HOME.slug]
            plan = await db.get(HouseholdPlan, home)
            [owner_key] = (await db.scalars(select(MemberKey))).all()
            [backup] = (await db.scalars(select(KeyBackup))).all()
    finally:
        await engine.dispose()
    assert plan is not None and plan.encryption is Encryption.e2e
    assert backup.user_id == owner_key.user_id and backup.record["method"] == "passphrase"
    private = open_passphrase_backup(
        backup.record, user_id=str(owner_key.user_id), passphrase=E2E_PASSPHRASE
    )
    key = RecipientKey.from_bytes(private)
    assert b64e(key.public) == owner_key.public_key
    assert backup.key_id == key_id(key.public)
    with pytest.raises(WrongPassphrase):
        open_passphrase_backup(
            backup.record, user_id=str(owner_key.user_id), passphrase="not the passphrase"
        )


async def test_without_the_flag_the_street_is_as_before(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    seeded = await seed(url, make_store(str(tmp_path / "clips")), password_cost=COST)
    assert set(seeded.households) == {h.slug for h in HOMES}
