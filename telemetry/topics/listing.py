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


def _platform_grants(query: TopicQuery) -> list[TopicGrant]:
    if query.tenant and query.tenant not in "platform":
        return []
    return [
        TopicGrant(spec.name, None, None, PLATFORM)
        for spec in sorted(platform_topics(), key=lambda spec: spec.name)
        if _wanted(query, spec.name, None)
    ]


def _tenants(query: TopicQuery) -> Any:
    """Current tenants matching the search, by slug (a queryset; the caller scopes it)."""
    from tenants.models import Tenant

    tenants = Tenant.objects.filter(deprovisioned_at__isnull=True)
    if query.tenant:
        tenants = tenants.filter(slug__contains=query.tenant)
    return tenants.order_by("slug")


def _tenant_grants(rows: list[tuple[int, str]], query: TopicQuery) -> list[TopicGrant]:
    suffixes = sorted(spec.name.partition(".")[2] for spec in tenant_every_topic("t"))
    return [
        TopicGrant(f"{slug}.{suffix}", tenant_id, slug, PLATFORM)
        for tenant_id, slug in rows
        for suffix in suffixes
        if _wanted(query, f"{slug}.{suffix}", slug)
    ]


def _all_topics_page(query: TopicQuery, per_page: int) -> TopicPage:
    """A platform admin's view: the platform's topics, then every current tenant's, by name.
    Without a name search every tenant has the same topics, so the page is counted out and
    only its tenants are read; a name search reads every matching tenant's slug."""
    from tenants.scope import dangerously_unscoped

    platform = _platform_grants(query)
    start = (query.page - 1) * per_page
    with dangerously_unscoped():
        tenants = _tenants(query)
        if query.name:
            grants = platform + _tenant_grants(list(tenants.values_list("pk", "slug")), query)
            return TopicPage(grants[start : start + per_page], len(grants), query, per_page)
        each = len(_tenant_grants([(0, "t")], query))  # topics a tenant has on this search
        total = len(platform) + tenants.count() * each
        first = max(0, start - len(platform))  # the page's first tenant topic, by index
        end = start + per_page - len(platform)
        rows = []
        if each and end > 0:
            wanted = tenants[first // each : -(-end // each)]
            rows = list(wanted.values_list("pk", "slug"))
    tenant_grants = _tenant_grants(rows, query)[first % each if each else 0 :]
    grants = (platform[start:] + tenant_grants)[:per_page]
    return TopicPage(grants, total, query, per_page)


def topics_list(user: Any, query: TopicQuery, *, per_page: int = PER_PAGE) -> TopicPage:
    """The page of topics `user` may see that match `query`, and how many match in all."""
    if getattr(user, "is_superuser", False):
        return _all_topics_page(query, per_page)
    matching = [
        grant
        for grant in topic_grants(user)
        if (not query.tenant or query.tenant in (grant.tenant_slug or ""))
        and _wanted(query, grant.topic, grant.tenant_slug)
    ]
    start = (query.page - 1) * per_page
    return TopicPage(matching[start : start + per_page], len(matching), query, per_page)
