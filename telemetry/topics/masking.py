"""Masking before anything leaves the server: every record the viewer sends (browse, live,
detail, export) is built by `records.message_record`, which masks it with a `Masker` made by
`Masker.for_grant` from the operator's grant. The detectors are `smarteros.scrub`'s (the same as
logs and Sentry); this module adds what event schemas declare:
- secret fields: `Field(json_schema_extra=SECRET)` on the event's data model in `<app>/events.py`,
  or a pydantic `SecretStr` (JSON Schema `writeOnly`/`format: password`): masked whatever their
  type;
- personal fields: `Field(json_schema_extra=PERSONAL)` (a phone number, an e-mail address):
  masked unless the tenant turned contact-data masking off (`Tenant.mask_personal_data`).
Credentials, card numbers and national ids are masked for every tenant. Filters run on the
masked record, so a filter cannot probe a secret one character at a time.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from smarteros.scrub import MASK, key_is_secret, scrub_text, scrub_value

if TYPE_CHECKING:
    from telemetry.topics.access import TopicGrant

__all__ = ["MASK", "Masker", "personal_fields", "secret_fields"]


@functools.cache
def _marked_fields(event_type: str) -> tuple[frozenset[str], frozenset[str]]:
    from smarteros.events.schemas import UnknownEventType, schema_for

    try:
        schema = schema_for(event_type).model_json_schema(by_alias=True)
    except UnknownEventType:
        return frozenset(), frozenset()
    secret: set[str] = set()
    personal: set[str] = set()
    _collect(schema, schema.get("$defs", {}), secret, personal, depth=0)
    return frozenset(secret), frozenset(personal)


def secret_fields(event_type: str) -> frozenset[str]:
    """Names of the data fields the event type's schema marks secret (at any depth)."""
    return _marked_fields(event_type)[0]


def personal_fields(event_type: str) -> frozenset[str]:
    """Names of the data fields the event type's schema marks personal (at any depth)."""
    return _marked_fields(event_type)[1]


def _collect(
    node: Any, defs: dict[str, Any], secret: set[str], personal: set[str], depth: int
) -> None:
    if not isinstance(node, dict) or depth > 8:
        return
    for name, prop in (node.get("properties") or {}).items():
        if _is_marked(prop, defs, _secret_mark):
            secret.add(name)
        elif _is_marked(prop, defs, _personal_mark):
            personal.add(name)
        _collect(_resolve(prop, defs), defs, secret, personal, depth + 1)
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in node.get(key, []):
            _collect(_resolve(sub, defs), defs, secret, personal, depth + 1)
    if isinstance(node.get("items"), dict):
        _collect(_resolve(node["items"], defs), defs, secret, personal, depth + 1)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return defs.get(node["$ref"].rsplit("/", 1)[-1], {})
    return node


def _secret_mark(prop: dict[str, Any]) -> bool:
    return (
        prop.get("x-secret") is True
        or prop.get("writeOnly") is True
        or prop.get("format") == "password"
    )


def _personal_mark(prop: dict[str, Any]) -> bool:
    return prop.get("x-personal") is True


def _is_marked(prop: Any, defs: dict[str, Any], mark: Any) -> bool:
    if not isinstance(prop, dict):
        return False
    if mark(prop):
        return True
    return any(_is_marked(_resolve(sub, defs), defs, mark) for sub in prop.get("anyOf", []))


class Masker:
    """Masks one tenant's (or the platform's) records; built once per topic and reused.
    `personal`: whether contact data (e-mail, phone) is masked too."""

    def __init__(self, *, tenant_slug: str | None, personal: bool = True) -> None:
        self.tenant_slug = tenant_slug
        self.personal = personal

    @classmethod
    def for_grant(cls, grant: TopicGrant) -> Masker:
        """The masker for what `grant` lets an operator see: the topic's tenant's choice on
        contact data (platform topics: masked)."""
        return cls(tenant_slug=grant.tenant_slug, personal=grant.mask_personal_data)

    def text(self, value: str) -> str:
        return scrub_text(value, contact=self.personal)

    def json(
        self,
        value: Any,
        secret: frozenset[str] = frozenset(),
        personal: frozenset[str] = frozenset(),
    ) -> Any:
        return scrub_value(value, contact=self.personal, secret_keys=secret, personal_keys=personal)

    def headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            (self.text(name), MASK if key_is_secret(name) else self.text(value))
            for name, value in headers
        ]

    def envelope_value(self, value: Any) -> Any:
        """A decoded message value; an envelope's `data` also gets its schema's declarations."""
        if isinstance(value, dict) and isinstance(value.get("data"), dict):
            event_type = value.get("type")
            secret, personal = (
                _marked_fields(event_type)
                if isinstance(event_type, str)
                else (frozenset(), frozenset())
            )
            masked = self.json({k: v for k, v in value.items() if k != "data"})
            masked["data"] = self.json(value["data"], secret, personal)
            return masked
        return self.json(value)
