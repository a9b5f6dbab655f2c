"""Clerk's webhooks at /hooks/clerk/<tenant>/, signed by Svix: real event payloads from Clerk's
documentation, signatures computed here from Svix's documented scheme, through the same checks
as every provider (source, size, connection and signature, rate limit, shape, instance), once
per svix-id, into `{tenant}.clerk.auth.events` through the outbox."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.inbound import UNVERIFIED_MESSAGE, refused_count, signing_secrets_forget
from integrations.models import IntegrationConnection, WebhookDelivery
from smarteros.models import OutboxEvent
from tenants.scope import dangerously_unscoped
from tests.fixtures.deliveries import (
    CLERK_SIGNING_SECRET,
    clerk_headers,
    clerk_session_created,
    clerk_user_created,
    clerk_user_deleted,
    dumps,
    post,
    svix_signature,
)

pytestmark = pytest.mark.django_db(transaction=True)

OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # another endpoint's secret


@pytest.fixture(autouse=True)
def _fresh_secret_cache() -> Iterator[None]:
    signing_secrets_forget()
    yield
    signing_secrets_forget()


@pytest.fixture
def app(make_tenant: Any, connect: Any, saas: Any) -> Any:
    """A tenant whose Clerk instance sends webhooks here."""
    tenant = make_tenant(f"ck{secrets.token_hex(4)}").tenant
    connect(tenant, "clerk", saas.url)
    return tenant


def url(tenant: Any) -> str:
    return f"/hooks/clerk/{tenant.slug}/"


def clerk_events(tenant: Any) -> list[dict[str, Any]]:
    with dangerously_unscoped():
        rows = OutboxEvent.objects.filter(topic=f"{tenant.slug}.clerk.auth.events").order_by("id")
        return [json.loads(r.payload) if isinstance(r.payload, str) else r.payload for r in rows]


def stored() -> tuple[int, int]:
    with dangerously_unscoped():
        return OutboxEvent.objects.count(), WebhookDelivery.objects.count()


def refused(response: Any, status: int, reason: str, before: tuple[int, int], count: int) -> str:
    assert response.status_code == status, response.content[:300]
    assert refused_count("clerk", reason) == count + 1
    assert stored() == before
    return str(response.json()["message"])


def test_a_user_created_event_lands_on_the_tenants_topic_once(app: Any) -> None:
    body = dumps(clerk_user_created())
    headers = clerk_headers(body, msg_id="msg_2ZWvJyZBbPfJpFWHhPrYrLcZ1dD")
    accepted = post(url(app), body, headers)
    assert accepted.status_code == 200 and accepted.json()["accepted"] is True
    assert post(url(app), body, headers).json() == {"accepted": False, "duplicate": True}
    [event] = clerk_events(app)
    assert event["type"] == "clerk.webhook.received" and event["tenant"] == app.slug
    assert event["id"] == accepted.json()["event_id"]
    data = event["data"]
    assert data["type"] == "user.created"
    assert data["svix_id"] == "msg_2ZWvJyZBbPfJpFWHhPrYrLcZ1dD"
    assert data["instance_id"] == "ins_2RbcDjcvAMS6zbMXPh0PZbIhR4E"
    assert data["timestamp"] == 1654012591835
    assert data["data"]["id"] == "user_29w83sxmDNGwOuEthce5gg56FcC"
    assert data["data"]["email_addresses"][0]["email_address"] == "example@example.org"
    with dangerously_unscoped():
        [row] = OutboxEvent.objects.filter(topic=f"{app.slug}.clerk.auth.events")
    assert row.key == "user_29w83sxmDNGwOuEthce5gg56FcC"  # a user's events stay in order


def test_session_and_deletion_events_are_keyed_by_their_user(app: Any) -> None:
    for payload in (clerk_session_created(), clerk_user_deleted()):
        body = dumps(payload)
        assert post(url(app), body, clerk_headers(body)).json()["accepted"] is True
    with dangerously_unscoped():
        keys = list(
            OutboxEvent.objects.filter(topic=f"{app.slug}.clerk.auth.events")
            .order_by("id")
            .values_list("key", flat=True)
        )
    assert keys == ["user_29w83sxmDNGwOuEthce5gg56FcC"] * 2
    assert [e["data"]["type"] for e in clerk_events(app)] == ["session.created", "user.deleted"]


def test_any_of_several_signatures_passes_as_during_a_secret_rotation(app: Any) -> None:
    body = dumps(clerk_user_created())
    stamp = int(time.time())
    old = svix_signature(OTHER_SECRET, "msg_rotation1", str(stamp), body)
    headers = clerk_headers(
        body, msg_id="msg_rotation1", timestamp=stamp, extra_signatures=(old, "v1a,ed25519sig")
    )
    assert headers["svix-signature"].count(" ") == 2
    assert post(url(app), body, headers).json()["accepted"] is True


def test_a_timestamp_within_five_minutes_either_way_passes(app: Any) -> None:
    for offset in (-290, 290):
        body = dumps(clerk_user_created())
        headers = clerk_headers(body, timestamp=int(time.time()) + offset)
        assert post(url(app), body, headers).json()["accepted"] is True, offset


@pytest.mark.parametrize("offset", [-360, 360])
def test_a_timestamp_beyond_five_minutes_is_refused_as_a_replay(app: Any, offset: int) -> None:
    before, count = stored(), refused_count("clerk", "stale_timestamp")
    body = dumps(clerk_user_created())
    headers = clerk_headers(body, timestamp=int(time.time()) + offset)
    message = refused(post(url(app), body, headers), 401, "stale_timestamp", before, count)
    assert message == UNVERIFIED_MESSAGE  # the reason is the counter's and the log line's


def test_forged_and_tampered_deliveries_are_401_and_leave_nothing(app: Any) -> None:
    body = dumps(clerk_user_created())
    cases = [
        clerk_headers(body, secret=OTHER_SECRET),  # another endpoint's secret
        {**clerk_headers(body), "svix-signature": ""},
        {**clerk_headers(body), "svix-timestamp": "yesterday"},
        # The signature of this body under another svix-id: the id is signed too.
        {**clerk_headers(body, msg_id="msg_original"), "svix-id": "msg_replayed"},
    ]
    for headers in cases:
        before, count = stored(), refused_count("clerk", "bad_signature")
        refused(post(url(app), body, headers), 401, "bad_signature", before, count)
    tampered = body.replace(b"example@example.org", b"attacker@example.org")
    before, count = stored(), refused_count("clerk", "bad_signature")
    refused(post(url(app), tampered, clerk_headers(body)), 401, "bad_signature", before, count)


def test_a_delivery_without_svix_id_is_unsigned_and_one_not_an_event_is_400(app: Any) -> None:
    body = dumps(clerk_user_created())
    headers = {k: v for k, v in clerk_headers(body).items() if k != "svix-id"}
    before, count = stored(), refused_count("clerk", "bad_signature")
    message = refused(post(url(app), body, headers), 401, "bad_signature", before, count)
    assert message == UNVERIFIED_MESSAGE  # the id is part of what is signed
    not_event = dumps({**clerk_user_created(), "object": "user"})
    before, count = stored(), refused_count("clerk", "bad_payload")
    message = refused(
        post(url(app), not_event, clerk_headers(not_event)), 400, "bad_payload", before, count
    )
    assert "body.object" in message


def test_another_clerk_instances_event_is_403(app: Any) -> None:
    body = dumps(clerk_user_created(instance_id="ins_SomeoneElse"))
    before, count = stored(), refused_count("clerk", "foreign_delivery")
    message = refused(
        post(url(app), body, clerk_headers(body)), 403, "foreign_delivery", before, count
    )
    assert "instance_id" in message


def test_a_tenant_without_a_clerk_connection_accepts_nothing(make_tenant: Any) -> None:
    tenant = make_tenant(f"nock{secrets.token_hex(3)}").tenant
    body = dumps(clerk_user_created())
    before, count = stored(), refused_count("clerk", "not_connected")
    refused(post(url(tenant), body, clerk_headers(body)), 401, "not_connected", before, count)


def test_the_signing_secret_is_stored_only_as_vault_ciphertext_and_checked(
    make_tenant: Any,
) -> None:
    from integrations.services import integration_connect

    tenant = make_tenant(f"sec{secrets.token_hex(3)}").tenant
    saved = integration_connect(
        tenant=tenant,
        provider="clerk",
        config={},
        credentials={"signing_secret": CLERK_SIGNING_SECRET},
    )
    with dangerously_unscoped():
        row = IntegrationConnection.objects.get(pk=saved.pk)
    assert row.credentials_ciphertext.startswith("vault:")
    assert CLERK_SIGNING_SECRET.removeprefix("whsec_") not in row.credentials_ciphertext
    assert row.external_id == ""  # no instance_id: any instance signing with the secret
    body = dumps(clerk_user_created(instance_id="ins_AnyInstance"))
    assert post(url(tenant), body, clerk_headers(body)).json()["accepted"] is True
    with pytest.raises(ValueError, match="signing_secret"):
        integration_connect(
            tenant=tenant,
            provider="clerk",
            config={},
            credentials={"signing_secret": "whsec_not base64!"},
        )
    with pytest.raises(ValueError, match="instance_id"):
        integration_connect(
            tenant=tenant,
            provider="clerk",
            config={"instance_id": "https://evil.example"},
            credentials={"signing_secret": CLERK_SIGNING_SECRET},
        )


def test_the_connection_test_checks_the_stored_secret(app: Any) -> None:
    from integrations.probe import integration_probe

    assert "valid whsec_ secret" in integration_probe(tenant=app, provider="clerk")


def test_signatures_agree_with_the_svix_library() -> None:
    """Svix's own verifier (PyPI `svix`), when installed, as an oracle for the scheme."""
    svix_webhooks = pytest.importorskip("svix.webhooks")
    from integrations.clerk.signatures import svix_problem

    body = dumps(clerk_user_created())
    headers = clerk_headers(body)
    svix_webhooks.Webhook(CLERK_SIGNING_SECRET).verify(body, headers)
    assert svix_problem(CLERK_SIGNING_SECRET, body, headers) is None


