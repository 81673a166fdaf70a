"""Keyed signatures of short strings (HMAC-SHA256 under the instance's secret key): CSRF
tokens and trusted-device cookies.

In the kernel, apart from accounts/, because web/csrf.py needs it and the kernel imports
no domain.
"""

from __future__ import annotations

import hashlib
import hmac


def sign(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_ok(key: str, message: str, signature: str) -> bool:
    return hmac.compare_digest(sign(key, message), signature)
