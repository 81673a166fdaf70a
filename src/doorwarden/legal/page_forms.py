"""How the legal-process forms (filing, proof, review, sharing) word a refusal: their
fields' labels, plain words for an empty or mistyped field, and what an empty scope
means. The form handling itself is web/forms.py's."""

from __future__ import annotations

from pydantic_core import ErrorDetails

from doorwarden.web.forms import Messages

LABELS = {
    "case_number": "Case number",
    "issuing_court": "Issuing court or authority",
    "judge": "Judge",
    "signed_on": "Signed on",
    "expires_at": "Expires (UTC)",
    "window_start": "Window start (UTC)",
    "window_end": "Window end (UTC)",
    "scope": "Scope",
    "justification": "Justification",
    "nondisclosure_until": "Non-disclosure order ends (UTC)",
    "description": "Description of the danger",
    "attest_imminent_danger": "Attestation",
    "public_text": "Text for residents",
    "area": "Area",
    "keep_devices": "Cameras to keep",
    "reason": "Reason",
    "note": "Note",
}


def _scope(field: str, err: ErrorDetails) -> str | None:
    if field == "scope" and err["type"] == "too_short":
        return "name at least one address, household or camera"
    return None


MESSAGES = Messages(LABELS, plain=True, own=_scope)
