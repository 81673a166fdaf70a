"""Quiet entries (legal process, shares, programmes) at leaf version 3: the actor and a
camera or clip target are committed to privately, and a version 2 leaf (which kept them
public) still opens with the private fields of its own version."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

from doorwarden.audit import log
from doorwarden.audit.models import AuditEvent

SALT = "cd" * 16


def quiet(tag: str, target_type: str) -> AuditEvent:
    return AuditEvent(
        id=uuid.uuid4(), occurred_at=datetime(2026, 11, 25, tzinfo=UTC), tag=tag,
        actor_user_id=uuid.uuid4(), actor_role="resident", household_id=uuid.uuid4(),
        agency_id=uuid.uuid4(), target_type=target_type, target_id=str(uuid.uuid4()),
        client_address=None, user_agent=None, request_id="r", extra={},
    )  # fmt: skip


def test_a_quiet_entry_names_no_actor_and_no_camera_in_public() -> None:
    for tag, target_type in (("governance:programme:enrol", "device"), ("clip:share", "clip")):
        event = quiet(tag, target_type)
        leaf = json.loads(log.leaf_of(event, SALT))
        assert leaf["v"] == 3
        assert leaf["actor"] is None and leaf["household"] is None and leaf["target"] is None
        private = json.loads(log.private_json(event, SALT))
        assert private["actor"] == str(event.actor_user_id)
        assert private["target"] == event.target_id
        assert private["household"] == str(event.household_id)


def test_a_version_2_quiet_leaf_still_opens() -> None:
    event = quiet("clip:share", "clip")
    private = log.private_json(event, SALT, 2)
    assert "actor" not in json.loads(private)
    committed = log.commitment(SALT, event, 2)
    opening = bytes.fromhex(log.opening_salt(SALT, 2))
    assert hashlib.sha256(opening + private).hexdigest() == committed
