"""The topics page's list: searched and paginated on the server, from the platform's own records
(the tenants table x the topic catalog), never from a listing of every topic on the broker.

Only the page's topics are then described on the broker (telemetry.topics.overview), so a page
costs the same with 3 tenants or 3,000.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smarteros.events.catalog import platform_topics, tenant_every_topic
from smarteros.parsing import InvalidValue, parse_page, parse_text
from telemetry.topics.access import PLATFORM, TopicGrant, topic_grants

KINDS = ("platform", "tenant", "dead-letter")
PER_PAGE = 100
MAX_SEARCH = 100  # characters of a search term


@dataclass(frozen=True)
class TopicQuery:
    tenant: str = ""  # part of a tenant's slug ("platform" for the platform's topics)
    name: str = ""  # part of a topic's name
    kind: str = ""  # one of KINDS, or "" for every kind
    page: int = 1

    def params(self, **changes: Any) -> dict[str, Any]:
        """The query as URL parameters (empty ones left out), with `changes` applied."""
        values = {"tenant": self.tenant, "name": self.name, "kind": self.kind, "page": self.page}
        values.update(changes)
        return {key: value for key, value in values.items() if value and value != "1"}


def topic_query_parse(params: Mapping[str, str]) -> TopicQuery:
    """The page's search from its URL parameters; InvalidValue naming a bad one (a 400)."""
    texts = {
        field: parse_text(params.get(field), field=field, max_length=MAX_SEARCH).strip().lower()
        for field in ("tenant", "name")
    }
    kind = params.get("kind") or ""
    if kind not in ("", *KINDS):
        raise InvalidValue("kind", f"kind must be one of {', '.join(KINDS)}")
    page = parse_page(params.get("page") or None)
    return TopicQuery(tenant=texts["tenant"], name=texts["name"], kind=kind, page=page)


@dataclass(frozen=True)
class TopicPage:
    grants: list[TopicGrant]
    total: int
    query: TopicQuery
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _kind_of(topic: str, tenant_slug: str | None) -> str:
    if topic.endswith(".dlq"):
        return "dead-letter"
    return "tenant" if tenant_slug else "platform"


def _wanted(query: TopicQuery, topic: str, tenant_slug: str | None) -> bool:
    if query.name and query.name not in topic:
        return False
    return not query.kind or query.kind == _kind_of(topic, tenant_slug)


def _all_topics(query: TopicQuery) -> list[TopicGrant]:
    """A platform admin's view: the platform's topics and every current tenant's, by name."""
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    grants = []
    if not query.tenant or query.tenant in "platform":
        grants = [
            TopicGrant(spec.name, None, None, PLATFORM)
            for spec in sorted(platform_topics(), key=lambda spec: spec.name)
            if _wanted(query, spec.name, None)
        ]
    suffixes = sorted(spec.name.partition(".")[2] for spec in tenant_every_topic("t"))
    with dangerously_unscoped():
        tenants = Tenant.objects.filter(deprovisioned_at__isnull=True)
        if query.tenant:
            tenants = tenants.filter(slug__contains=query.tenant)
        rows = list(tenants.order_by("slug").values_list("pk", "slug"))
    for tenant_id, slug in rows:
        for suffix in suffixes:
            name = f"{slug}.{suffix}"
            if _wanted(query, name, slug):
                grants.append(TopicGrant(name, tenant_id, slug, PLATFORM))
    return grants


def topics_list(user: Any, query: TopicQuery, *, per_page: int = PER_PAGE) -> TopicPage:
    """The page of topics `user` may see that match `query`, and how many match in all."""
    if getattr(user, "is_superuser", False):
        matching = _all_topics(query)
    else:
        matching = [
            grant
            for grant in topic_grants(user)
            if (not query.tenant or query.tenant in (grant.tenant_slug or ""))
            and _wanted(query, grant.topic, grant.tenant_slug)
        ]
    start = (query.page - 1) * per_page
    return TopicPage(matching[start : start + per_page], len(matching), query, per_page)
