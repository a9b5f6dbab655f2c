"""The topics page's message counts: what was published on each topic in the last 24 hours, from
the platform's own records (topic_messages, written where messages are published and by the
topic counter), the same figures the overview and the telemetry charts show.

Not the broker's watermarks: they say what a topic holds, not what flowed, and the local broker
lists a partition's end short after a batch (telemetry.topics.records reads to the real end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from telemetry.queries import TenantQuery
from telemetry.topics.access import TopicGrant

WINDOW_SECONDS = 24 * 3600


@dataclass
class Published:
    counts: dict[str, int] = field(default_factory=dict)  # topic -> messages in the window
    newest: datetime | None = None  # the newest minute counted on the page's topics

    def of(self, topic: str) -> int:
        return self.counts.get(topic, 0)


def _tenants_counted(grants: list[TopicGrant]) -> list[str]:
    """Whose counts the page adds up: the page's tenants, and for the platform's own topics
    (a platform admin's alone) every tenant's, since each message there is counted under the
    tenant it is about."""
    slugs = {grant.tenant_slug for grant in grants if grant.tenant_slug}
    if any(grant.tenant_slug is None for grant in grants):
        from tenants.models import Tenant
        from tenants.scope import dangerously_unscoped

        with dangerously_unscoped():
            slugs.update(Tenant.objects.values_list("slug", flat=True))
    return sorted(slugs)


def topics_published(grants: list[TopicGrant]) -> Published:
    """One query for the page's topics; TelemetryUnavailable if the store cannot answer."""
    tenants = _tenants_counted(grants)
    if not grants or not tenants:
        return Published()
    query = TenantQuery(tenants, WINDOW_SECONDS, table="topic_messages", time_column="minute")
    query.where("topic IN %(topics)s", topics=tuple(grant.topic for grant in grants))
    rows = query.run("topic, sum(messages), max(minute)", group_by="topic")
    return Published(
        counts={topic: total for topic, total, _ in rows},  # UInt64 sums: ints already
        newest=max((newest for _, _, newest in rows), default=None),
    )
