"""audit/readers.py: what households and instance-wide readers are shown of an event."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest

from doorwarden.audit import log, readers
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tags import Tag
from doorwarden.roles import Role

HOME, CLIP, DEVICE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def event(tag: str, role: str | None = "legal_reviewer", **changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "occurred_at": datetime(2026, 12, 1, tzinfo=UTC),
        "tag": tag,
        "actor_user_id": uuid.uuid4(),
        "actor_role": role,
        "household_id": HOME,
        "agency_id": uuid.uuid4(),
        "target_type": "clip",
        "target_id": str(CLIP),
        "client_address": "192.0.2.201",
        "user_agent": "StaffBrowser/1",
        "request_id": "r1",
        "extra": {
            "kind": "warrant",
            "request": str(uuid.uuid4()),
            "cameras": 1,
            "household": str(HOME),
            "clips": [str(CLIP)],
            "devices": [str(DEVICE)],
            "window": ["2026-11-25T09:00:00+00:00", "2026-11-25T12:00:00+00:00"],
            "reason": "Only the camera of 12 Elm Street.",
            "added_later": str(HOME),
        },
        "log_index": 7,
    }
    fields.update(changes)
    return AuditEvent(**fields)


SCOPED = [t for t in Tag if readers.scoped(str(t))]


def test_the_scoped_tags_are_at_least_those_the_public_log_keeps_quiet() -> None:
    for tag in Tag:
        if str(tag).startswith(log.QUIET_HOUSEHOLD_TAGS):
            assert readers.scoped(str(tag)), tag
    assert {str(t).split(":")[0] for t in SCOPED} == {"legal", "clip", "governance"}


@pytest.mark.parametrize("tag", SCOPED)
@pytest.mark.parametrize("target_type", ["clip", "device", "household"])
def test_instance_readers_see_no_home_no_footage_and_no_scope(tag: Tag, target_type: str) -> None:
    target = str(DEVICE if target_type == "device" else CLIP if target_type == "clip" else HOME)
    view = readers.for_instance(event(str(tag), target_type=target_type, target_id=target))
    shown = json.dumps(vars(view), default=str)
    for secret in (str(HOME), str(CLIP), str(DEVICE), "Elm Street", "09:00"):
        assert secret not in shown, (tag, secret)
    assert view.household_id is None and view.target_id is None
    assert set(view.extra) == {"kind", "request", "cameras"}  # kinds, ids of requests, counts
    assert view.target_type == target_type and view.tag == str(tag)


def test_a_request_or_package_target_stays_for_instance_readers() -> None:
    package = str(uuid.uuid4())
    view = readers.for_instance(
        event("legal:disclose", target_type="legal_package", target_id=package)
    )
    assert view.target_id == package


def test_other_events_are_shown_whole_to_instance_readers() -> None:
    original = event("clip:view", role="resident")
    view = readers.for_instance(original)
    assert view.household_id == HOME and view.target_id == str(CLIP)
    assert view.extra == original.extra and view.client_address == "192.0.2.201"


STAFF = [*(str(r) for r in Role if r is not Role.resident), "system", None, "someone-new"]


@pytest.mark.parametrize("role", STAFF)
def test_a_household_is_not_shown_where_staff_acted_from(role: str | None) -> None:
    view = readers.for_household(event("legal:disclose", role=role))
    assert view.client_address is None and view.user_agent is None
    assert view.withheld == {"client_address", "user_agent"}
    # Everything else about its own event, in full.
    assert view.household_id == HOME and view.extra["clips"] == [str(CLIP)]


@pytest.mark.parametrize("role", ["resident", "device"])
def test_a_household_sees_where_its_members_and_cameras_acted_from(role: str) -> None:
    view = readers.for_household(event("clip:view", role=role))
    assert (view.client_address, view.user_agent) == ("192.0.2.201", "StaffBrowser/1")
    assert not view.withheld


def test_a_household_entry_checks_out_without_the_address_it_commits_to() -> None:
    staff = event("legal:disclose")
    salt = "ab" * 16
    leaf = json.loads(log.leaf_of(staff, salt))
    opening = log.opening_salt(salt)
    private = log.private_json(staff, salt)
    assert leaf["v"] == log.LEAF_VERSION
    assert hashlib.sha256(bytes.fromhex(opening) + private).hexdigest() == leaf["commitment"]
    assert b"192.0.2.201" not in private and b"StaffBrowser" not in private
    assert opening != salt  # the stored salt, from which the network salt comes, stays home
    # An address edited after the fact no longer matches.
    staff.client_address = "192.0.2.66"
    assert log.private_json(staff, salt) != private
