"""Bring a broker's topics in line with the catalog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, NewTopic
from django.conf import settings

from smarteros.events.catalog import TopicSpec
from smarteros.infra.kafka import admin_client


@dataclass(frozen=True)
class TopicChange:
    topic: str
    action: str  # "created", "unchanged", "drifted"
    detail: str = ""


def topics_sync(specs: Iterable[TopicSpec], *, timeout: float = 15.0) -> list[TopicChange]:
    """Create missing topics; report existing ones whose partitions or configs differ."""
    admin = admin_client()
    existing = admin.list_topics(timeout=timeout).topics
    changes: list[TopicChange] = []
    to_create = []
    for spec in specs:
        if spec.name not in existing:
            to_create.append(spec)
            continue
        partitions = len(existing[spec.name].partitions)
        if partitions < spec.partitions:
            changes.append(
                TopicChange(
                    spec.name, "drifted", f"{partitions} partitions, catalog says {spec.partitions}"
                )
            )
        else:
            changes.append(TopicChange(spec.name, "unchanged"))
    if to_create:
        futures = admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=settings.KAFKA_REPLICATION_FACTOR,
                    config=spec.config(),
                )
                for spec in to_create
            ],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                changes.append(TopicChange(name, "created"))
            except KafkaException as exc:
                if exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                    changes.append(TopicChange(name, "unchanged"))
                else:
                    raise
    return sorted(changes, key=lambda change: change.topic)


def topic_configs(
    names: list[str], *, timeout: float = 10.0, admin: Any = None
) -> dict[str, dict[str, str]]:
    admin = admin or admin_client()
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names])
    return {
        resource.name: {key: entry.value for key, entry in future.result(timeout=timeout).items()}
        for resource, future in futures.items()
    }
