"""Consumers handle each event id once per group, even when it comes twice in one batch; the
outside effects of a batch that fails and is replayed happen once."""

from __future__ import annotations

from typing import Any

import pytest

from smarteros.events.consumers import Registration, handle_batch_once, handle_once
from smarteros.events.envelope import Envelope
from smarteros.models import ProcessedEvent

pytestmark = pytest.mark.django_db(transaction=True)


def step(n: int, tenant: str | None = None) -> Envelope:
    return Envelope(
        type="tenant.provisioning.step",
        source="test",
        tenant=tenant,
        data={"step": f"s{n}", "outcome": "ok"},
    )


def test_an_event_repeated_in_a_batch_or_delivered_again_runs_once(make_tenant: Any) -> None:
    make_tenant("acme")
    handled: list[str] = []
    reg = Registration("tenant.provisioning", "*", "g", lambda e: handled.append(e.id))
    first, second, third = step(1, "acme"), step(2, "acme"), step(3, "acme")
    assert handle_batch_once("g", reg, [first, second, first]) == 2
    assert handled == [first.id, second.id]
    # Redelivered after a crash, with a new one among them: only the new one runs.
    assert handle_batch_once("g", reg, [second, third, first]) == 1
    assert handled == [first.id, second.id, third.id]
    # Another group handles the same events on its own.
    assert handle_batch_once("h", reg, [first, second]) == 2
    assert ProcessedEvent.objects.filter(group="g").count() == 3


def test_a_failing_handler_leaves_no_mark_so_the_retry_runs_it(make_tenant: Any) -> None:
    make_tenant("acme")
    calls: list[str] = []

    def flaky(envelope: Envelope) -> None:
        calls.append(envelope.id)
        if len(calls) == 2:
            raise RuntimeError("downstream hiccup")

    reg = Registration("tenant.provisioning", "*", "g", flaky)
    events = [step(1, "acme"), step(2, "acme")]
    with pytest.raises(RuntimeError):
        handle_batch_once("g", reg, events)
    assert not ProcessedEvent.objects.filter(group="g").exists()  # rolled back with its writes
    assert handle_batch_once("g", reg, events) == 2
    # The handler runs again; it only writes to the database, so running twice costs nothing.
    assert calls == [events[0].id, events[1].id, events[0].id, events[1].id]


def test_a_batch_whose_second_event_fails_performs_the_first_effect_once(
    make_tenant: Any, saas: Any, connect: Any
) -> None:
    from integrations.handlers import n8n_result_to_whatsapp

    # A slug of its own: the consumers remember slugs' ids for a minute, across these tests.
    tenant = make_tenant("onceshop").tenant
    connect(tenant, "whatsapp", saas.url)

    def result(text: str) -> Envelope:
        return Envelope(
            type="n8n.workflow.result",
            source="test",
            tenant="onceshop",
            data={"whatsapp_to": "+14155550100", "whatsapp_text": text},
        )

    first, second = result("first"), result("second")

    def second_fails(envelope: Envelope) -> None:
        n8n_result_to_whatsapp(envelope)  # the real flow: records a WhatsApp send
        if envelope.id == second.id:
            raise RuntimeError("the second event's handler fails")

    reg = Registration("*.n8n.automation.result", "*", "g", second_fails)
    with pytest.raises(RuntimeError):
        handle_batch_once("g", reg, [first, second])
    # As GroupWorker does after a failed batch: one event at a time.
    assert handle_once("g", reg, first)
    with pytest.raises(RuntimeError):
        handle_once("g", reg, second)
    assert handle_once("g", reg, first) is False  # delivered again: already handled
    sent = [body["text"]["body"] for _, body in saas.state.applied_of("whatsapp")]
    assert sent == ["first"]
    assert len([r for r in saas.state.requests if r[1].endswith("/messages")]) == 1
