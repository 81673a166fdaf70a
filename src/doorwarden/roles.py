"""Roles: what kind of account a user is, and what a member may do in a household.

They live in the kernel, apart from the models that store them, because the policy
(policy.py) decides by role and must not import a domain.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What kind of account this is. Household roles (owner, shared) are per household.

    Staff and agency accounts are kept apart from personal ones: an officer or an
    operator who also has a doorbell uses a separate resident account, so a staff
    account can never reach footage through a household membership.
    """

    resident = "resident"
    agency_officer = "agency_officer"
    legal_reviewer = "legal_reviewer"
    operator_admin = "operator_admin"
    auditor = "auditor"


class HouseholdRole(StrEnum):
    """owner: full control. shared: live view and history; no deletion, settings or users."""

    owner = "owner"
    shared = "shared"