def test_the_size_limit_comes_before_any_secret_and_the_rate_limit_after_the_signature(
    make_tenant: Any, connect: Any, saas: Any, settings: Any
) -> None:
    tenant = make_tenant(f"lim{secrets.token_hex(3)}", rate_limit=2).tenant
    connect(tenant, "clerk", saas.url)
    vault, settings.VAULT_ADDR = settings.VAULT_ADDR, "http://127.0.0.1:9"  # 413 needs no Vault
    settings.WEBHOOK_MAX_BODY_BYTES = 2048
    big = dumps({**clerk_user_created(), "padding": "x" * 4096})
    before, count = stored(), refused_count("clerk", "too_large")
    refused(post(url(tenant), big, clerk_headers(big)), 413, "too_large", before, count)
    settings.VAULT_ADDR = vault
    body = dumps(clerk_user_created())
    for _ in range(3):  # forged: charged to their source, not to the tenant's 2 a minute
        forged = {**clerk_headers(body), "svix-signature": "v1,Z3Vlc3M="}
        assert post(url(tenant), body, forged).status_code == 401
    for _ in range(2):
        signed = dumps(clerk_user_created())
        assert post(url(tenant), signed, clerk_headers(signed)).json()["accepted"] is True
    before, count = stored(), refused_count("clerk", "rate_limited")
    limited = post(url(tenant), body, clerk_headers(body))
    refused(limited, 429, "rate_limited", before, count)
    assert int(limited.headers["Retry-After"]) >= 1


def test_the_event_reaches_the_tenants_kafka_topic_through_the_relay(broker: Any, app: Any) -> None:
    """A tenant provisioned before Clerk joined has no clerk topic: the relay creates it from
    the catalog and publishes the event there, keyed by the user."""
    from smarteros.events.outbox import relay_batch
    from tests.smarteros.backbone import read_all

    body = dumps(clerk_user_created())
    assert post(url(app), body, clerk_headers(body)).json()["accepted"] is True
    assert relay_batch(flush_timeout=10) >= 1
    [message] = read_all(f"{app.slug}.clerk.auth.events", expected=1)
    assert message.key() == b"user_29w83sxmDNGwOuEthce5gg56FcC"
    envelope = json.loads(message.value())
    assert envelope["type"] == "clerk.webhook.received" and envelope["tenant"] == app.slug
    assert envelope["data"]["type"] == "user.created"
