"""The topic catalog: the original topic table's retention and cleanup, overridable per
deployment, applied to a running broker and reported when it drifts."""

from __future__ import annotations

from typing import Any

from smarteros.events.catalog import DAY_MS, platform_topics, spec_for, tenant_topics
from smarteros.events.status import topics_state
from smarteros.events.topics import topic_configs, topics_sync

SEED_TABLE = {
    # catalog name: (cleanup.policy, retention in days; None = forever)
    "smarteros.events": ("delete", 7),
    "shopify.webhooks": ("delete", 3),
    "shopify.products": ("compact", None),
    "shopify.inventory": ("compact,delete", 1),
    "whatsapp.inbound": ("delete", 3),
    "whatsapp.outbound": ("delete", 3),
    "n8n.automation.trigger": ("delete", 1),
    "n8n.automation.result": ("delete", 7),
    "mcp.agent.actions": ("delete", 7),
    "mcp.agent.telemetry": ("delete", 3),
    "tenant.provisioning": ("delete", 30),
    "clerk.auth.events": ("delete", 7),
}


def _expected(policy: str, days: int | None) -> dict[str, str]:
    return {"cleanup.policy": policy, "retention.ms": str(days * DAY_MS if days else -1)}


def test_catalog_defaults_follow_the_topic_table() -> None:
    for name, (policy, days) in SEED_TABLE.items():
        concrete = name if spec_for(name) else f"acme.{name}"
        spec = spec_for(concrete)
        assert spec is not None, name
        config = spec.config()
        assert {k: config[k] for k in ("cleanup.policy", "retention.ms")} == _expected(
            policy, days
        ), name


def test_a_deployment_overrides_retention_and_sync_applies_it_then_status_is_clean(
    broker: Any, settings: Any
) -> None:
    topics_sync(tenant_topics("acme"))
    topic = "acme.shopify.webhooks"
    assert topic_configs([topic])[topic]["retention.ms"] == str(3 * DAY_MS)

    settings.KAFKA_TOPIC_RETENTION_DAYS = {"shopify.webhooks": 5}
    drifted = {s.topic: s for s in topics_state(tenant_topics("acme"))}[topic]
    assert drifted.state == "drifted" and "retention.ms" in drifted.detail

    changes = {c.topic: c for c in topics_sync(tenant_topics("acme"))}
    assert changes[topic].action == "updated"
    assert topic_configs([topic])[topic]["retention.ms"] == str(5 * DAY_MS)
    assert {s.state for s in topics_state(tenant_topics("acme"))} == {"ok"}
    assert {s.state for s in topics_state(platform_topics())} == {"ok"}
