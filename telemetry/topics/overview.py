"""The topics page: partitions, retention or compaction, message counts and consumer-group lag
of the topics an operator may see."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec
from django.conf import settings

from smarteros.events.catalog import spec_for
from smarteros.infra.kafka import admin_client
from telemetry.topics.access import TopicGrant


@dataclass
class PartitionInfo:
    partition: int
    low: int
    high: int

    @property
    def messages(self) -> int:
        return max(0, self.high - self.low)


@dataclass
class GroupLag:
    group: str
    lag: int


@dataclass
class TopicInfo:
    grant: TopicGrant
    exists: bool
    partitions: list[PartitionInfo] = field(default_factory=list)
    cleanup: str = ""
    retention_ms: int | None = None
    groups: list[GroupLag] = field(default_factory=list)
    published: int = 0  # messages in the last 24 h (telemetry.topics.published)

    @property
    def retention(self) -> str:
        if self.retention_ms is None or self.retention_ms < 0:
            return "forever"
        hours = self.retention_ms / 3_600_000
        return f"{hours / 24:g} days" if hours >= 24 else f"{hours:g} hours"


@dataclass
class Overview:
    topics: list[TopicInfo]
    groups_supported: bool  # False: the broker does not report consumer groups


# Answers for a partition the broker does not hold (_NOENT: none of the request's partitions
# has a leader, as when every topic asked about is missing).
_NOT_HELD = (
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._NOENT,
)
_admin_lock = threading.Lock()
_admins: dict[str, Any] = {}


def _page_admin() -> Any:
    """One admin client per process (and broker) for the page: librdkafka keeps the metadata
    of topics it was asked about, and the local broker's metadata answer grows with every topic
    it holds (~1 ms a topic at 10,000), so a page seen again costs its offsets alone."""
    with _admin_lock:
        servers = settings.KAFKA_BOOTSTRAP_SERVERS
        if servers not in _admins:
            _admins[servers] = admin_client()
        return _admins[servers]


def _catalog_partitions(grants: list[TopicGrant]) -> dict[str, list[int]]:
    """Each topic's partitions as the catalog declares them (`topics sync` makes the broker
    agree), instead of a metadata request for the page's topics."""
    found = {}
    for grant in grants:
        spec = spec_for(grant.topic)
        found[grant.topic] = list(range(spec.partitions if spec else 1))
    return found


def topics_overview(grants: list[TopicGrant], *, timeout: float = 5.0) -> Overview:
    """Figures for each granted topic (one page of them); topics missing on the broker are
    listed as such. Requests for the page's topics alone, none naming every topic."""
    admin = _page_admin()
    declared = _catalog_partitions(grants)
    partitions = [TopicPartition(topic, p) for topic, ids in declared.items() for p in ids]
    # Two ListOffsets requests for the whole page, not two round trips per partition; a topic
    # the broker does not hold answers "unknown topic" for its partitions.
    lows, highs = (_offsets(admin, partitions, spec, timeout) for spec in ("earliest", "latest"))
    infos = [TopicInfo(grant=g, exists=(g.topic, 0) in highs) for g in grants]
    present = [info for info in infos if info.exists]
    _configs(admin, present, timeout)
    by_name = {info.grant.topic: info for info in present}
    for tp in partitions:
        key = (tp.topic, tp.partition)
        if tp.topic in by_name and key in lows and key in highs:
            by_name[tp.topic].partitions.append(PartitionInfo(tp.partition, lows[key], highs[key]))
    supported = _group_lags(admin, by_name, timeout)
    return Overview(infos, supported)


def _offsets(
    admin: Any, partitions: list[TopicPartition], spec: str, timeout: float
) -> dict[tuple[str, int], int]:
    """The earliest or latest offset of each partition, in one request; partitions of topics
    the broker does not hold are left out."""
    if not partitions:
        return {}
    offset = OffsetSpec.earliest() if spec == "earliest" else OffsetSpec.latest()
    futures = admin.list_offsets({tp: offset for tp in partitions}, request_timeout=timeout)
    found = {}
    for tp, future in futures.items():
        try:
            found[(tp.topic, tp.partition)] = future.result(timeout=timeout).offset
        except KafkaException as exc:
            if exc.args[0].code() not in _NOT_HELD:
                raise
    return found


def _configs(admin: Any, infos: list[TopicInfo], timeout: float) -> None:
    from confluent_kafka.admin import ConfigResource

    if not infos:
        return
    futures = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, info.grant.topic) for info in infos]
    )
    by_name = {info.grant.topic: info for info in infos}
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=timeout)
        except KafkaException:
            continue
        info = by_name[resource.name]
        info.cleanup = entries["cleanup.policy"].value if "cleanup.policy" in entries else ""
        if "retention.ms" in entries and entries["retention.ms"].value is not None:
            info.retention_ms = int(entries["retention.ms"].value)


def _group_lags(admin: Any, by_topic: dict[str, TopicInfo], timeout: float) -> bool:
    """Committed offsets of every group on the visible topics, as lag per group. Only offsets on
    those topics are read, so an operator learns nothing of other tenants' groups."""
    try:
        listed = admin.list_consumer_groups(request_timeout=timeout).result(timeout=timeout)
    except (KafkaException, NotImplementedError):
        return False
    groups = [g.group_id for g in listed.valid]
    if not groups:
        return False
    ends = {
        (info.grant.topic, p.partition): p.high
        for info in by_topic.values()
        for p in info.partitions
    }
    # Only the page's partitions: a group over every tenant's topics has thousands.
    wanted = [TopicPartition(topic, partition) for topic, partition in ends]
    if not wanted:
        return True
    for group in groups:
        try:
            future = admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, wanted)]
            )[group]
            partitions = future.result(timeout=timeout).topic_partitions
        except KafkaException:
            continue
        lag: dict[str, int] = {}
        for tp in partitions or []:
            if tp.topic in by_topic and tp.offset >= 0:
                end = ends.get((tp.topic, tp.partition), tp.offset)
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - tp.offset)
        for topic, value in lag.items():
            by_topic[topic].groups.append(GroupLag(group, value))
    return True
