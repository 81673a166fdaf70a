"""Notification e-mail through any SMTP server (aiosmtplib), as the settings say.

An e-mail carries what the push says (title, body, a link to the page) and nothing more:
no image, no household name. Failures are the caller's to record and retry; this module
only says whether the server took the message, and why not.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from doorwarden.config import Settings
from doorwarden.notify.models import AttemptStatus, Notification

NOT_CONFIGURED = "e-mail is not configured on this instance (smtp_host)"


@dataclass(frozen=True)
class MailResult:
    status: AttemptStatus
    error: str | None = None
    code: int | None = None  # the SMTP reply code of a refusal
    retryable: bool = False  # the server was down or said "later" (4xx)


def message(settings: Settings, notification: Notification, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = notification.title
    msg["Date"] = formatdate(notification.occurred_at.timestamp(), usegmt=True)
    msg["Message-ID"] = make_msgid(idstring=str(notification.id), domain="doorwarden")
    msg["Auto-Submitted"] = "auto-generated"
    link = settings.public_base_url.rstrip("/") + notification.url
    msg.set_content(
        f"{notification.body}\n\n{link}\n\n"
        "You get this e-mail because you asked for notifications by e-mail. Change that in "
        "the household's notification settings.\n"
    )
    return msg


async def send_email(settings: Settings, notification: Notification, to: str) -> MailResult:
    if not settings.smtp_host:
        return MailResult(AttemptStatus.failed, NOT_CONFIGURED)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            message(settings, notification, to),
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_tls,
            start_tls=False if settings.smtp_tls else settings.smtp_starttls,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout_s,
        )
    except aiosmtplib.SMTPResponseException as exc:
        error = f"SMTP {exc.code}: {exc.message}"[:300]
        # 5xx is the server's final word (no such mailbox, refused); 4xx means later.
        return MailResult(AttemptStatus.failed, error, exc.code, retryable=exc.code < 500)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        return MailResult(AttemptStatus.failed, error, retryable=True)
    return MailResult(AttemptStatus.sent)
