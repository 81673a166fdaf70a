"""Password hashing: argon2id at RFC 9106's second recommended profile unless the
settings say otherwise; a stored hash verifies at its own cost."""

from __future__ import annotations

import argon2
import pytest
from pydantic import ValidationError

from doorwarden.accounts.secrets import (
    hash_password,
    needs_rehash,
    verify_password,
    verify_sign_in,
)
from doorwarden.config import PasswordCost, Settings
from tests.factories import CHEAP_COST

SECRET = "a-test-secret-key-that-is-long-enough-" + "x" * 20


async def test_by_default_a_hash_is_argon2id_at_rfc_9106s_second_profile() -> None:
    cost = Settings(secret_key=SECRET).password_cost
    stored = await hash_password("correct horse battery staple", cost)
    made = argon2.extract_parameters(stored)
    assert made.type is argon2.Type.ID
    assert (made.time_cost, made.memory_cost, made.parallelism) == (3, 64 * 1024, 4)
    assert await verify_password(stored, "correct horse battery staple")
    assert not await verify_password(stored, "correct horse battery stapler")


async def test_a_hash_verifies_at_its_own_cost_whatever_the_settings() -> None:
    stored = await hash_password("a long password here", CHEAP_COST)
    assert argon2.extract_parameters(stored).memory_cost == CHEAP_COST.memory_kib
    assert await verify_sign_in(stored, "a long password here", PasswordCost(3, 65536, 4))
    assert needs_rehash(stored, PasswordCost(3, 65536, 4))
    assert not needs_rehash(stored, CHEAP_COST)


@pytest.mark.parametrize("stored", [None, "", "not-a-hash", "$argon2id$v=19$m=8,t=1,p=1$$"])
async def test_no_account_or_a_damaged_hash_never_signs_in(stored: str | None) -> None:
    assert not await verify_sign_in(stored, "anything at all", CHEAP_COST)
    if stored:
        assert not await verify_password(stored, "anything at all")
        assert needs_rehash(stored, CHEAP_COST)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password_hash_time_cost": 0}, "password_hash_time_cost"),
        ({"password_hash_memory_kib": 32}, "password_hash_memory_kib"),
        ({"password_hash_parallelism": 0}, "password_hash_parallelism"),
        ({"password_hash_memory_kib": 64, "password_hash_parallelism": 16}, "8 KiB per lane"),
    ],
)
def test_impossible_costs_are_refused_by_name(change: dict[str, int], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(secret_key=SECRET, **change)  # type: ignore[arg-type]
