"""Declared outside effects: each provider declares its effects next to its client, in
`<app>/effects.py` (or `<app>/<provider>/effects.py` imported from there), with `@effect(...)`;
the machinery finds them by kind.

    @effect("whatsapp.send_message", payload=SendMessagePayload, on_done=store_sent)
    def send_message(call: EffectCall) -> dict[str, Any]:
        ...  # call the provider with call.idempotency_key; return what to record

`perform` runs outside any transaction, with the tenant's row-level security set per statement;
`on_done([(call, result), ...])` runs in the transaction that marks the effects done (store rows,
emit events), so the record and its consequences commit together; it gets the effects of one
batch at once, so it can write them with one statement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from tenants.models import Tenant


@dataclass(frozen=True)
class EffectCall:
    """What an effect's functions receive."""

    tenant: Tenant
    payload: Any  # an instance of the definition's payload model
    key: str
    idempotency_key: str
    effect_id: int
    trace_id: str
    attempt: int
    # Shared by the effects performed together (one task's batch): a provider's client, with
    # its decrypted credentials, is built once for them and dropped after.
    shared: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str, build: Callable[[], Any]) -> Any:
        """The batch's `name` client, built by `build()` the first time."""
        if name not in self.shared:
            self.shared[name] = build()
        return self.shared[name]


Perform = Callable[[EffectCall], dict[str, Any]]
# Called once per batch with (call, result) of each effect of the kind just marked done.
OnDone = Callable[[list[tuple[EffectCall, dict[str, Any]]]], None]


@dataclass(frozen=True)
class EffectDefinition:
    kind: str
    payload_model: type[BaseModel]
    perform: Perform
    on_done: OnDone | None = None
    # After OutcomeUnknown (the provider got the request, its answer was lost): try again only
    # if the provider cannot act twice for one effect (an idempotency key, a lookup first).
    retry_unknown: bool = True


_definitions: dict[str, EffectDefinition] = {}
_discovered = False
_lock = threading.Lock()


def effect(
    kind: str,
    *,
    payload: type[BaseModel],
    on_done: OnDone | None = None,
    retry_unknown: bool = True,
) -> Callable[[Perform], Perform]:
    """Declare the outside effect `kind`, whose payload is validated by `payload`;
    `retry_unknown=False` for a provider that could act twice (see EffectDefinition)."""

    def decorator(perform: Perform) -> Perform:
        known = _definitions.get(kind)
        if known is not None and known.perform is not perform:
            raise ValueError(f"effect {kind!r} is declared twice")
        _definitions[kind] = EffectDefinition(kind, payload, perform, on_done, retry_unknown)
        return perform

    return decorator


def _discover() -> None:
    global _discovered
    if not _discovered:
        with _lock:
            if not _discovered:
                from django.utils.module_loading import autodiscover_modules

                autodiscover_modules("effects")
                _discovered = True


def effect_definition(kind: str) -> EffectDefinition:
    """The declaration of `kind`; KeyError names it if nothing declares it."""
    _discover()
    try:
        return _definitions[kind]
    except KeyError:
        raise KeyError(f"no effect of kind {kind!r} is declared") from None


def effect_kinds() -> list[str]:
    """Every declared kind (for the admin's filter and the docs)."""
    _discover()
    return sorted(_definitions)
