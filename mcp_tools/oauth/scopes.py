"""OAuth scopes are the API-key scopes of tenants.scopes: registry permissions and `*`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from oauth2_provider.scopes import BaseScopes

from tenants.scopes import scope_choices


def oauth_scopes() -> dict[str, str]:
    """Every scope a person may grant a client (never platform ones), with its description."""
    return {
        value: label
        for _, choices in scope_choices(platform_allowed=False)
        for value, label in choices
    }


def read_scopes() -> list[str]:
    """The read-only permissions: what a consent offers pre-ticked, and all a viewer may grant."""
    return sorted(s for s in oauth_scopes() if s.endswith(".read"))


def scopes_for_role(scopes: Iterable[str], *, can_change: bool) -> list[str]:
    """The scopes a person of this role may not grant: a tenant admin (or platform admin) any
    tenant scope, a viewer only read ones."""
    if can_change:
        return []
    allowed = set(read_scopes())
    return [s for s in scopes if s not in allowed]


class RegistryScopes(BaseScopes):
    """The toolkit's view of the scopes (metadata, validation of a client's request)."""

    def get_all_scopes(self) -> dict[str, str]:
        return oauth_scopes()

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return list(oauth_scopes())

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return read_scopes()
