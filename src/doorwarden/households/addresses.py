"""Addresses as legal process names them: an agency writes "12 Elm St." where the
household wrote "12 elm st", so both are compared by one normalised key. Exact match on
the key, never a fuzzy one: a warrant names a place, and a near miss is another home."""

from __future__ import annotations

import re
import unicodedata

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def address_key(address: str | None) -> str | None:
    """Case, accents' composed forms, punctuation and spacing folded; None when empty."""
    if not address:
        return None
    text = unicodedata.normalize("NFKC", address).casefold()
    text = _SPACE.sub(" ", _PUNCTUATION.sub(" ", text)).strip()
    return text[:300] or None
