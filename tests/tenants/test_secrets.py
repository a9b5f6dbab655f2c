"""Credentials exist only as Vault ciphertext: not in a database dump, not on any Kafka topic,
not in logs; a ciphertext does not decrypt for another tenant; key rotation rewraps them all."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from typing import Any

import pytest
from django.db import connections

from mcp_tools.auth import principal_from_api_key
from mcp_tools.executor import execute
from smarteros.events.outbox import relay_batch
from smarteros.infra.kafka import admin_client, get_producer, get_telemetry_producer
from tenants.scope import dangerously_unscoped
from tests.fixtures.saas import LLM_KEY, N8N_KEY, SHOPIFY_TOKEN, WHATSAPP_TOKEN
from tests.mcp_tools.clients import LOOPBACK_ALLOWED, echo_http_server

pytestmark = pytest.mark.django_db(transaction=True)

UPSTREAM_SECRET = "upstream-" + uuid.uuid4().hex


def all_topic_bytes() -> bytes:
    """Every key, value and header on every topic of the broker."""
    from smarteros.events.backup import _consumer, read_partitions

    metadata = admin_client().list_topics(timeout=10)
    consumer = _consumer(None)
    seen = bytearray()
    try:
        everything = read_partitions(
            consumer, [(t, p) for t, info in metadata.topics.items() for p in info.partitions]
        )
        for records in everything.values():
            for record in records:
                for field in (record["key"], record["value"], *(v for _, v in record["headers"])):
                    seen += base64.b64decode(field) if field else b""
    finally:
        consumer.close()
    return bytes(seen)


def database_dump() -> bytes:
    db = connections["platform"].settings_dict
    return subprocess.run(
        [
            "pg_dump",
            "-h",
            db["HOST"],
            "-p",
            str(db["PORT"]),
            "-U",
            db["USER"],
            "--data-only",
            "--enable-row-security",
            db["NAME"],
        ],
        # As the platform role: the application's own login sees no tenant's rows.
        env={"PGPASSWORD": db["PASSWORD"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    ).stdout


def test_no_plaintext_secret_in_the_database_or_on_kafka(
    make_tenant: Any, connect: Any, saas: Any, caplog: Any, settings: Any
) -> None:
    acme = make_tenant("acme")
    settings.EGRESS_ALLOWED_NETWORKS = [LOOPBACK_ALLOWED["EGRESS_ALLOWED_NETWORKS"]]
    upstream = echo_http_server("--require-header", f"X-Upstream-Token={UPSTREAM_SECRET}")
    for provider in ("shopify", "whatsapp", "n8n"):
        connect(acme.tenant, provider, saas.url)
    principal = principal_from_api_key(acme.key)
    with caplog.at_level(logging.DEBUG):
        calls = [
            (
                "agent_register_mcp_server",
                {
                    "name": "up",
                    "url": f"http://127.0.0.1:{upstream.port}/mcp",
                    "credentials": {"X-Upstream-Token": UPSTREAM_SECRET},
                },
            ),
            ("agent_execute_tool", {"server": "up", "tool": "echo", "arguments": {"text": "hi"}}),
            ("shopify_get_product", {"product_id": "gid://shopify/Product/1000", "fresh": True}),
            (
                "whatsapp_process_inbound",
                {"from_phone": "+14155550123", "text": "hello", "message_id": "w1"},
            ),
            ("whatsapp_create_bot_response", {"phone": "+14155550123"}),
            ("n8n_list_workflows", {}),
        ]
        try:
            for name, args in calls:
                result = execute(name, args, principal=principal, surface="rest")
                assert result.ok, (name, result.error and result.error.message)
        finally:
            upstream.stop()
        while relay_batch():
            pass
        get_producer().flush(10)
        get_telemetry_producer().flush(10)
    secrets = [SHOPIFY_TOKEN, WHATSAPP_TOKEN, N8N_KEY, LLM_KEY, UPSTREAM_SECRET, acme.key]
    dump, topics = database_dump(), all_topic_bytes()
    assert b"vault:v" in dump  # the credentials are there, as ciphertext
    assert b"acme.shopify.products" in dump and b"gid://shopify/Product/1000" in topics
    logs = caplog.text
    for secret in secrets:
        assert secret.encode() not in dump, secret
        assert secret.encode() not in topics, secret
        assert secret not in logs, secret


def test_ciphertext_is_bound_to_tenant_and_purpose(make_tenant: Any) -> None:
    from smarteros.errors import DependencyUnavailable
    from tenants.secrets import secret_decrypt, secret_encrypt

    make_tenant("acme"), make_tenant("globex")
    ciphertext = secret_encrypt(
        slug="acme", purpose="integration:shopify", value={"access_token": "t0p"}
    )
    assert secret_decrypt(slug="acme", purpose="integration:shopify", ciphertext=ciphertext) == {
        "access_token": "t0p"
    }
    for slug, purpose in (("globex", "integration:shopify"), ("acme", "integration:n8n")):
        with pytest.raises(Exception) as failure:
            secret_decrypt(slug=slug, purpose=purpose, ciphertext=ciphertext)
        assert not isinstance(failure.value, DependencyUnavailable)


def test_vault_down_is_a_clear_error_and_nothing_is_stored(make_tenant: Any, settings: Any) -> None:
    from integrations.models import IntegrationConnection

    acme = make_tenant("acme")
    settings.VAULT_ADDR = "http://127.0.0.1:1"
    result = execute(
        "agent_register_mcp_server",
        {
            "name": "up",
            "transport": "http",
            "url": "https://upstream.example.com/mcp",
            "credentials": {"A": "b"},
        },
        principal=principal_from_api_key(acme.key),
        surface="rest",
    )
    assert result.error is not None and result.error.http_status == 503
    assert "Vault is unavailable" in result.error.message
    with dangerously_unscoped():
        from mcp_tools.models import UpstreamServer

        assert UpstreamServer.objects.count() == 0
        assert IntegrationConnection.objects.count() == 0


def test_log_lines_and_sentry_events_are_scrubbed() -> None:
    from smarteros.observability import _before_send
    from smarteros.scrub import scrub_text

    line = f"calling with {SHOPIFY_TOKEN} and Bearer abc.def.ghijkl and sos_live_{'x' * 20}"
    scrubbed = scrub_text(line)
    assert (
        SHOPIFY_TOKEN not in scrubbed
        and "abc.def.ghijkl" not in scrubbed
        and "sos_live_xxxx" not in scrubbed
    )
    event = {
        "request": {
            "headers": {
                "Authorization": "Bearer zzzzzzzzzz",
                "X-Shopify-Access-Token": SHOPIFY_TOKEN,
            }
        },
        "extra": {"note": f"token {WHATSAPP_TOKEN}"},
    }
    cleaned = _before_send(event, {})
    assert (
        SHOPIFY_TOKEN not in str(cleaned)
        and WHATSAPP_TOKEN not in str(cleaned)
        and "zzzzzzzzzz" not in str(cleaned)
    )


def test_rotate_keys_rewraps_every_ciphertext(make_tenant: Any, connect: Any, saas: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    from integrations.connections import connection_credentials
    from integrations.models import IntegrationConnection

    acme = make_tenant("acme")
    connect(acme.tenant, "shopify", saas.url)
    with dangerously_unscoped():
        before = IntegrationConnection.objects.get().credentials_ciphertext
    out = StringIO()
    call_command("rotate_keys", "--tenant", "acme", stdout=out)
    assert "1 ciphertexts rewrapped" in out.getvalue()
    with dangerously_unscoped():
        connection_row = IntegrationConnection.objects.select_related("tenant").get()
    after = connection_row.credentials_ciphertext
    assert after != before and int(after.split(":")[1][1:]) > int(before.split(":")[1][1:])
    assert connection_credentials(connection_row)["access_token"] == SHOPIFY_TOKEN
