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
    device_pairing_code_create = "device:pairing-code:create"
    device_pair = "device:pair"
    device_revoke = "device:revoke"
    clip_receive = "clip:receive"
    clip_integrity_alert = "clip:integrity-alert"
    clip_view = "clip:view"
    clip_download = "clip:download"
    clip_thumbnail_view = "clip:thumbnail:view"
    clip_delete = "clip:delete"
    clip_expire = "clip:expire"
    household_plan_update = "household:plan:update"
    account_e2e_key_set = "account:e2e-key:set"
    # The member key's keyring (keyring/): backups, passkeys, device approval, rotation.
    account_keyring_backup_set = "account:keyring:backup:set"
    account_keyring_backup_fetch = "account:keyring:backup:fetch"
    account_keyring_passkey_add = "account:keyring:passkey:add"
    account_keyring_passkey_unlock = "account:keyring:passkey:unlock"
    account_keyring_device_request = "account:keyring:device:request"
    account_keyring_device_approve = "account:keyring:device:approve"
    account_keyring_device_collect = "account:keyring:device:collect"
    account_keyring_rotate = "account:keyring:rotate"
    household_encryption_update = "household:encryption:update"
    live_start = "live:start"
    live_end = "live:end"
    talk_start = "talk:start"
    talk_end = "talk:end"
    # Agencies and governance.
    agency_update = "agency:update"
    agency_flag = "agency:flag"
    governance_approval_record = "governance:approval:record"
    governance_approval_revoke = "governance:approval:revoke"
    governance_programme_create = "governance:programme:create"
    governance_programme_end = "governance:programme:end"
    governance_programme_enrol = "governance:programme:enrol"
    governance_programme_unenrol = "governance:programme:unenrol"
    instance_policy_update = "instance:policy:update"
    # Legal process: one tag per transition of a request, and per disclosure.
    legal_document_upload = "legal:document:upload"
    legal_request_submit = "legal:request:submit"
    legal_request_review = "legal:request:review"
    legal_request_approve = "legal:request:approve"
    legal_request_narrow = "legal:request:narrow"
    legal_request_reject = "legal:request:reject"
    legal_request_withdraw = "legal:request:withdraw"
    legal_request_ratify = "legal:request:ratify"
    legal_request_lapse = "legal:request:lapse"
    legal_request_extend = "legal:request:extend"
    legal_request_close = "legal:request:close"
    legal_package_create = "legal:package:create"
    legal_package_download = "legal:package:download"
    legal_disclose = "legal:disclose"  # per household: its clips or details handed over
    legal_hold_place = "legal:hold:place"
    legal_hold_release = "legal:hold:release"
    legal_notice_deliver = "legal:notice:deliver"
    legal_notice_delay = "legal:notice:delay"
    clip_share = "clip:share"  # a resident shares a clip with a community request
    # Household modes (modes/): the mode set by an owner or by the schedule (actor system),
    # the definitions and schedule changed, a snooze begun or ended early.
    mode_set = "mode:set"
    mode_update = "mode:update"
    mode_schedule_update = "mode:schedule:update"
    mode_snooze_create = "mode:snooze:create"
    mode_snooze_end = "mode:snooze:end"
    notify_rules_update = "notify:rules:update"  # a member's own notification rules
    # A browser subscribed to (or unsubscribed from) one's own Web Push notifications; the
    # removal of a subscription its push service says is gone (404/410) is the system's.
    push_subscription_create = "push:subscription:create"
    push_subscription_delete = "push:subscription:delete"
    push_subscription_expire = "push:subscription:expire"
    # Household webhooks (integrations/webhooks/): an endpoint registered, changed (URL,
    # kinds, enabled, secret rotated; or turned off by the system: 410 Gone, failing for
    # days), removed.
    webhook_create = "webhook:create"
    webhook_update = "webhook:update"
    webhook_delete = "webhook:delete"
    # Camera settings from the web (devices/settings/): a change (the fields changed), a
    # privacy zone removed or shrunk (every member is told), a snapshot fetched for the
    # zone editor (never stored).
    camera_settings_update = "camera:settings:update"
    camera_privacy_reduce = "camera:privacy:reduce"
    camera_snapshot = "camera:snapshot"
