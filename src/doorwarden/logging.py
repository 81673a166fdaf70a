"""Structured logs (structlog): JSON lines in production, readable in development.
Every line of a request carries its request id."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, json: bool, level: int = logging.INFO) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    quiet_denial_responses()


class _DenialResponseNoise(logging.Filter):
    """uvicorn's websockets-sansio protocol logs an error after a WebSocket handshake is
    answered with an HTTP denial response (how live view refuses a caller), although
    the response was sent correctly: it never marks that handshake as complete."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


def quiet_denial_responses() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DenialResponseNoise) for f in logger.filters):
        logger.addFilter(_DenialResponseNoise())


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
