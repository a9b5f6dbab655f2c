"""Consumers handle each event id once per group, even when it comes twice in one batch."""

from __future__ import annotations

from typing import Any

import pytest

from smarteros.events.consumers import Registration, handle_batch_once
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
    assert not ProcessedEvent.objects.filter(group="g").exists()  # rolled back with the effects
    assert handle_batch_once("g", reg, events) == 2
    assert calls == [events[0].id, events[1].id, events[0].id, events[1].id]
