"""Masking of secrets before text leaves the process (logs, Sentry)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# API keys of SmarterOS, Shopify access tokens, Vault tokens, bearer headers, Meta tokens.
_SECRET_PATTERNS = [
    re.compile(r"\bsos_[a-z]+_[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bshp(?:at|ca|pa|ss)_[A-Fa-f0-9]{16,}"),
    re.compile(r"\b(?:hvs|s)\.[A-Za-z0-9]{20,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bEAA[A-Za-z0-9]{20,}"),
]
SENSITIVE_KEYS = re.compile(
    r"(?i)(pass(word)?|secret|token|api[_-]?key|authorization|credential|cookie|session|dsn)"
)
MASK = "[redacted]"


def scrub_text(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return text


def scrub_mapping(data: Any) -> Any:
    """Recursively mask values under sensitive keys and secret-looking strings."""
    if isinstance(data, Mapping):
        return {
            key: MASK
            if isinstance(key, str) and SENSITIVE_KEYS.search(key)
            else scrub_mapping(value)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [scrub_mapping(item) for item in data]
    if isinstance(data, str):
        return scrub_text(data)
    return data
