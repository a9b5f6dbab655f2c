"""The CEL examples of docs/topic-viewer.md (where the README sends readers for the topic
viewer), read out of the page so they cannot drift, each run with the viewer's own filter over
records built the way the product publishes and the viewer shows them: the envelope a service
emits, the relay's headers, the key, and the viewer's masking. Each example must match the
realistic event it is written for, leave a near miss alone, and raise no runtime error there."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from integrations.shopify.schemas import product_from_graphql
from smarteros.events.outbox import tenant_event
from smarteros.events.schemas import validate_event_data
from telemetry.topics.filters import compile_filter
from telemetry.topics.masking import Masker
from telemetry.topics.records import message_record
from tenants.models import Tenant
from tests.fixtures.deliveries import shopify_order
from tests.processes import ROOT

PAGE = ROOT / "docs" / "topic-viewer.md"
EXAMPLE = re.compile(r"^  - `(?P<cel>[^`]+)` on `(?P<topic>[a-z0-9_.]+)`")
NOW_MS = int(time.time() * 1000)


def documented_examples() -> list[tuple[str, str]]:
    """(expression, topic) of each example listed under "Examples" in the CEL paragraph."""
    text = PAGE.read_text()
    block = text[text.index("Examples, each with the topic") :].split("\n\n", 1)[0]
    found = [(m["cel"], m["topic"]) for m in map(EXAMPLE.match, block.splitlines()) if m]
    assert len(found) >= 4, block
    return found


@dataclass
class Published:
    """A message as the broker hands it to the viewer (confluent-kafka's Message accessors)."""

    topic_: str
    key_: str
    value_: bytes
    headers_: list[tuple[str, bytes]] = field(default_factory=list)
    partition_: int = 1
    offset_: int = 41
    timestamp_: int = NOW_MS

    def topic(self) -> str:
        return self.topic_

    def key(self) -> bytes:
        return self.key_.encode()

    def value(self) -> bytes:
        return self.value_

    def headers(self) -> list[tuple[str, bytes]]:
        return self.headers_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def timestamp(self) -> tuple[int, int]:
        return (1, self.timestamp_)


TENANT = Tenant(slug="acme")


def event(topic: str, event_type: str, data: dict[str, Any], key: str, *, source: str) -> Any:
    """The record the viewer shows for an event a service emits (its data checked against the
    event type's schema), as the relay publishes it: key, envelope, event-type and tenant."""
    validate_event_data(event_type, data)
    name, envelope, key = tenant_event(
        tenant=TENANT,
        topic=topic,
        event_type=event_type,
        data=data,
        key=key,
        source=source,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )
    message = Published(
        name,
        key,
        envelope.to_bytes(),
        [("event-type", event_type.encode()), ("tenant", b"acme")],
    )
    return message_record(message, Masker(tenant_slug="acme"))


def shopify_webhook(topic: str, payload: dict[str, Any]) -> Any:
    data = {
        "topic": topic,
        "webhook_id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "payload": payload,
    }
    key = payload["admin_graphql_api_id"]
    return event("shopify.webhooks", "shopify.webhook.received", data, key, source="shopify")


def product(status: str) -> Any:
    node = {
        "id": "gid://shopify/Product/108828309",
        "title": "Draft Mug",
        "handle": "draft-mug",
        "status": status,
        "totalInventory": 12,
        "variants": {"nodes": [{"id": "gid://shopify/ProductVariant/1", "price": "19.00"}]},
    }
    data = product_from_graphql(node).model_dump()
    return event("shopify.products", "shopify.product.snapshot", data, data["id"], source="shopify")


def whatsapp(text: str) -> Any:
    phone = "+16505551234"
    data = {
        "from": phone,
        "text": text,
        "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
        "kind": "text",
        "content": {"body": text},
    }
    return event("whatsapp.inbound", "whatsapp.message.received", data, phone, source="whatsapp")


def n8n_result(**reply: str) -> Any:
    data = {"workflow": "order-confirmation", "execution_id": "5021", **reply}
    key = reply.get("whatsapp_to") or "order-confirmation"
    return event("n8n.automation.result", "n8n.workflow.result", data, key, source="n8n")


small_order = {**shopify_order(820982911946154509), "total_price": "12.50"}
small_order["line_items"] = [{"id": 1, "quantity": 1, "sku": "MUG-1"}]

# Per topic: an event each example on that topic is written to match, then a near miss.
RECORDS = {
    "shopify.webhooks": [
        shopify_webhook("orders/create", shopify_order()),  # total_price "403.00", IPOD-342-N
        shopify_webhook("orders/create", small_order),
    ],
    "whatsapp.inbound": [
        whatsapp("Hi, I would like a refund for order #9999"),
        whatsapp("Does it come in another color?"),
    ],
    "shopify.products": [product("DRAFT"), product("ACTIVE")],
    "n8n.automation.result": [
        n8n_result(whatsapp_to="+14155550100", whatsapp_text="Your order #9999 is confirmed."),
        n8n_result(),
    ],
}


@pytest.mark.parametrize(("cel", "topic"), documented_examples())
def test_each_documented_example_matches_the_event_it_is_written_for(cel: str, topic: str) -> None:
    wanted, near_miss = RECORDS[topic]
    shown = json.dumps(wanted["value"], ensure_ascii=False)
    assert "••" in shown or topic != "whatsapp.inbound", "the filter sees the masked record"
    matching = compile_filter(cel_source=cel)
    assert matching.select([wanted, near_miss]) == [True, False], (cel, near_miss["value"])
    assert matching.runtime_errors == 0, matching.last_error


def test_the_old_first_example_matched_no_shopify_order() -> None:
    """What the page used to lead with: Shopify's order has no `total`, and a string amount
    does not compare with a number, so it matched nothing."""
    old = compile_filter(cel_source="value.data.total > 100")
    assert old.select(RECORDS["shopify.webhooks"]) == [False, False]
    assert old.last_error == "no such key: total"
