"""The dead-letter page's pending list: events of the topic that consumer groups are retrying
now and will dead-letter if their last attempt fails (smarteros.events.pending), as the
operator's grant lets them be seen: only the grant's tenant is read, errors masked as dead
letters' reasons are."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smarteros.events.pending import PendingDeadLetter, pending_dead_letters
from telemetry.topics.access import TopicGrant
from telemetry.topics.masking import Masker

log = logging.getLogger(__name__)

MAX_SHOWN = 50


@dataclass(frozen=True)
class PendingRow:
    topic: str
    partition: int
    offset: int
    event_id: str
    event_type: str
    group: str
    attempt: int
    attempts: int
    error: str
    next_at: datetime
    due_in: float  # seconds; 0 when the next attempt is due or running


@dataclass
class Pending:
    rows: list[PendingRow] = field(default_factory=list)
    total: int = 0
    error: str = ""  # the list could not be read


def _row(entry: PendingDeadLetter, masker: Masker, now: float) -> PendingRow:
    return PendingRow(
        topic=entry.topic,
        partition=entry.partition,
        offset=entry.offset,
        event_id=entry.event_id,
        event_type=entry.event_type,
        group=entry.group,
        attempt=entry.attempt,
        attempts=entry.attempts,
        error=masker.text(entry.error),
        next_at=datetime.fromtimestamp(entry.next_at, UTC),
        due_in=entry.due_in(now),
    )


def topic_pending(grant: TopicGrant) -> Pending | None:
    """What is pending for the dead-letter topic of `grant` (None for any other topic)."""
    if not grant.is_dead_letter:
        return None
    try:
        entries = pending_dead_letters(
            tenant_slug=grant.tenant_slug, topic=grant.topic.removesuffix(".dlq")
        )
    except Exception as exc:  # Redis away: the page says so rather than failing
        log.info("pending dead letters of %s: %s", grant.topic, exc)
        return Pending(error=f"Retrying events unavailable: {type(exc).__name__}")
    masker, now = Masker.for_grant(grant), time.time()
    return Pending(rows=[_row(e, masker, now) for e in entries[:MAX_SHOWN]], total=len(entries))
