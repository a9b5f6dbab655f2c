"""API-key scopes, checked against the operation registry.

A scope is an operation name (`tenant_get_tenant`), a permission (`tenant.read`) or `*`. `*` means
the tenant's ordinary permissions only: the tenant-wide admin permissions (`agent.admin`,
`tenant.admin`) are granted by name, and `platform.admin`, which acts across tenants and covers
every operation, is granted only by a platform admin.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from mcp_tools.registry import Operation

ALL_ORDINARY = "*"
PLATFORM_SCOPE = "platform.admin"
# Granted by name only, never by "*".
ADMIN_PERMISSIONS = frozenset({"agent.admin", "tenant.admin"})
# Held by every key without being granted: searching tools reveals only what tools/list shows.
EVERY_KEY = "tools.search"
# What a tenant's own first key carries: everything the tenant may do to itself.
TENANT_OWNER_SCOPES = [ALL_ORDINARY, "agent.admin", "tenant.admin"]


def _operations() -> list[Operation]:
    from mcp_tools.registry import get_registry

    return get_registry().all()


def scope_allows(scopes: Iterable[str], op: Operation) -> bool:
    """Whether a key with `scopes` may call `op`."""
    granted = set(scopes)
    if PLATFORM_SCOPE in granted:
        return True
    if op.platform or op.permission == PLATFORM_SCOPE:
        return False
    if op.name in granted or op.permission in (*granted, EVERY_KEY):
        return True
    return ALL_ORDINARY in granted and op.permission not in ADMIN_PERMISSIONS


def scope_missing_message(op: Operation, tenant_slug: str) -> str:
    """Why a key may not call `op`, naming the scope to grant and where to grant it."""
    if op.platform or op.permission == PLATFORM_SCOPE:
        return f"{op.name} needs the scope {PLATFORM_SCOPE}, which only a platform admin grants"
    return (
        f"this key may not call {op.name}: it needs the scope {op.permission} (or {op.name}); "
        f"an admin of {tenant_slug} can issue such a key on the console's API keys page"
    )


def scope_is_platform(scope: str) -> bool:
    """Whether granting `scope` reaches beyond one tenant (platform admins grant these only)."""
    if scope == PLATFORM_SCOPE:
        return True
    return any(op.name == scope and op.platform for op in _operations())


def scope_choices(*, platform_allowed: bool = True) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every grantable permission once, grouped by service and described by the tools it
    covers; the platform group (and platform tools) only when the grantor is a platform admin.
    Operation names stay valid scopes (scopes_validate) but are not offered: a person picks
    permissions, not tools."""
    covers: dict[str, list[str]] = {}
    service_of: dict[str, str] = {}
    for op in _operations():
        if op.permission in (PLATFORM_SCOPE, EVERY_KEY) or op.platform:
            continue
        covers.setdefault(op.permission, []).append(op.name)
        service_of.setdefault(op.permission, op.service)
    groups: dict[str, list[tuple[str, str]]] = {}
    for permission, names in covers.items():
        note = " (granted by name only; not part of *)" if permission in ADMIN_PERMISSIONS else ""
        groups.setdefault(service_of[permission], []).append(
            (permission, f"{permission}: {', '.join(sorted(names))}{note}")
        )
    chosen = [
        ("all", [(ALL_ORDINARY, "* (every ordinary permission; no admin or platform scope)")])
    ]
    if platform_allowed:
        chosen.append(
            ("platform", [(PLATFORM_SCOPE, "platform.admin (every tenant; platform admins only)")])
        )
    return [*chosen, *sorted((g, sorted(c)) for g, c in groups.items())]


def scope_presets() -> dict[str, list[str]]:
    """Named starting points for a new key, least privilege first."""
    permissions = {
        op.permission: op.service
        for op in _operations()
        if not op.platform and op.permission != EVERY_KEY
    }
    return {
        "read only": sorted(p for p in permissions if p.endswith(".read")),
        "integrations": sorted(
            p
            for p, service in permissions.items()
            if service not in ("tenant", "agent") and p not in ADMIN_PERMISSIONS
        ),
    }


def scopes_validate(scopes: Iterable[str], *, platform_allowed: bool) -> list[str]:
    """The scopes, deduplicated in order, if each names a registry permission or operation (or
    is `*`); a ValidationError naming the unknown ones, or the platform ones when the grantor
    is not a platform admin."""
    wanted = list(dict.fromkeys(s.strip() for s in scopes if s and s.strip()))
    if not wanted:
        raise ValidationError({"scopes": "give at least one scope"})
    known = {ALL_ORDINARY, PLATFORM_SCOPE}
    for op in _operations():
        known.update((op.name, op.permission))
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValidationError(
            {
                "scopes": f"unknown scope(s): {', '.join(unknown)} (use a permission or an operation name)"
            }
        )
    platform = [s for s in wanted if scope_is_platform(s)]
    if platform and not platform_allowed:
        raise ValidationError(
            {"scopes": f"only platform admins may grant platform scope(s): {', '.join(platform)}"}
        )
    return wanted
