"""The topic catalog as code: every topic SmarterOS uses, with partitions and retention.

Platform topics are created once; tenant topics are created per tenant as `{slug}.{name}` at
provisioning. Each topic has a dead-letter twin `{name}.dlq` for what its consumers cannot handle:
the platform's are created with it, a tenant's on its first dead letter (most tenants never have
one, and the local broker's topic creation slows with every topic it holds: see docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000
# The largest message a topic accepts (its max.message.bytes), as Redpanda's and Kafka's default.
MAX_MESSAGE_BYTES = 1024 * 1024
# A dead letter is its message plus headers naming the reason and origin.
DEAD_LETTER_HEADROOM = 64 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    partitions: int = 3
    # For a compacted topic: None keeps every key's latest value forever ("compact"); a value
    # also deletes segments older than it ("compact,delete").
    retention_ms: int | None = 7 * DAY_MS
    compacted: bool = False
    per_tenant: bool = False
    max_message_bytes: int = MAX_MESSAGE_BYTES
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        if self.compacted:
            policy = "compact,delete" if self.retention_ms else "compact"
        else:
            policy = "delete"
        config = {
            "cleanup.policy": policy,
            "retention.ms": str(self.retention_ms or -1),
            "max.message.bytes": str(self.max_message_bytes),
        }
        config.update(self.extra_config)
        return config

    def dead_letter(self) -> TopicSpec:
        return TopicSpec(
            name=f"{self.name}.dlq",
            description=f"Dead letters of {self.name}",
            partitions=1,
            retention_ms=30 * DAY_MS,
            per_tenant=self.per_tenant,
            max_message_bytes=self.max_message_bytes + DEAD_LETTER_HEADROOM,
        )


# Retention and cleanup as the platform's original topic table sets them; a deployment changes
# a topic's retention with KAFKA_TOPIC_RETENTION_DAYS (see catalog()).
CATALOG: tuple[TopicSpec, ...] = (
    TopicSpec("smarteros.events", "Platform-wide domain events", retention_ms=7 * DAY_MS),
    TopicSpec(
        "shopify.webhooks",
        "Verified Shopify webhooks, keyed by resource id",
        retention_ms=3 * DAY_MS,
        per_tenant=True,
    ),
    TopicSpec(
        "shopify.products",
        "Latest product per id (cache)",
        retention_ms=None,
        compacted=True,
        per_tenant=True,
    ),
    TopicSpec(
        "shopify.inventory",
        "Latest inventory level per item",
        retention_ms=1 * DAY_MS,
        compacted=True,
        per_tenant=True,
    ),
    TopicSpec(
        "whatsapp.inbound",
        "Messages received, keyed by phone number",
        retention_ms=3 * DAY_MS,
        per_tenant=True,
    ),
    TopicSpec(
        "whatsapp.outbound",
        "Messages to send, keyed by phone number",
        retention_ms=3 * DAY_MS,
        per_tenant=True,
    ),
    TopicSpec(
        "n8n.automation.trigger", "Workflow triggers", retention_ms=1 * DAY_MS, per_tenant=True
    ),
    TopicSpec("n8n.automation.result", "Workflow results", per_tenant=True),
    TopicSpec(
        "mcp.agent.actions", "Every operation call, keyed by session", retention_ms=7 * DAY_MS
    ),
    TopicSpec("mcp.agent.telemetry", "Telemetry records for ClickHouse", retention_ms=3 * DAY_MS),
    TopicSpec("tenant.provisioning", "Provisioning steps per tenant", retention_ms=30 * DAY_MS),
    TopicSpec(
        "clerk.auth.events",
        "Identity provider events (Clerk webhooks), keyed by user",
        retention_ms=7 * DAY_MS,
        per_tenant=True,
    ),
)


def catalog() -> tuple[TopicSpec, ...]:
    """CATALOG with the deployment's retention overrides (KAFKA_TOPIC_RETENTION_DAYS, catalog
    name -> days; for a compacted topic, 0 means keep the latest value of every key forever)."""
    from django.conf import settings

    overrides: dict[str, float] = getattr(settings, "KAFKA_TOPIC_RETENTION_DAYS", None) or {}
    return tuple(
        dataclasses.replace(spec, retention_ms=int(overrides[spec.name] * DAY_MS) or None)
        if spec.name in overrides
        else spec
        for spec in CATALOG
    )


def platform_topics() -> list[TopicSpec]:
    """Every topic created once for the platform, dead-letter topics included."""
    topics = [spec for spec in catalog() if not spec.per_tenant]
    return topics + [spec.dead_letter() for spec in topics]


def tenant_topics(slug: str) -> list[TopicSpec]:
    """The topics created for one tenant at provisioning, named `{slug}.{topic}`."""
    return [_for_tenant(slug, spec) for spec in catalog() if spec.per_tenant]


def tenant_dead_letter_topics(slug: str) -> list[TopicSpec]:
    """The dead-letter twins of a tenant's topics: each exists once its first dead letter was
    parked (smarteros.events.failures), so a reader must expect it to be missing."""
    return [_for_tenant(slug, spec.dead_letter()) for spec in catalog() if spec.per_tenant]


def tenant_every_topic(slug: str) -> list[TopicSpec]:
    """Every topic a tenant may have: its topics and their dead-letter twins."""
    return tenant_topics(slug) + tenant_dead_letter_topics(slug)


def _for_tenant(slug: str, spec: TopicSpec) -> TopicSpec:
    return dataclasses.replace(spec, name=f"{slug}.{spec.name}", per_tenant=True)


def spec_for(topic: str) -> TopicSpec | None:
    """The catalog entry behind a concrete topic name (platform, tenant or dead-letter topic)."""
    for spec in platform_topics():
        if spec.name == topic:
            return spec
    slug, _, rest = topic.partition(".")
    if rest:
        for spec in tenant_every_topic(slug):
            if spec.name == topic:
                return spec
    return None


@functools.lru_cache(maxsize=4096)
def max_message_bytes(topic: str) -> int:
    """The largest message `topic` accepts: its catalog limit, or the default for a topic the
    catalog does not know."""
    spec = spec_for(topic)
    return spec.max_message_bytes if spec else MAX_MESSAGE_BYTES


def largest_message_bytes() -> int:
    """The largest message any catalog topic accepts (dead-letter topics included)."""
    specs = [*CATALOG, *(spec.dead_letter() for spec in CATALOG)]
    return max(spec.max_message_bytes for spec in specs)


_PER_TENANT_NAMES = frozenset(
    name for spec in CATALOG if spec.per_tenant for name in (spec.name, f"{spec.name}.dlq")
)


@functools.lru_cache(maxsize=4096)
def topic_tenant(topic: str) -> str | None:
    """The slug of the tenant a `{slug}.{name}` topic belongs to; None for a platform topic."""
    slug, _, rest = topic.partition(".")
    return slug if rest in _PER_TENANT_NAMES else None
