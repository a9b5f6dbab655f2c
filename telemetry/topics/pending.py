"""The dead-letter page's pending list: events of the topic that consumer groups are retrying
now and will dead-letter if their last attempt fails (smarteros.events.pending), as the
operator's grant lets them be seen: only the grant's tenant is read, errors masked as dead
letters' reasons are."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from smarteros.events.pending import PendingDeadLetter, pending_dead_letters
from telemetry.topics.access import TopicGrant
from telemetry.topics.masking import Masker

log = logging.getLogger(__name__)

MAX_SHOWN = 50


@dataclass
class Pending:
    rows: list[PendingDeadLetter] = field(default_factory=list)  # their errors masked
    total: int = 0
    error: str = ""  # the list could not be read


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
    masker = Masker.for_grant(grant)
    rows = [replace(e, error=masker.text(e.error)) for e in entries[:MAX_SHOWN]]
    return Pending(rows=rows, total=len(entries))
