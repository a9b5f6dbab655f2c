"""Masking before anything leaves the server.

Three sources of masks, applied to every record the viewer sends (browse, live, detail, export):
- fields an event schema marks secret: `Field(json_schema_extra={"x-secret": True})` on the
  event's data model in `<app>/events.py`, or a pydantic `SecretStr` (JSON Schema
  `writeOnly`/`format: password`);
- values that look like credentials (API keys, bearer tokens, JWTs, provider tokens), and the
  values of keys named like one (`password`, `token`, `api_key`...), anywhere in key, headers
  and value;
- phone numbers, for tenants listed in TOPICS_MASK_PHONE_TENANTS (customer data).
Filters run on the masked record, so a filter cannot probe a secret one character at a time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings

MASK = "••••••"

SECRET_KEY_NAMES = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|apikey|authorization|credential|private[_-]?key|"
    r"signature|cookie|session[_-]?key)",
    re.IGNORECASE,
)
CREDENTIAL_VALUES = re.compile(
    r"(sos_live_[A-Za-z0-9_\-]{8,}"  # our API keys
    r"|\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/\-]{8,}=*"
    r"|\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"  # JWT
    r"|\bshp(?:at|ss|ca|pa)_[A-Fa-f0-9]{16,}"  # Shopify tokens
    r"|\bsk-[A-Za-z0-9_\-]{16,}"  # LLM provider keys
    r"|\bEAA[A-Za-z0-9]{20,}"  # Meta access tokens
    r"|\bAKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)"
)
PHONE = re.compile(r"\+?\b[1-9]\d{6,14}\b")


def mask_phone(match: re.Match[str]) -> str:
    number = match.group(0)
    return number[:3] + "•" * (len(number) - 5) + number[-2:]


@functools.cache
def secret_fields(event_type: str) -> frozenset[str]:
    """Names of the data fields the event type's schema marks secret (at any depth)."""
    from smarteros.events.schemas import UnknownEventType, schema_for

    try:
        schema = schema_for(event_type).model_json_schema(by_alias=True)
    except UnknownEventType:
        return frozenset()
    names: set[str] = set()
    _collect_secret(schema, schema.get("$defs", {}), names, depth=0)
    return frozenset(names)


def _collect_secret(node: Any, defs: dict[str, Any], names: set[str], depth: int) -> None:
    if not isinstance(node, dict) or depth > 8:
        return
    for name, prop in (node.get("properties") or {}).items():
        if _is_secret(prop, defs):
            names.add(name)
        _collect_secret(_resolve(prop, defs), defs, names, depth + 1)
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in node.get(key, []):
            _collect_secret(_resolve(sub, defs), defs, names, depth + 1)
    if isinstance(node.get("items"), dict):
        _collect_secret(_resolve(node["items"], defs), defs, names, depth + 1)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return defs.get(node["$ref"].rsplit("/", 1)[-1], {})
    return node


def _is_secret(prop: Any, defs: dict[str, Any]) -> bool:
    if not isinstance(prop, dict):
        return False
    if prop.get("x-secret") is True or prop.get("writeOnly") is True:
        return True
    if prop.get("format") == "password":
        return True
    return any(_is_secret(_resolve(sub, defs), defs) for sub in prop.get("anyOf", []))


def _secret_value(key: Any, value: Any, secret: frozenset[str]) -> bool:
    if value in (None, ""):
        return False
    if key in secret:
        return True
    # By name only for text: `tokens_in: 120` is a count, `token: "..."` a credential.
    return isinstance(value, str) and bool(SECRET_KEY_NAMES.search(str(key)))


class Masker:
    """Masks one tenant's (or the platform's) records; built once per topic and reused."""

    def __init__(self, *, tenant_slug: str | None) -> None:
        self.phones = bool(tenant_slug) and tenant_slug in settings.TOPICS_MASK_PHONE_TENANTS

    def text(self, value: str) -> str:
        value = CREDENTIAL_VALUES.sub(MASK, value)
        if self.phones:
            value = PHONE.sub(mask_phone, value)
        return value

    def json(self, value: Any, secret: Iterable[str] = (), depth: int = 0) -> Any:
        secret = frozenset(secret)
        if depth > 32:
            return MASK
        if isinstance(value, dict):
            return {
                k: (MASK if _secret_value(k, v, secret) else self.json(v, secret, depth + 1))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.json(v, secret, depth + 1) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            (name, MASK if SECRET_KEY_NAMES.search(name) else self.text(value))
            for name, value in headers
        ]

    def envelope_value(self, value: Any) -> Any:
        """A decoded message value; an envelope's `data` also gets its schema's secret fields."""
        if isinstance(value, dict) and isinstance(value.get("data"), dict):
            event_type = value.get("type")
            secret = secret_fields(event_type) if isinstance(event_type, str) else frozenset()
            masked = self.json({k: v for k, v in value.items() if k != "data"})
            masked["data"] = self.json(value["data"], secret)
            return masked
        return self.json(value)
