"""Which topics an operator may see, and what they may do with them.

Tenant members see their tenant's catalog topics (`{slug}.{topic}` and their `.dlq` twins);
platform admins (superusers) see every topic on the broker. Names are compared exactly: the
client never sends a pattern, and a prefix match would let a tenant called `mcp` read the
platform's `mcp.agent.actions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from smarteros.events.catalog import tenant_every_topic
from tenants.roles import PLATFORM, Capability, role_may

__all__ = ["PLATFORM", "TopicDenied", "TopicGrant", "topic_grant", "topic_grants"]
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}", re.ASCII)


class TopicDenied(Exception):
    """The operator may not see this topic (or it does not exist: the two are not told apart)."""


@dataclass(frozen=True)
class TopicGrant:
    topic: str
    tenant_id: int | None  # None: a platform topic
    tenant_slug: str | None
    role: str  # a membership role ("viewer", "operator", "admin") or "platform"
    # The tenant's choice on contact data in what the viewer shows (platform topics: masked).
    mask_personal_data: bool = True

    @property
    def is_dead_letter(self) -> bool:
        return self.topic.endswith(".dlq")

    @property
    def can_replay(self) -> bool:
        return self.is_dead_letter and role_may(self.role, Capability.REPLAY)

    @property
    def can_export(self) -> bool:
        return role_may(self.role, Capability.EXPORT)


def _memberships(user: Any) -> list[tuple[int, str, str, bool]]:
    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    # Which tenants a person belongs to is a platform-level read (memberships are tenant rows).
    with dangerously_unscoped():
        return list(
            Membership.objects.filter(user_id=user.pk).values_list(
                "tenant_id", "tenant__slug", "role", "tenant__mask_personal_data"
            )
        )


def _tenant_slugs(only: str | None = None) -> dict[str, tuple[int, bool]]:
    """Tenants by slug: their id and whether they mask contact data."""
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        rows = Tenant.objects.all() if only is None else Tenant.objects.filter(slug=only)
        return {
            slug: (pk, mask)
            for pk, slug, mask in rows.values_list("pk", "slug", "mask_personal_data")
        }


def _platform_grant(topic: str, slugs: dict[str, tuple[int, bool]]) -> TopicGrant:
    """A platform admin's grant: of the tenant whose catalog topic this is, if any."""
    slug = topic.partition(".")[0]
    if slug in slugs and topic in {spec.name for spec in tenant_every_topic(slug)}:
        tenant_id, mask = slugs[slug]
        return TopicGrant(topic, tenant_id, slug, PLATFORM, mask_personal_data=mask)
    return TopicGrant(topic, None, None, PLATFORM)


def topic_grants(user: Any, *, broker_topics: list[str] | None = None) -> list[TopicGrant]:
    """Every topic `user` may see. Platform admins get `broker_topics` (all on the broker)."""
    if not getattr(user, "is_authenticated", False):
        return []
    if user.is_superuser:
        slugs = _tenant_slugs()
        return [_platform_grant(name, slugs) for name in sorted(broker_topics or [])]
    grants = []
    for tenant_id, slug, role, mask in sorted(_memberships(user), key=lambda m: m[1]):
        for spec in tenant_every_topic(slug):
            grants.append(TopicGrant(spec.name, tenant_id, slug, role, mask_personal_data=mask))
    return grants


def topic_grant(user: Any, topic: Any) -> TopicGrant:
    """The grant for one exact topic name, or TopicDenied. Platform admins may name any topic
    (whether it exists is the broker's answer)."""
    # Kafka's own rule for a name; anything else (a NUL the database would refuse) names nothing.
    if not isinstance(topic, str) or not _TOPIC_NAME.fullmatch(topic):
        raise TopicDenied("topic: a topic name is required")
    if not getattr(user, "is_authenticated", False):
        raise TopicDenied("not signed in")
    if user.is_superuser:
        return _platform_grant(topic, _tenant_slugs(only=topic.partition(".")[0]))
    for grant in topic_grants(user):
        if grant.topic == topic:
            return grant
    raise TopicDenied(f"topic: no topic {topic!r} among the ones you may see")
