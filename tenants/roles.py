"""What each role may do in a tenant: one ordered table that every surface reads.

Roles are ranked: a viewer reads; an operator also works the tenant day to day (replays dead
letters, exports topics, manages integrations and triggers, grants an MCP client ordinary write
scopes); a tenant admin also manages people, API keys, the tenant's lifecycle requests and its
rows in the Django admin; a platform admin (a superuser, no membership) does everything,
including what the platform sells. Each capability names the least role that holds it; a
capability left out of the table, or a role this module does not know, grants nothing.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

# The membership roles (Membership.Role's values); this module imports no model, so the topic
# viewer and the OAuth grants can read it at import time.
VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
PLATFORM = "platform"  # a superuser's role in any tenant: not a membership


class Rank(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3
    PLATFORM = 4


class Capability(StrEnum):
    READ = "read"  # the tenant's pages, topics, telemetry, people and keys lists, audit
    REPLAY = "replay"  # replay dead letters
    EXPORT = "export"  # export a topic's records
    INTEGRATIONS = "integrations"  # connect, edit, test, disconnect integrations
    GRANT_WRITE_SCOPES = "grant_write_scopes"  # OAuth consent: ordinary (non-admin) scopes
    GRANT_ADMIN_SCOPES = "grant_admin_scopes"  # OAuth consent: tenant.admin, agent.admin
    PEOPLE = "people"  # invite, change roles, remove
    KEYS = "keys"  # create and revoke API keys
    LIFECYCLE = "lifecycle"  # the lifecycle transitions a tenant admin may make
    DJANGO_ADMIN = "django_admin"  # the tenant's rows in the Django admin
    PLATFORM = "platform"  # provisioning, plan and limits, any tenant


# The least role holding each capability.
LEAST_RANK: dict[Capability, Rank] = {
    Capability.READ: Rank.VIEWER,
    Capability.REPLAY: Rank.OPERATOR,
    Capability.EXPORT: Rank.OPERATOR,
    Capability.INTEGRATIONS: Rank.OPERATOR,
    Capability.GRANT_WRITE_SCOPES: Rank.OPERATOR,
    Capability.GRANT_ADMIN_SCOPES: Rank.ADMIN,
    Capability.PEOPLE: Rank.ADMIN,
    Capability.KEYS: Rank.ADMIN,
    Capability.LIFECYCLE: Rank.ADMIN,
    Capability.DJANGO_ADMIN: Rank.ADMIN,
    Capability.PLATFORM: Rank.PLATFORM,
}

RANK_OF_ROLE: dict[str, Rank] = {
    VIEWER: Rank.VIEWER,
    OPERATOR: Rank.OPERATOR,
    ADMIN: Rank.ADMIN,
    PLATFORM: Rank.PLATFORM,
}

ROLE_LABELS: dict[Rank, str] = {
    Rank.VIEWER: "viewer (read-only)",
    Rank.OPERATOR: "operator",
    Rank.ADMIN: "tenant admin",
    Rank.PLATFORM: "platform admin",
}


def rank_of(role: str) -> Rank | None:
    """The rank of a membership role (or `platform`); None for a name this table does not know."""
    return RANK_OF_ROLE.get(role)


def rank_may(rank: Rank | None, capability: Capability) -> bool:
    """Whether `rank` holds `capability`. An unknown rank or capability holds nothing."""
    least = LEAST_RANK.get(capability)
    return rank is not None and least is not None and rank >= least


def role_may(role: str, capability: Capability) -> bool:
    """Whether a membership role (or `platform`) holds `capability`."""
    return rank_may(rank_of(role), capability)


def roles_with(capability: Capability) -> tuple[str, ...]:
    """The membership roles holding `capability` (for queries over memberships)."""
    return tuple(
        role
        for role, rank in RANK_OF_ROLE.items()
        if role != PLATFORM and rank_may(rank, capability)
    )


def least_role_label(capability: Capability) -> str:
    """Who may do it, for refusals: "an operator", "a tenant admin", "a platform admin"."""
    least = LEAST_RANK.get(capability, Rank.PLATFORM)
    return {
        Rank.VIEWER: "a viewer",
        Rank.OPERATOR: "an operator or a tenant admin",
        Rank.ADMIN: "a tenant admin",
        Rank.PLATFORM: "a platform admin",
    }[least]
