"""Audit tags: namespaced `domain:object:verb`. A tag is part of the public record, so a
tag is never renamed; add a new one instead."""

from enum import StrEnum


class Tag(StrEnum):
    account_signup = "account:signup"
    account_login = "account:login"
    account_login_failure = "account:login:failure"
    account_login_locked = "account:login:locked"
    account_logout = "account:logout"
    account_password_change = "account:password:change"
    account_totp_enable = "account:totp:enable"
    account_totp_disable = "account:totp:disable"
    account_recovery_code_use = "account:recovery-code:use"
    account_token_create = "account:token:create"
    account_token_revoke = "account:token:revoke"
    household_create = "household:create"
    household_update = "household:update"
    household_member_add = "household:member:add"
    household_member_remove = "household:member:remove"
    admin_invite_create = "admin:invite:create"
    admin_user_create = "admin:user:create"
    admin_user_update = "admin:user:update"
    agency_create = "agency:create"
    agency_verify = "agency:verify"
