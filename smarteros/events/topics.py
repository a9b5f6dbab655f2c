"""Bring a broker's topics in line with the catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from django.conf import settings

from smarteros.events.catalog import TopicSpec
from smarteros.infra.kafka import admin_client, topics_create


@dataclass(frozen=True)
class TopicChange:
    topic: str
    action: str  # "created", "updated", "unchanged", "drifted"
    detail: str = ""


def topics_sync(
    specs: Iterable[TopicSpec],
    *,
    timeout: float = 15.0,
    progress: Callable[[str], None] | None = None,
) -> list[TopicChange]:
    """Create missing topics with the catalog's configs; give existing ones the catalog's
    configs; report those whose partitions differ (or whose configs the broker keeps).

    Touches only the named topics: CreateTopics requests for them (in batches sized to the
    broker, see topics_create; `progress` hears each), then a describe of those that existed
    already. Listing the broker's every topic would make each tenant's
    provisioning cost grow with the number of tenants."""
    specs = list(specs)
    if not specs:
        return []
    admin = admin_client()
    outcome = topics_create(
        admin,
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=settings.KAFKA_REPLICATION_FACTOR,
                config=spec.config(),
            )
            for spec in specs
        ],
        progress=progress,
    )
    changes = [TopicChange(name, "created") for name, created in outcome.items() if created]
    by_name = {spec.name: spec for spec in specs}
    existed = [by_name[name] for name, created in outcome.items() if not created]
    kept = []
    for spec, partitions in zip(existed, _partition_counts(admin, existed, timeout), strict=True):
        if partitions < spec.partitions:
            changes.append(
                TopicChange(
                    spec.name, "drifted", f"{partitions} partitions, catalog says {spec.partitions}"
                )
            )
        else:
            changes.append(TopicChange(spec.name, "unchanged"))
            kept.append(spec)
    if kept:
        updated = _align_configs(admin, kept, timeout)
        changes = [updated.get(c.topic, c) if c.action == "unchanged" else c for c in changes]
    return sorted(changes, key=lambda change: change.topic)


def _partition_counts(admin: Any, specs: list[TopicSpec], timeout: float) -> list[int]:
    """How many partitions each named topic has, from a metadata request for those alone."""
    if not specs:
        return []
    futures = admin.describe_topics(
        TopicCollection([spec.name for spec in specs]), request_timeout=timeout
    )
    return [len(futures[spec.name].result(timeout=timeout).partitions) for spec in specs]


def topics_delete(names: Iterable[str], *, timeout: float = 30.0) -> list[str]:
    """Delete the named topics in one request, without listing the broker's topics; returns
    those deleted (a topic already gone is not an error)."""
    names = list(names)
    if not names:
        return []
    deleted = []
    admin = admin_client()  # kept until the futures resolve: they fail if it is destroyed
    futures = admin.delete_topics(names, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result()
            deleted.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
                raise
    return sorted(deleted)


def _align_configs(admin: Any, specs: list[TopicSpec], timeout: float) -> dict[str, TopicChange]:
    """Give existing topics the catalog's configs (cleanup policy, retention, max.message.bytes)
    where the broker says otherwise; returns what changed (or drifted, where the broker refuses
    the change)."""
    configs = topic_configs([spec.name for spec in specs], timeout=timeout, admin=admin)
    wrong: dict[str, dict[str, str]] = {}
    for spec in specs:
        actual = configs.get(spec.name, {})
        differ = {k: v for k, v in spec.config().items() if actual.get(k, v) != v}
        if differ:
            wrong[spec.name] = differ
    if not wrong:
        return {}
    futures = admin.incremental_alter_configs(
        [
            ConfigResource(
                ConfigResource.Type.TOPIC,
                name,
                incremental_configs=[
                    ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                    for key, value in differ.items()
                ],
            )
            for name, differ in wrong.items()
        ],
        request_timeout=timeout,
    )
    changes = {}
    for resource, future in futures.items():
        before = ", ".join(f"{k} {configs[resource.name].get(k)}" for k in wrong[resource.name])
        try:
            future.result()
            changes[resource.name] = TopicChange(resource.name, "updated", f"{before} -> catalog's")
        except KafkaException as exc:
            changes[resource.name] = TopicChange(
                resource.name, "drifted", f"{before}; not changed: {exc}"
            )
    return changes


def topic_configs(
    names: list[str], *, timeout: float = 10.0, admin: Any = None
) -> dict[str, dict[str, str]]:
    admin = admin or admin_client()
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names])
    return {
        resource.name: {key: entry.value for key, entry in future.result(timeout=timeout).items()}
        for resource, future in futures.items()
    }
