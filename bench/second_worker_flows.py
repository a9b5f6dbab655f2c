"""The traffic bench/second_worker.py sends through the two flows, and what it reads back of
what they did: events sent, handled (processed-event marks), carried out at the stand-in, effects
still pending, and which partitions stopped at a kill and when another member took them."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.tenants_scale import connect_flows

FLOWS = {"shopify": "flow-n8n-forward", "n8n": "flow-n8n-whatsapp"}
TOPICS = {"shopify": "shopify.webhooks", "n8n": "n8n.automation.result"}
STALL_SECONDS = 3.0  # an event waiting longer than this after the kill was on a killed partition

# --- traffic ------------------------------------------------------------------------------


@dataclass
class Sent:
    kind: str  # "shopify" or "n8n"
    slug: str
    marker: str  # the Shopify webhook id, or the n8n execution id
    at: float


@dataclass
class Traffic:
    sent: list[Sent] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(web: Any, slug: str, kind: str, traffic: Traffic) -> None:
    """One signed webhook for `slug`: a Shopify order, or an n8n result asking for a message."""
    from tests.fixtures import deliveries

    marker = f"sw-{uuid.uuid4()}"
    if kind == "shopify":
        order = deliveries.shopify_order(10**12 + uuid.uuid4().int % 10**11)
        body = deliveries.dumps(order)
        headers = deliveries.shopify_headers(
            body, shop_domain=f"{slug}.myshopify.com", webhook_id=marker
        )
    else:  # keyed by the recipient: spread over the topic's partitions
        to = f"+1415{uuid.uuid4().int % 10**7:07d}"
        result = deliveries.n8n_result(marker, whatsapp_to=to, whatsapp_text=marker)
        body = deliveries.dumps(result)
        headers = deliveries.n8n_headers(body)
    headers["Content-Type"] = "application/json"
    at = time.time()
    try:
        status = web.post(f"/hooks/{kind}/{slug}/", content=body, headers=headers).status_code
    except Exception as exc:
        status, at = 0, time.time()
        traffic.refused[type(exc).__name__] += 1
    with traffic.lock:
        if 200 <= status < 300:
            traffic.sent.append(Sent(kind, slug, marker, at))
        elif status:
            traffic.refused[str(status)] += 1


def drive(url: str, slugs: list[str], rate: float, seconds: float, traffic: Traffic) -> None:
    """`rate` webhooks a second for `seconds`, one sender per tenant, the kinds alternating."""
    import httpx

    def sender(slug: str, offset: float) -> None:
        interval = len(slugs) / rate
        with httpx.Client(base_url=url, timeout=30) as web:
            began, n = time.monotonic() + offset, 0
            while (due := began + n * interval) < began + seconds:
                time.sleep(max(0.0, due - time.monotonic()))
                send(web, slug, ("shopify", "n8n")[n % 2], traffic)
                n += 1

    threads = [
        threading.Thread(target=sender, args=(slug, i / rate), daemon=True)
        for i, slug in enumerate(slugs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def connect(slugs: list[str], saas_url: str) -> None:
    """Shopify and n8n with a workflow on shopify.webhooks (tenants_scale's), and WhatsApp, all
    at the stand-in of this run (a resumed run points the connections at its own)."""
    from integrations.services import integration_connect
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped
    from tests.fixtures.saas import WHATSAPP_TOKEN

    for index, slug in enumerate(slugs):
        with dangerously_unscoped():
            tenant = Tenant.objects.get(slug=slug)
        integration_connect(
            tenant=tenant,
            provider="whatsapp",
            config={"phone_number_id": f"7{index:014d}", "api_base_url": saas_url},
            credentials={"access_token": WHATSAPP_TOKEN},
        )
        connect_flows(slug, saas_url)


# --- what the flows did ---------------------------------------------------------------------


@dataclass
class Event:
    kind: str
    slug: str
    marker: str
    sent_at: float
    records: list[tuple[str, int, float, str]] = field(default_factory=list)  # topic, p, ts, id
    handled_at: float | None = None
    effects: list[tuple[str, int]] = field(default_factory=list)  # their states and attempts
    applied: int = 0  # carried out at the stand-in (one per idempotency key)
    posts: int = 0  # posts the stand-in got for it


def _marker(body: Any) -> str | None:
    text = json.dumps(body)
    start = text.find('"sw-')
    return text[start + 1 : start + 40] if start >= 0 else None


def stand_in_counts(saas: Any) -> tuple[Counter[str], Counter[str]]:
    """(carried out, posted) per marker, over the n8n workflow runs and WhatsApp messages."""
    applied: Counter[str] = Counter()
    posted: Counter[str] = Counter()
    with saas.state.lock:
        for _, _, body in saas.state.applied:
            applied[_marker(body) or ""] += 1
        for method, path, _, body in saas.state.requests:
            if method == "POST" and (path.startswith("/webhook/") or path.endswith("/messages")):
                posted[_marker(body) or ""] += 1
    return applied, posted


def pending_effects(slugs: list[str], since: float) -> int:
    """The flows' effects recorded since `since` for these tenants that are not done yet."""
    from datetime import UTC, datetime

    from effects.models import Effect
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        return Effect.objects.filter(
            tenant__slug__in=slugs,
            kind__in=["n8n.trigger_workflow", "whatsapp.send_message"],
            created_at__gte=datetime.fromtimestamp(since, UTC),
            state=Effect.State.PENDING,
        ).count()


def drain(saas: Any, traffic: Traffic, since: float, timeout: float) -> float:
    """Seconds until every accepted event was carried out at the stand-in and every effect of
    the round is done (or `timeout`): one the killed worker held waits for its lease, then is
    performed again, and a post it repeats must reach this run's stand-in to be counted."""
    started = time.monotonic()
    wanted = {sent.marker for sent in traffic.sent}
    slugs = sorted({sent.slug for sent in traffic.sent})
    while time.monotonic() - started < timeout:
        applied, _ = stand_in_counts(saas)
        if wanted <= set(applied) and not pending_effects(slugs, since):
            break
        time.sleep(1.0)
    return time.monotonic() - started


def collect(saas: Any, traffic: Traffic) -> dict[str, Event]:
    """Each sent event: its records on Kafka, when its flow handled it, its effects, and what
    reached the stand-in."""
    from effects.models import Effect
    from smarteros.events.backup import scan_partitions_parallel
    from smarteros.events.catalog import tenant_topics
    from smarteros.models import ProcessedEvent
    from tenants.scope import dangerously_unscoped

    events = {s.marker: Event(s.kind, s.slug, s.marker, s.at) for s in traffic.sent}
    slugs = sorted({s.slug for s in traffic.sent})
    partitions = [
        (spec.name, p)
        for slug in slugs
        for spec in tenant_topics(slug)
        if spec.name.split(".", 1)[1] in TOPICS.values()
        for p in range(spec.partitions)
    ]
    lock = threading.Lock()

    def record(message: Any) -> None:
        envelope = json.loads(message.value())
        data = envelope.get("data", {})
        marker = data.get("webhook_id") or data.get("execution_id")
        if marker in events:
            with lock:
                events[marker].records.append(
                    (
                        message.topic(),
                        message.partition(),
                        message.timestamp()[1] / 1000,
                        envelope["id"],
                    )
                )

    scan_partitions_parallel(os.environ["KAFKA_BOOTSTRAP_SERVERS"], partitions, on_message=record)
    by_id = {r[3]: e for e in events.values() for r in e.records}
    for kind, group in FLOWS.items():
        ids = [i for i, e in by_id.items() if e.kind == kind]
        for mark in ProcessedEvent.objects.filter(group=group, event_id__in=ids):
            by_id[str(mark.event_id)].handled_at = mark.processed_at.timestamp()
    # The effect each flow records: n8n's is keyed by event and workflow, WhatsApp's by event.
    keys = {(f"{i}:scale-{e.slug}" if e.kind == "shopify" else i): e for i, e in by_id.items()}
    with dangerously_unscoped():
        recorded = Effect.objects.filter(key__in=list(keys))
        for key, state, attempts in recorded.values_list("key", "state", "attempts"):
            keys[key].effects.append((state, attempts))
    applied, posted = stand_in_counts(saas)
    for event in events.values():
        event.applied, event.posts = applied[event.marker], posted[event.marker]
    return events


@dataclass
class Takeover:
    stopped: set[tuple[str, int]]  # partitions whose events waited past the kill
    flowing: set[tuple[str, int]]  # partitions handled on as usual
    seconds: float | None  # kill -> the last stopped partition handled again


def takeover(events: list[Event], killed_at: float) -> Takeover:
    """Which partitions stopped at the kill (the killed worker held them) and when another
    member handled each again, from the events pending at the kill or produced in the 5 s after
    it (sooner than the killed member's session can time out)."""
    after: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for event in events:
        if event.records and event.handled_at is not None and event.handled_at >= killed_at:
            topic, partition, produced, _ = event.records[0]
            after.setdefault((topic, partition), []).append((produced, event.handled_at))
    near = {
        where: [(p, h) for p, h in seen if p <= killed_at + 5]
        for where, seen in after.items()
        if any(p <= killed_at + 5 for p, _ in seen)
    }
    stopped = {
        where
        for where, seen in near.items()
        if any(handled - max(produced, killed_at) > STALL_SECONDS for produced, handled in seen)
    }
    resumed = [min(h for _, h in after[where]) - killed_at for where in stopped]
    return Takeover(stopped, set(near) - stopped, max(resumed) if resumed else None)
