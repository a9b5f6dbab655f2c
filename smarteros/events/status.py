"""Catalog against broker, and consumer lag per group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from smarteros.events.catalog import TopicSpec, platform_topics, tenant_topics
from smarteros.events.topics import topic_configs
from smarteros.infra.kafka import admin_client


def catalog_for_all_tenants() -> list[TopicSpec]:
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped

    specs = platform_topics()
    with dangerously_unscoped():
        slugs = list(
            Tenant.objects.exclude(status=Tenant.Status.DELETED).values_list("slug", flat=True)
        )
    for slug in slugs:
        specs += tenant_topics(slug)
    return specs


@dataclass(frozen=True)
class TopicState:
    topic: str
    state: str  # ok, missing, drifted
    detail: str = ""


def topics_state(specs: list[TopicSpec]) -> list[TopicState]:
    metadata = admin_client().list_topics(timeout=15).topics
    present = [s.name for s in specs if s.name in metadata]
    configs = topic_configs(present) if present else {}
    states = []
    for spec in specs:
        if spec.name not in metadata:
            states.append(TopicState(spec.name, "missing"))
            continue
        problems = []
        partitions = len(metadata[spec.name].partitions)
        # Fewer partitions break key spreading; more change which partition a key goes to.
        if partitions != spec.partitions:
            problems.append(f"{partitions} partitions, catalog says {spec.partitions}")
        for key, wanted in spec.config().items():
            actual = configs.get(spec.name, {}).get(key)
            if actual is not None and actual != wanted:
                problems.append(f"{key}={actual}, catalog says {wanted}")
        states.append(TopicState(spec.name, "drifted" if problems else "ok", "; ".join(problems)))
    return states


def consumer_lag() -> dict[str, dict[str, Any]]:
    """For each consumer group: committed offsets against the partitions' ends, summed per topic."""
    from confluent_kafka import Consumer

    from smarteros.infra.kafka import client_config

    admin = admin_client()
    groups = sorted(
        g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid
    )
    probe = Consumer(
        client_config(**{"group.id": "smarteros-lag-probe", "enable.auto.commit": False})
    )
    lag: dict[str, dict[str, Any]] = {}
    try:
        for group in groups:
            futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
            committed = futures[group].result().topic_partitions
            per_topic: dict[str, int] = {}
            for tp in committed:
                if tp.offset < 0:
                    continue
                _, high = probe.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=10
                )
                per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, high - tp.offset)
            lag[group] = {"total": sum(per_topic.values()), "topics": per_topic}
    finally:
        probe.close()
    return lag
