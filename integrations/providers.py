"""Providers as declared specs: each provider package (`integrations/<name>/provider.py`)
declares one ProviderSpec, and every place that needs to know a provider reads it from here: the
connect service (required fields, external id, checks), the console's form and help, the admin's
choices, the probe and the webhook URL. Adding a provider is adding its package.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Config = dict[str, Any]


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    settings: tuple[str, ...]  # the non-secret settings a person may set
    secrets: tuple[str, ...]  # write-only: stored as Vault ciphertext, never shown back
    required_settings: tuple[str, ...] = ()
    required_secrets: tuple[str, ...] = ()
    setup: str = ""  # what to do on the provider's side (the console's help)
    order: int = 100  # place in the console's list
    # Settings that are URLs SmarterOS calls with the tenant's credentials (the egress gate).
    url_settings: tuple[str, ...] = ()
    # The setting naming the connection in the provider's deliveries, and its form.
    external_id: str = ""
    external_id_pattern: re.Pattern[str] | None = None
    external_id_lower: bool = False
    # The provider's own rules for its settings: the settings to store, or ValueError naming one.
    check_config: Callable[[Config], Config] | None = None
    # The provider's own rules for its secrets: ValueError naming one.
    check_credentials: Callable[[dict[str, str]], None] | None = None
    # One harmless read with the stored settings and credentials: a line for the operator.
    probe: Callable[[Config, Any], str] | None = None
    # The view deliveries are posted to (`/hooks/<name>/<tenant>/`), or its dotted path (imported
    # on the first delivery); None: it sends none.
    webhook: Callable[..., Any] | str | None = None

    def external_id_of(self, config: Config) -> str:
        """The connection's provider-side id, normalised as deliveries carry it; ValueError
        naming the setting if it cannot be one."""
        if not self.external_id:
            return ""  # nothing inbound to match
        value = str(config.get(self.external_id, "")).strip()
        if self.external_id_lower:
            value = value.lower()
        if self.external_id_pattern is not None and not self.external_id_pattern.fullmatch(value):
            label = self.external_id.replace("_", " ")
            raise ValueError(f"{self.external_id} {value!r} is not a valid {self.name} {label}")
        return value


_specs: dict[str, ProviderSpec] = {}
_lock = threading.RLock()  # a provider module registers while discovery holds it
_discovered = False


def provider_register(spec: ProviderSpec) -> ProviderSpec:
    """Declare a provider (its package's provider.py calls this on import)."""
    with _lock:
        _specs[spec.name] = spec
    return spec


def provider_unregister(name: str) -> None:
    with _lock:
        _specs.pop(name, None)


def _discover() -> None:
    """Import every `integrations.<package>.provider` module once."""
    global _discovered
    if _discovered:
        return
    import integrations

    with _lock:
        if _discovered:
            return
        for package in pkgutil.iter_modules(integrations.__path__):
            if package.ispkg:
                try:
                    importlib.import_module(f"integrations.{package.name}.provider")
                except ModuleNotFoundError as exc:
                    if exc.name != f"integrations.{package.name}.provider":
                        raise
        _discovered = True


def providers() -> dict[str, ProviderSpec]:
    """Every declared provider, in the console's order."""
    _discover()
    return dict(sorted(_specs.items(), key=lambda item: (item[1].order, item[0])))


def provider_spec(name: str) -> ProviderSpec:
    """The named provider's spec; ValueError listing the known ones."""
    found = providers().get(name)
    if found is None:
        raise ValueError(f"provider must be one of {', '.join(providers())}")
    return found


def provider_choices() -> list[tuple[str, str]]:
    """The models' and forms' choices (a callable, so a new provider needs no migration)."""
    return [(name, name) for name in providers()]
