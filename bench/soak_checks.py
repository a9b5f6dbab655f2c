"""The soak's drain and report: real counts from the outbox, the broker, the processed-event
marks, the effects, the stand-in and ClickHouse, and the invariants they must satisfy."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import soak_faults
import soak_traffic
from confluent_kafka import Consumer

from effects.models import Effect
from integrations.n8n.topics import FORWARD_GROUP
from smarteros.events.backup import read_partitions
from smarteros.infra.clickhouse import clickhouse_client
from smarteros.infra.kafka import client_config
from smarteros.models import OutboxEvent, ProcessedEvent
from tenants.scope import dangerously_unscoped

# Topic (without the tenant prefix) and event type -> the consumer group that handles it.
HANDLED = {
    ("shopify.webhooks", "shopify.webhook.received"): FORWARD_GROUP,
    ("n8n.automation.result", "n8n.workflow.result"): "flow-n8n-whatsapp",
    ("whatsapp.inbound", "whatsapp.message.received"): "flow-whatsapp-bot",
}
EFFECT_KINDS_AT_STANDIN = ("whatsapp", "n8n")


def _handled_group(topic: str, event_type: str) -> str | None:
    suffix = topic.split(".", 1)[1] if "." in topic else topic
    name = HANDLED.get((suffix, event_type))
    return name


def unhandled() -> int:
    """Outbox events not yet marked handled by the group that consumes them."""
    marks = set(ProcessedEvent.objects.values_list("group", "event_id"))
    missing = 0
    for topic, event_type, event_id in OutboxEvent.objects.values_list(
        "topic", "event_type", "event_id"
    ):
        group = _handled_group(topic, event_type)
        if group and (group, event_id) not in marks:
            missing += 1
    return missing


def drain(calls: int, timeout: float) -> float | None:
    """Wait until every event is published and handled and every effect settled (the seconds
    it took, or None if not within `timeout`); then, within the same `timeout`, until the
    `calls` made are all in ClickHouse (the telemetry line says whether they got there)."""
    began = time.monotonic()
    drained: float | None = None
    while time.monotonic() - began < timeout:
        if drained is None:
            with dangerously_unscoped():
                unsent = OutboxEvent.objects.filter(sent_at__isnull=True).count()
                pending = Effect.objects.filter(state=Effect.State.PENDING).count()
                waiting = unhandled()
            if not unsent and not pending and not waiting:
                drained = time.monotonic() - began
        if drained is not None and telemetry_count() >= calls:
            break
        time.sleep(1.0)
    return drained


@dataclass
class OnBroker:
    """Where each event id is on the broker (topic, partition, offset; once per copy), and
    the reason of each dead letter (by event id)."""

    places: dict[str, list[tuple[str, int, int]]]
    dead_letters: dict[str, list[str]]

    def count(self) -> Counter[str]:
        return Counter({event_id: len(where) for event_id, where in self.places.items()})


def broker_events(topics: list[str]) -> OnBroker:
    """Every event id on `topics` and their dead-letter twins, read from start to end."""
    consumer = Consumer(
        client_config(
            **{
                "group.id": "soak-audit",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
    )
    wanted = {*topics, *(f"{topic}.dlq" for topic in topics)}
    try:
        metadata = consumer.list_topics(timeout=30)
        partitions = [
            (topic, partition)
            for topic in sorted(wanted)
            if topic in metadata.topics
            for partition in metadata.topics[topic].partitions
        ]
        records = read_partitions(consumer, partitions, timeout=120)
    finally:
        consumer.close()
    found = OnBroker(places=defaultdict(list), dead_letters=defaultdict(list))
    for (topic, partition), partition_records in records.items():
        for record in partition_records:
            try:
                event_id = str(json.loads(base64.b64decode(record["value"]))["id"])
            except (ValueError, KeyError, TypeError):
                continue  # not an envelope: nothing the outbox accepted
            if topic.endswith(".dlq"):
                headers = {key: value for key, value in record["headers"]}
                reason = headers.get("dlq.reason")
                found.dead_letters[event_id].append(
                    base64.b64decode(reason).decode() if reason else "?"
                )
            else:
                found.places[event_id].append((topic, partition, record["offset"]))
    return found


def telemetry_count() -> int:
    client = clickhouse_client(timeout=30)
    try:
        return int(client.execute("SELECT count() FROM operation_calls FINAL")[0][0])
    except Exception:  # ClickHouse still coming back: not drained yet
        return 0
    finally:
        client.disconnect()


def telemetry_rows() -> dict[tuple[str, str], list[float]]:
    """The times of the calls recorded in ClickHouse, per tenant and surface."""
    client = clickhouse_client(timeout=30)
    rows = client.execute(
        "SELECT tenant, surface, toUnixTimestamp(time) FROM operation_calls FINAL"
    )
    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    for tenant, surface, seconds in rows:
        found[(str(tenant), str(surface))].append(float(seconds))
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


@dataclass
class Report:
    recorder: soak_traffic.Recorder
    faults: list[soak_faults.Fault]
    saas: Any
    tenants: list[str]
    peaks: dict[str, int]
    socket_messages: int
    socket_connects: int
    traffic_seconds: float
    drained_in: float | None

    def print(self) -> int:
        failures: list[str] = []
        self._faults(failures)
        self._surfaces(failures)
        with dangerously_unscoped():
            self._events(failures)
            self._effects(failures)
        self._telemetry(failures)
        self._memory()
        for failure in failures:
            print(f"FAILED: {failure}")
        print(f"result: {'pass' if not failures else 'fail'}")
        return 1 if failures else 0

    def _faults(self, failures: list[str]) -> None:
        print(f"traffic: {self.traffic_seconds:.0f}s")
        for fault in self.faults:
            if not fault.began:
                failures.append(f"fault not injected: {fault.name}")
                print(f"fault: {fault.name}: not injected")
            elif fault.error:
                failures.append(f"no recovery from {fault.name}: {fault.error}")
                print(f"fault: {fault.name}: NOT recovered ({fault.error})")
            else:
                print(f"fault: {fault.name}: recovered in {fault.ended - fault.began:.1f}s")
        if self.drained_in is None:
            failures.append(
                "the stack did not drain (events unpublished, unhandled or effects pending)"
            )
        print(f"drained in: {'never' if self.drained_in is None else f'{self.drained_in:.0f}s'}")

    def _surfaces(self, failures: list[str]) -> None:
        timeline = soak_faults.Timeline(self.faults)
        by_surface: dict[str, list[soak_traffic.Sample]] = defaultdict(list)
        for sample in self.recorder.samples:
            by_surface[sample.surface].append(sample)
        bad = Counter[str]()
        print(
            "surface         accepted refused unreach    5xx  hangs  4xx  "
            "calm p50/p95/p99 ms        fault p50/p95/p99 ms"
        )
        for surface in soak_traffic.SURFACES:
            samples = by_surface.get(surface, [])
            outcomes = Counter(s.outcome for s in samples)
            calm = [s.seconds * 1000 for s in samples if not timeline.in_fault(s.started)]
            fault = [s.seconds * 1000 for s in samples if timeline.in_fault(s.started)]
            print(
                f"{surface:<15} {outcomes['accepted']:>8} {outcomes['refused']:>7} "
                f"{outcomes['unreachable']:>7} {outcomes['5xx']:>6} {outcomes['hang']:>6} "
                f"{outcomes['4xx']:>4}  {_lat(calm):<25} {_lat(fault)}"
            )
            for kind in soak_traffic.FAILURES:
                bad[kind] += outcomes[kind]
            if not samples:
                failures.append(f"no traffic on {surface}")
        for sample in self.recorder.samples:
            if sample.outcome in soak_traffic.FAILURES:
                print(f"  {sample.outcome} on {sample.surface}: {sample.detail}")
        reasons = Counter(s.detail[:90] for s in self.recorder.samples if s.outcome == "refused")
        for reason, count in reasons.most_common(8):
            print(f"  refused x{count}: {reason}")
        print(f"websocket: {self.socket_connects} connects, {self.socket_messages} live messages")
        print(f"5xx: {bad['5xx']}")
        print(f"hangs: {bad['hang']}")
        print(f"4xx: {bad['4xx']}")
        for kind in soak_traffic.FAILURES:
            if bad[kind]:
                failures.append(f"{bad[kind]} answers were {kind}")

    def _events(self, failures: list[str]) -> None:
        rows = list(OutboxEvent.objects.values_list("topic", "event_type", "event_id", "sent_at"))
        accepted = {str(event_id) for _, _, event_id, _ in rows}
        published_rows = sum(1 for *_, sent_at in rows if sent_at is not None)
        on_broker = broker_events(sorted({topic for topic, *_ in rows}))
        missing = accepted - set(on_broker.places)
        marks = set(ProcessedEvent.objects.values_list("group", "event_id"))
        to_handle = [
            (group, event_id)
            for topic, event_type, event_id, _ in rows
            if (group := _handled_group(topic, event_type))
        ]
        unhandled = [pair for pair in to_handle if pair not in marks]
        handled = len(to_handle) - len(unhandled)
        republished = sum(
            count - 1 for event_id, count in on_broker.count().items() if event_id in accepted
        )
        print(
            f"events: accepted {len(accepted)}, published {published_rows} "
            f"(on the broker {len(accepted) - len(missing)}, "
            f"{republished} published again), to handle {len(to_handle)}, handled {handled}"
        )
        lost = len(missing) + len(unhandled)
        print(f"lost: {lost}")
        for group, event_id in unhandled[:10]:
            where = on_broker.places.get(str(event_id), [])
            reasons = on_broker.dead_letters.get(str(event_id), [])
            print(
                f"  not handled by {group}: {event_id} at {where or 'nowhere'}; "
                f"dead letters: {reasons or 'none'}"
            )
        if lost:
            failures.append(
                f"{len(missing)} accepted events not on the broker, {len(unhandled)} not handled"
            )
        if not accepted:
            failures.append("no events were accepted")
        # Handled twice shows as an outside write repeated after it was carried out: the
        # stand-in recognises the repeat by its idempotency key (the provider would too).
        duplicated = self.saas.state.repeats
        print(f"duplicated: {duplicated}")
        if duplicated:
            failures.append(f"{duplicated} outside writes were repeated after being carried out")

    def _effects(self, failures: list[str]) -> None:
        states = Counter(Effect.objects.values_list("state", flat=True))
        done_keys = [e.idempotency_key for e in Effect.objects.filter(state=Effect.State.DONE)]
        applied = Counter(
            key for kind in EFFECT_KINDS_AT_STANDIN for key, _ in self.saas.state.applied_of(kind)
        )
        once = sum(1 for key in done_keys if applied.get(key) == 1)
        strays = set(applied) - set(done_keys)
        print(
            f"effects: recorded {sum(states.values())}, done {states['done']}, pending "
            f"{states['pending']}, failed {states['failed']}; performed once at the provider "
            f"{once}, not recorded as done {len(strays)}"
        )
        ok = once == len(done_keys) == sum(states.values()) and not strays and done_keys
        print(f"effects once: {'yes' if ok else 'no'}")
        if not ok:
            failures.append("outside effects were not each performed exactly once")

    def _telemetry(self, failures: list[str]) -> None:
        try:
            rows = telemetry_rows()
        except Exception as exc:
            failures.append(f"telemetry unreadable: {exc!r}")
            return
        calls = dict(self.recorder.calls)
        equal = True
        for tenant in self.tenants:
            for surface in ("mcp-http", "mcp-stdio", "rest"):
                found, made = len(rows.get((tenant, surface), [])), calls.get((tenant, surface), 0)
                equal = equal and found == made
                print(f"telemetry {tenant} {surface}: rows {found}, calls {made}")
        if not equal:
            self._telemetry_by_time(rows)
        print(f"telemetry equal: {'yes' if equal else 'no'}")
        if not equal:
            failures.append("telemetry rows differ from the calls made")

    def _telemetry_by_time(self, rows: dict[tuple[str, str], list[float]]) -> None:
        """Rows and calls per 5 s of the run, to show where they part."""
        made = Counter(int(at // 5) for _, _, at in self.recorder.call_times)
        found = Counter(int(at // 5) for times in rows.values() for at in times)
        start = min(made) if made else 0
        for bucket in sorted(set(made) | set(found)):
            if made[bucket] != found[bucket]:
                print(
                    f"  telemetry +{(bucket - start) * 5:>4}s: "
                    f"rows {found[bucket]}, calls {made[bucket]}"
                )

    def _memory(self) -> None:
        for name, kb in sorted(self.peaks.items()):
            print(f"peak rss {name}: {kb / 1024:.0f} MB")


def _lat(values: list[float]) -> str:
    if not values:
        return "-"
    return (
        "/".join(f"{percentile(values, q):.0f}" for q in (0.5, 0.95, 0.99)) + f" (n={len(values)})"
    )
