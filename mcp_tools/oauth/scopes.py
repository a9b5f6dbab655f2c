"""OAuth scopes are the API-key scopes of tenants.scopes: registry permissions and `*`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from oauth2_provider.scopes import BaseScopes

from tenants.roles import Capability, Rank, rank_may, rank_of
from tenants.scopes import ADMIN_PERMISSIONS, scope_choices


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


def _rank(role: str | Rank) -> Rank | None:
    return role if isinstance(role, Rank) else rank_of(role)


def scopes_for_role(scopes: Iterable[str], *, role: str | Rank) -> list[str]:
    """The scopes a person of `role` (a membership role, `platform`, or a rank) may not grant: a
    tenant admin or platform admin any tenant scope; an operator any but the admin permissions;
    a viewer (or a role tenants.roles does not know) only read ones."""
    if rank_may(_rank(role), Capability.GRANT_ADMIN_SCOPES):
        return []
    if rank_may(_rank(role), Capability.GRANT_WRITE_SCOPES):
        allowed = {s for s in oauth_scopes() if s not in ADMIN_PERMISSIONS}
    else:
        allowed = set(read_scopes())
    return [s for s in scopes if s not in allowed]


def scopes_note(role: str | Rank) -> str:
    """What a person of `role` may grant, when it is not everything: shown beside the tenant."""
    if rank_may(_rank(role), Capability.GRANT_ADMIN_SCOPES):
        return ""
    if rank_may(_rank(role), Capability.GRANT_WRITE_SCOPES):
        return "no admin scopes"
    return "read scopes only"


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
