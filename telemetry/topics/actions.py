"""What a tenant admin may do beyond looking: replay a dead letter, export results. Both audited."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from confluent_kafka import TopicPartition

from smarteros.events.tally import published_tally
from smarteros.infra.kafka import get_producer
from smarteros.scrub import scrub_text
from telemetry.topics.access import TopicGrant
from telemetry.topics.records import read_to_end, viewer_consumer

REPLAY_ACTION = "topics.dead_letter_replay"
# How long a bulk replay reads one partition's dead letters at most.
REPLAY_READ_SECONDS = 20.0
EXPORT_ACTION = "topics.export"


class ActionRefused(Exception):
    """Not allowed (role) or not possible (no such message, not a dead letter); `status` is the
    HTTP status to answer and `field` the input it is about."""

    def __init__(self, message: str, *, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class Replayed:
    topic: str
    partition: int
    offset: int


def _raw_message(topic: str, partition: int, offset: int) -> Any:
    consumer = viewer_consumer()
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        for _ in range(20):
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            if message.offset() == offset:
                return message
            break
    finally:
        consumer.close()
    raise ActionRefused(f"no message at partition {partition} offset {offset}", field="offset")


def _audit(
    grant: TopicGrant, *, user: Any, action: str, target: str, details: dict[str, Any]
) -> None:
    from tenants.audit import audit_record
    from tenants.scope import dangerously_unscoped, tenant_scope
    from tenants.selectors import tenant_get

    actor = f"user:{user.get_username()}"
    if grant.tenant_id is None:
        with dangerously_unscoped():  # a platform topic: the audit row belongs to no tenant
            audit_record(actor=actor, action=action, tenant=None, target=target, details=details)
        return
    with tenant_scope(grant.tenant_id):
        tenant = tenant_get(tenant_id=grant.tenant_id)
        audit_record(actor=actor, action=action, tenant=tenant, target=target, details=details)


def _already_replayed(grant: TopicGrant, target: str) -> bool:
    from tenants.models import AuditEvent
    from tenants.scope import dangerously_unscoped, tenant_read_scope

    if grant.tenant_id is None:
        with dangerously_unscoped():
            return AuditEvent.objects.filter(action=REPLAY_ACTION, target=target).exists()
    with tenant_read_scope(grant.tenant_id):
        return AuditEvent.objects.filter(action=REPLAY_ACTION, target=target).exists()


def dead_letter_replayed(grant: TopicGrant, partition: int, offset: int) -> bool:
    """Whether this dead letter was replayed before (its audit record says so)."""
    return grant.is_dead_letter and _already_replayed(grant, f"{grant.topic}/{partition}/{offset}")


def dead_letter_replay(
    *, user: Any, grant: TopicGrant, partition: int, offset: int, again: bool = False
) -> Replayed:
    """Re-produce a dead letter to the topic it came from (its `dlq.topic` header), with its key,
    value and original headers, plus `replay.of`; then write the audit record. A dead letter
    replayed before is refused unless `again`."""
    _may_replay(grant)
    target = f"{grant.topic}/{partition}/{offset}"
    if not again and _already_replayed(grant, target):
        raise ActionRefused("this dead letter was replayed already", status=409, field="offset")
    return _replay(grant, user, _raw_message(grant.topic, partition, offset), target)


@dataclass(frozen=True)
class ReplayedAll:
    replayed: int
    skipped: int  # replayed before
    refused: list[str]  # dead letters that could not be replayed, and why
    more: bool  # stopped at the limit: more dead letters wait


def dead_letters_replay_all(*, user: Any, grant: TopicGrant, limit: int) -> ReplayedAll:
    """Replay every dead letter of the topic not replayed before, oldest first, at most `limit`
    of them; each is audited as a single replay is."""
    _may_replay(grant)
    messages = _dead_letters(grant.topic, limit + 1)
    more = len(messages) > limit
    messages = messages[:limit]
    targets = {f"{grant.topic}/{m.partition()}/{m.offset()}": m for m in messages}
    done_before = _replayed_among(grant, list(targets))
    replayed, refused = 0, []
    for target, message in targets.items():
        if target in done_before:
            continue
        try:
            _replay(grant, user, message, target)
        except ActionRefused as exc:
            refused.append(f"{target}: {exc}")
            continue
        replayed += 1
    return ReplayedAll(replayed, len(done_before), refused, more)


def _may_replay(grant: TopicGrant) -> None:
    if not grant.is_dead_letter:
        raise ActionRefused("only dead-letter topics can be replayed", field="topic")
    if not grant.can_replay:
        raise ActionRefused("replaying needs the operator or tenant admin role", status=403)


def _dead_letters(topic: str, count: int) -> list[Any]:
    """Up to `count` dead letters of `topic`, oldest first per partition: each partition read
    until the broker says it has nothing more (`read_to_end`), not to its listed high watermark,
    which the local broker may give short."""
    from telemetry.topics.browse import TopicUnavailable, topic_partitions

    consumer = viewer_consumer(**{"auto.offset.reset": "earliest"})
    found: list[Any] = []
    try:
        try:
            partitions = topic_partitions(consumer, topic)
        except TopicUnavailable as exc:
            raise ActionRefused(str(exc), status=404, field="topic") from None
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
            if high <= low:
                continue  # empty (a listed watermark may be short, but not of a first message)
            for message in read_to_end(
                consumer, topic, {partition: low}, seconds=REPLAY_READ_SECONDS
            ):
                found.append(message)
                if len(found) >= count:
                    break
            if len(found) >= count:
                break
    finally:
        consumer.close()
    return found


def _replayed_among(grant: TopicGrant, targets: list[str]) -> set[str]:
    from tenants.models import AuditEvent
    from tenants.scope import dangerously_unscoped, tenant_read_scope

    rows = AuditEvent.objects.filter(action=REPLAY_ACTION, target__in=targets)
    if grant.tenant_id is None:
        with dangerously_unscoped():
            return set(rows.values_list("target", flat=True))
    with tenant_read_scope(grant.tenant_id):
        return set(rows.values_list("target", flat=True))


def _replay(grant: TopicGrant, user: Any, message: Any, target: str) -> Replayed:
    headers = [(k, v) for k, v in (message.headers() or [])]
    origin = next((v for k, v in headers if k == "dlq.topic"), b"").decode(errors="replace")
    # The header is data a consumer wrote; never let it point outside this dead letter's twin.
    if origin != grant.topic.removesuffix(".dlq"):
        raise ActionRefused(
            f"its dlq.topic header ({origin!r}) is not {grant.topic.removesuffix('.dlq')!r}",
            status=409,
        )
    kept = [(k, v) for k, v in headers if not k.startswith("dlq.")]
    kept.append(("replay.of", target.encode()))
    outcome: dict[str, Any] = {}

    def delivered(err: Any, msg: Any) -> None:
        outcome["error"], outcome["msg"] = err, msg

    producer = get_producer()
    producer.produce(
        origin, value=message.value(), key=message.key(), headers=kept, on_delivery=delivered
    )
    producer.flush(15)
    if outcome.get("error") is not None or "msg" not in outcome:
        raise ActionRefused(f"the broker did not take it: {outcome.get('error')}", status=503)
    sent = outcome["msg"]
    published_tally([origin])
    replayed = Replayed(origin, sent.partition(), sent.offset())
    _audit(
        grant,
        user=user,
        action=REPLAY_ACTION,
        target=target,
        details={
            "to": origin,
            "partition": replayed.partition,
            "offset": replayed.offset,
            # The audit page shows it: masked as the viewer masks the header.
            "reason": scrub_text(
                next(
                    (v.decode(errors="replace")[:300] for k, v in headers if k == "dlq.reason"), ""
                ),
                contact=grant.mask_personal_data,
            ),
        },
    )
    return replayed


def export_lines(
    *, user: Any, grant: TopicGrant, records: list[dict[str, Any]], query: dict[str, Any]
) -> str:
    """JSON lines of masked records, audited; refused for viewers."""
    if not grant.can_export:
        raise ActionRefused("exporting needs the operator or tenant admin role", status=403)
    _audit(
        grant,
        user=user,
        action=EXPORT_ACTION,
        target=grant.topic,
        details={"messages": len(records), "query": query},
    )
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
