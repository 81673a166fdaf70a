"""A member with an end-to-end key registered, as the page leaves them."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from doorwarden.accounts.models import User
from doorwarden.crypto.keys import RecipientKey, b64e, key_id
from tests.factories import Factory

API = "/api/v1/account/keyring"
# The smallest Argon2id the server accepts: tests make many backups.
CHEAP = {"m_kib": 19 * 1024, "t": 2, "p": 1}


@dataclass
class Member:
    user: User
    client: httpx.AsyncClient
    key: RecipientKey

    @property
    def key_id(self) -> str:
        return key_id(self.key.public)

    @property
    def user_id(self) -> str:
        return str(self.user.id)


async def member_with_key(factory: Factory, *, household: bool = True) -> Member:
    user = await factory.user()
    if household:
        await factory.household(user)
    client = await factory.signed_in(user)
    key = RecipientKey.generate()
    put = await client.put("/api/v1/account/e2e-key", json={"public_key": b64e(key.public)})
    assert put.status_code == 200, put.text
    return Member(user, client, key)
