"""Timestamps in webhooks go through the bounded parser: an unauthenticated Clerk delivery whose
svix-timestamp is `²` (byte 0xB2 on the wire) or 5,000 digits is a 401 like any bad signature,
and a correctly signed WhatsApp status dated in the year 33658 is a 400 naming the field; neither
is a 500, and neither stores anything."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from integrations.inbound import signing_secrets_forget
from integrations.models import WebhookDelivery
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped
from tests.fixtures.deliveries import (
    clerk_headers,
    clerk_user_created,
    dumps,
    meta_headers,
    post,
    whatsapp_status,
)

pytestmark = pytest.mark.django_db


def stored() -> tuple[int, int]:
    with dangerously_unscoped():
        return OutboxEvent.objects.count(), WebhookDelivery.objects.count()


@pytest.fixture
def shop(make_tenant: Any, connect: Any, saas: Any) -> Any:
    signing_secrets_forget()
    tenant = make_tenant(f"ts{secrets.token_hex(4)}", rate_limit=1_000_000).tenant
    for provider in ("clerk", "whatsapp"):
        connect(tenant, provider, saas.url)
    return tenant


def test_svix_timestamps_that_are_not_unix_seconds_are_401(web_server: str, shop: Any) -> None:
    body = dumps(clerk_user_created())
    before = stored()
    for stamp in (b"\xb2", b"\xb2\xb3", b"9" * 5000, b"99999999999999", b"-5", b"1e9"):
        headers = [
            (name.encode(), value.encode())
            for name, value in clerk_headers(body).items()
            if name != "svix-timestamp"
        ]
        response = httpx.post(
            f"{web_server}/hooks/clerk/{shop.slug}/",
            content=body,
            headers=[*headers, (b"svix-timestamp", stamp), (b"content-type", b"application/json")],
            timeout=30,
        )
        assert response.status_code == 401, (stamp[:10], response.status_code, response.text)
        assert set(response.json()) >= {"code", "message"}
    assert stored() == before


def test_whatsapp_status_time_beyond_2099_is_400_naming_the_field(shop: Any) -> None:
    before = stored()
    for stamp in ("999999999999", "4102444800"):
        payload = whatsapp_status(message_id="wamid.FAR", status="delivered")
        payload["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"] = stamp
        body = dumps(payload)
        response = post(f"/hooks/whatsapp/{shop.slug}/", body, meta_headers(body))
        assert response.status_code == 400, (stamp, response.status_code)
        assert "timestamp" in response.json()["message"]
    assert stored() == before
    # A real one (2025) is accepted.
    body = dumps(whatsapp_status(message_id="wamid.NEAR", status="delivered"))
    assert post(f"/hooks/whatsapp/{shop.slug}/", body, meta_headers(body)).status_code == 200
