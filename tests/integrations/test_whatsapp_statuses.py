"""Status webhooks (sent, delivered, read, failed with its errors) recorded on the message they
are about, never going back, and published on the tenant's whatsapp.outbound topic; the
notification's metadata.phone_number_id must be the connected number."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.models import WhatsAppMessage
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped
from tests.fixtures.deliveries import dumps, meta_headers, post, whatsapp_status

pytestmark = pytest.mark.django_db(transaction=True)

TO = "+16505551234"  # the recipient_id of the status fixture


def call(tk: Any, name: str, args: dict[str, Any]) -> Any:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    return execute(name, args, principal=principal_from_api_key(tk.key), surface="rest")


@pytest.fixture
def shop(make_tenant: Any, connect: Any, saas: Any) -> Any:
    tk = make_tenant("statshop")
    connect(tk.tenant, "whatsapp", saas.url)
    return tk


def send(tk: Any, text: str) -> str:
    sent = call(tk, "whatsapp_send_message", {"to": TO, "text": text})
    assert sent.ok and sent.output["effect"]["state"] == "done", sent.output
    return str(sent.output["message_id"])


def notify(tk: Any, message_id: str, status: str, **kwargs: Any) -> Any:
    body = dumps(whatsapp_status(message_id=message_id, status=status, **kwargs))
    return post(f"/hooks/whatsapp/{tk.tenant.slug}/", body, meta_headers(body))


def message(tk: Any, message_id: str) -> WhatsAppMessage:
    with dangerously_unscoped():
        return WhatsAppMessage.objects.get(tenant=tk.tenant, provider_message_id=message_id)


def status_events(tk: Any) -> list[dict[str, Any]]:
    with dangerously_unscoped():
        rows = OutboxEvent.objects.filter(
            topic=f"{tk.tenant.slug}.whatsapp.outbound", event_type="whatsapp.message.status"
        ).order_by("id")
        payloads = [
            json.loads(r.payload) if isinstance(r.payload, str) else r.payload for r in rows
        ]
    return [p["data"] for p in payloads]


def test_statuses_are_stored_on_the_message_in_order(shop: Any) -> None:
    wamid = send(shop, "Your order shipped")
    assert message(shop, wamid).status == ""
    for status in ("sent", "delivered", "read"):
        assert notify(shop, wamid, status).json()["statuses"] == 1
        assert message(shop, wamid).status == status
    stored = message(shop, wamid)
    assert stored.status_at == datetime.fromtimestamp(1749416400, tz=UTC)
    assert stored.status_errors == []
    events = status_events(shop)
    assert [(e["status"], e["stored"], e["to"]) for e in events] == [
        ("sent", True, TO),
        ("delivered", True, TO),
        ("read", True, TO),
    ]
    assert events[0]["message_id"] == wamid and events[0]["timestamp"] == "1749416400"


def test_a_status_never_goes_back(shop: Any) -> None:
    wamid = send(shop, "Arrives out of order")
    for status in ("read", "delivered", "sent", "failed"):
        assert notify(shop, wamid, status).json()["accepted"] is True
    stored = message(shop, wamid)
    assert stored.status == "read" and stored.status_errors == []
    # Each is still published, saying it did not change the message.
    assert [(e["status"], e["stored"]) for e in status_events(shop)] == [
        ("read", True),
        ("delivered", False),
        ("sent", False),
        ("failed", False),
    ]


def test_a_failed_status_keeps_metas_errors_with_what_they_mean(shop: Any) -> None:
    wamid = send(shop, "Too late")
    notify(shop, wamid, "sent")
    notify(shop, wamid, "failed")
    stored = message(shop, wamid)
    assert stored.status == "failed"
    [error] = stored.status_errors
    assert error["code"] == 131047 and error["title"] == "Re-engagement message"
    assert "24 hours" in error["error_data"]["details"]
    [failed] = [e for e in status_events(shop) if e["status"] == "failed"]
    assert failed["errors"][0]["code"] == 131047
    assert "send a template" in failed["errors"][0]["advice"]
    # A repeat of the same status is a duplicate and changes nothing.
    assert notify(shop, wamid, "failed").json() == {"accepted": False, "duplicate": True}


def test_a_status_that_arrives_before_the_send_is_recorded_is_applied_when_it_is(
    shop: Any, saas: Any
) -> None:
    # Meta's webhook can beat the worker that records the send: the next wamid is wamid.1.
    assert notify(shop, "wamid.1", "delivered").json()["statuses"] == 1
    assert status_events(shop)[0]["stored"] is False
    wamid = send(shop, "Quick delivery")
    assert wamid == "wamid.1"
    assert message(shop, wamid).status == "delivered"
    notify(shop, wamid, "sent")  # late, and behind
    assert message(shop, wamid).status == "delivered"


def test_a_status_for_another_phone_number_is_refused_and_changes_nothing(shop: Any) -> None:
    wamid = send(shop, "Mine")
    refused = notify(shop, wamid, "read", phone_number_id="999999999999999")
    assert refused.status_code == 403
    assert "metadata.phone_number_id" in refused.json()["message"]
    assert message(shop, wamid).status == ""
    assert status_events(shop) == []


def test_inbound_messages_are_not_touched_by_a_status_with_their_id(shop: Any) -> None:
    from tests.fixtures.deliveries import whatsapp_text

    body = dumps(whatsapp_text(message_id="wamid.inbound.1"))
    assert (
        post(f"/hooks/whatsapp/{shop.tenant.slug}/", body, meta_headers(body)).json()["messages"]
        == 1
    )
    notify(shop, "wamid.inbound.1", "read")
    assert message(shop, "wamid.inbound.1").status == ""
