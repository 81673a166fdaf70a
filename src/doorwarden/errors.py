"""Domain errors, each with an HTTP status and a stable code.

Routes raise these; `main.install_error_handlers` turns every error, ours or the
framework's, into one JSON shape for the API ({"error": {"code", "message", "details"}})
or an error page for the browser.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid_input"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class CsrfFailed(DomainError):
    status_code = 403
    code = "csrf_failed"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class TooManyAttempts(DomainError):
    status_code = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(
            message,
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "not_ready"


class _RetryLater(DomainError):
    """The server's own trouble, not the client's: the same request may succeed later,
    so the answer says when to try again (`Retry-After`, seconds)."""

    default_retry_after = 30

    def __init__(
        self, message: str, *, retry_after: int | None = None, details: Any = None
    ) -> None:
        seconds = self.default_retry_after if retry_after is None else retry_after
        super().__init__(
            message,
            details={**(details or {}), "retry_after": seconds},
            headers={"Retry-After": str(seconds)},
        )
        self.retry_after = seconds


class StorageFull(_RetryLater):
    """The server's disk (or quota) is full: nothing about the request was wrong."""

    status_code = 507
    code = "storage_full"
    default_retry_after = 60


class StorageUnavailable(_RetryLater):
    """The server could not read or write its storage (I/O error, object store down)."""

    status_code = 503
    code = "storage_unavailable"


class DatabaseUnavailable(_RetryLater):
    """The database cannot be reached (restarting, network cut)."""

    status_code = 503
    code = "database_unavailable"
    default_retry_after = 5
