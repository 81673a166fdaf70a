"""A ring as text (the HTTP body, or the control message without its "type"): bounded,
strict JSON, then the schema. Shared by the HTTP route and the control connection."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from doorwarden.crypto import strict_json
from doorwarden.crypto.errors import MalformedError
from doorwarden.events.schemas import EVENT_MAX_BYTES, EventIn


def parse_ring(body: bytes) -> EventIn:
    """MalformedError (not JSON, too deep, too long) or ValidationError (wrong shape)."""
    strict_json.loads(body, max_bytes=EVENT_MAX_BYTES)
    # From the JSON text: strict mode then reads an ISO-8601 time as a time while
    # refusing 5 for "5"; a time without a zone is refused (AwareDatetime).
    return EventIn.model_validate_json(body)


def ring_from_message(message: dict[str, Any]) -> EventIn:
    """The control connection's {"type": "event", ...}, already parsed and bounded."""
    body = {k: v for k, v in message.items() if k != "type"}
    return parse_ring(json.dumps(body).encode())


def problems(exc: MalformedError | ValidationError) -> str:
    """One line saying what was wrong, for a refusal's message."""
    if isinstance(exc, MalformedError):
        return f"not a valid JSON object: {exc}"
    first = exc.errors(include_url=False, include_input=False, include_context=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in first[:5]]
    return "; ".join(parts)[:300]
