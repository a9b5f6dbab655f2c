"""A tenant's integration URLs cannot reach the platform's own services or any inward address,
in any spelling, when saved or when used; what such a call answered is never shown.

The "internal service" here is a real HTTP server on loopback that counts what reaches it: a
refused call must leave it untouched. The platform's own ClickHouse and OpenBao are the real
ones the suite runs against.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from integrations.http import EgressRefusedError
from smarteros.errors import UpstreamError
from tenants.scope import dangerously_unscoped

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "SECRET-ROW acme 4242"

# 127.0.0.1 (and the other inward addresses) as a tenant may spell it.
SPELLINGS = [
    "localhost",
    "127.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "0.0.0.0",
    "169.254.169.254",
    "10.0.0.1",
]
# A name that resolves inward: the machine's own (to loopback, or to its private address).
_OWN_NAME = socket.gethostname()
try:
    if not any(
        ipaddress.ip_address(info[4][0]).is_global for info in socket.getaddrinfo(_OWN_NAME, 80)
    ):
        SPELLINGS.append(_OWN_NAME)
except OSError:
    pass

URL_FIELDS = [
    ("n8n", "base_url"),
    ("shopify", "api_base_url"),
    ("whatsapp", "api_base_url"),
    ("whatsapp", "llm_base_url"),
    ("llm", "base_url"),
]


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with `status` and `body`, or redirects to `location`; counts hits."""

    def _answer(self) -> None:
        server: Any = self.server
        server.hits.append(self.path)
        if server.location:
            self.send_response(307)
            self.send_header("Location", server.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = server.body.encode()
        self.send_response(server.status)
        self.send_header("Content-Type", server.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def recorder(
    host: str = "127.0.0.1",
    *,
    status: int = 200,
    body: str = SECRET,
    content_type: str = "text/plain",
    location: str = "",
) -> Any:
    server: Any = http.server.ThreadingHTTPServer((host, 0), Recorder)
    server.hits, server.status, server.body = [], status, body
    server.content_type, server.location = content_type, location
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.port = server.server_address[1]
    return server


@pytest.fixture
def internal() -> Iterator[Any]:
    """A service on loopback with something worth stealing."""
    server = recorder()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_allowance(settings: Any) -> None:
    """As in production: no network allowed beyond the public ones."""
    settings.EGRESS_ALLOWED_NETWORKS = []


def connect_with(tenant: Any, provider: str, field: str, url: str) -> Any:
    from integrations.services import integration_connect

    config, credentials = {
        "n8n": ({}, {"api_key": "k"}),
        "shopify": ({"shop_domain": f"{tenant.slug}.myshopify.com"}, {"access_token": "t"}),
        "whatsapp": ({"phone_number_id": "106540352242922"}, {"access_token": "t"}),
        "llm": ({}, {"api_key": "k"}),
    }[provider]
    return integration_connect(
        tenant=tenant, provider=provider, config={**config, field: url}, credentials=credentials
    )


def store_unchecked(tenant: Any, kind: str, **config: str) -> None:
    """Write settings straight into the stored connection, as a row saved before the check."""
    from integrations.models import IntegrationConnection

    with dangerously_unscoped():
        connection = IntegrationConnection.objects.get(tenant=tenant, provider=kind)
        IntegrationConnection.objects.filter(pk=connection.pk).update(
            config={**connection.config, **config}
        )


def call(tk: Any, name: str, args: dict[str, Any]) -> Any:
    from mcp_tools.auth import principal_from_api_key
    from mcp_tools.executor import execute

    return execute(name, args, principal=principal_from_api_key(tk.key), surface="rest")


@pytest.mark.parametrize(("provider", "field"), URL_FIELDS)
def test_every_spelling_of_an_inward_address_is_refused_when_saved(
    make_tenant: Any, no_allowance: None, internal: Any, provider: str, field: str
) -> None:
    tenant = make_tenant(f"eg{secrets.token_hex(3)}").tenant
    for host in SPELLINGS:
        for url in (f"http://{host}:{internal.port}/", f"https://{host}/v1"):
            with pytest.raises(ValueError, match=f"^{field} is refused: ") as refused:
                connect_with(tenant, provider, field, url)
            assert host.strip("[]").lower() in str(refused.value), url
    for url, reason in (
        ("http://127.0.0.1:8123/?query=SELECT%201#", "platform's own services"),
        ("ftp://files.example.com/", "must be http(s)"),
        ("http://user:pw@api.example.com/", "credentials in the URL"),
        ("http://api.example.com:99999/", "cannot be parsed"),
    ):
        with pytest.raises(ValueError, match=f"^{field} is refused: .*{re.escape(reason)}"):
            connect_with(tenant, provider, field, url)
    with dangerously_unscoped():
        assert not tenant.integrations.exists()
    assert internal.hits == []


def test_the_platforms_own_services_stay_refused_inside_the_allowance(
    make_tenant: Any, settings: Any
) -> None:
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    tenant = make_tenant(f"eg{secrets.token_hex(3)}").tenant
    vault_port = urlsplit(settings.VAULT_ADDR).port
    for url in (
        "http://127.1:8123/?database=smarteros&query=SELECT%201#",
        "http://0x7f000001:8123/",
        "http://2130706433:8123/",
        "http://[::ffff:127.0.0.1]:8123/",
        "http://127.0.0.2:8123/",  # ClickHouse listens beyond 127.0.0.1 too
        f"http://localhost:{vault_port}/v1/sys/mounts#",
        f"http://127.1:{vault_port}/v1/sys/mounts#",
        f"http://[::1]:{vault_port}/",
    ):
        with pytest.raises(ValueError, match="one of the platform's own services"):
            connect_with(tenant, "n8n", "base_url", url)


def test_urls_stored_before_the_check_are_refused_when_used(
    make_tenant: Any, connect: Any, saas: Any, no_allowance: None, internal: Any
) -> None:
    """Each path a tenant drives: an n8n trigger (an effect), WhatsApp's test connection,
    the bot's LLM (the Anthropic SDK) and Shopify reads."""
    from integrations.llm.services import llm_reply
    from integrations.probe import integration_probe

    tk = make_tenant(f"eg{secrets.token_hex(3)}")
    tenant = tk.tenant
    # Connected while the stand-in was allowed, then changed behind the check's back.
    with pytest.MonkeyPatch.context() as patch:
        from django.conf import settings

        patch.setattr(settings, "EGRESS_ALLOWED_NETWORKS", ["127.0.0.1/32"])
        for provider in ("n8n", "whatsapp", "shopify"):
            connect(tenant, provider, saas.url)
    for host in SPELLINGS:
        url = f"http://{host}:{internal.port}"
        store_unchecked(tenant, "n8n", base_url=url)
        store_unchecked(tenant, "whatsapp", api_base_url=url, llm_base_url=url)
        store_unchecked(tenant, "shopify", api_base_url=url)

        triggered = call(tk, "n8n_trigger_workflow", {"webhook_path": "orders", "payload": {}})
        assert triggered.ok, triggered.error
        effect = call(
            tk, "agent_get_effect", {"effect_id": triggered.output["effect"]["effect_id"]}
        ).output
        # Refused once, not retried: another attempt cannot pass.
        assert effect["state"] == "failed" and effect["attempts"] == 1, effect
        assert "base_url: n8n may not be reached there" in effect["last_error"]

        with pytest.raises(EgressRefusedError, match=r"api_base_url: .* may not be reached"):
            integration_probe(tenant=tenant, provider="whatsapp")

        with pytest.raises(EgressRefusedError, match="base_url: Anthropic may not be reached"):
            llm_reply(
                tenant=tenant,
                system="s",
                messages=[{"role": "user", "content": "hi"}],
                origin="test",
                trace_id="t",
            )

        product = call(
            tk, "shopify_get_product", {"product_id": "gid://shopify/Product/1", "fresh": True}
        )
        assert product.error is not None and product.error.http_status == 403, product.error
        assert "api_base_url: Shopify may not be reached there" in product.error.message
    assert internal.hits == []


def test_a_redirect_to_a_refused_address_is_not_followed(
    make_tenant: Any, connect: Any, saas: Any, settings: Any, internal: Any
) -> None:
    from integrations.probe import integration_probe
    from smarteros.infra.egress import EgressRefused, egress_client

    redirector = recorder("127.0.0.2", location=f"http://127.0.0.1:{internal.port}/steal")
    try:
        settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
        tenant = make_tenant(f"eg{secrets.token_hex(3)}").tenant
        connect(tenant, "n8n", saas.url)
        settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.2/32"]
        store_unchecked(tenant, "n8n", base_url=f"http://127.0.0.2:{redirector.port}")
        # Provider calls follow no redirect: the 307 is a failure that names its status.
        with pytest.raises(UpstreamError, match=r"HTTP 307"):
            integration_probe(tenant=tenant, provider="n8n")
        # A caller that follows redirects gets each hop checked before it connects.
        for target in (
            f"http://127.0.0.1:{internal.port}/steal",
            "http://2130706433:8123/?query=SELECT%201",
            "http://169.254.169.254/latest/meta-data/",
        ):
            redirector.location = target
            with pytest.raises(EgressRefused):
                egress_client().get(f"http://127.0.0.2:{redirector.port}/", follow_redirects=True)
        assert len(redirector.hits) == 4 and internal.hits == []
        # The same redirect is followed once its target is allowed.
        redirector.location = f"http://127.0.0.1:{internal.port}/fine"
        settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.2/32", "127.0.0.1/32"]
        response = egress_client().get(
            f"http://127.0.0.2:{redirector.port}/", follow_redirects=True
        )
        assert response.status_code == 200 and internal.hits == ["/fine"]
    finally:
        redirector.shutdown()
        redirector.server_close()


def test_an_oversized_answer_is_cut_off(settings: Any) -> None:
    from smarteros.infra.egress import ResponseTooLarge, egress_client

    big = recorder(body="x" * 200_000)
    try:
        settings.EGRESS_MAX_RESPONSE_BYTES = 65536
        with pytest.raises(ResponseTooLarge, match="larger than 65536 bytes"):
            egress_client().get(f"http://127.0.0.1:{big.port}/")
    finally:
        big.shutdown()
        big.server_close()


def test_what_a_provider_answered_is_never_echoed(make_tenant: Any) -> None:
    """A test connection, an effect and an LLM reply against a service that answers with data
    worth stealing: the page, the audit trail and every error show its status only."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from integrations.llm.errors import LlmInvalidRequest
    from integrations.llm.services import llm_reply
    from tenants.models import AuditEvent, Membership

    leaky = recorder(status=500, body=f"<pre>{SECRET}</pre>" * 20)
    llm = recorder(
        status=400,
        content_type="application/json",
        body=json.dumps({"error": {"type": "invalid_request_error", "message": SECRET}}),
    )
    try:
        tk = make_tenant(f"eg{secrets.token_hex(3)}")
        tenant = tk.tenant
        for provider, field in (("n8n", "base_url"), ("whatsapp", "api_base_url")):
            connect_with(tenant, provider, field, f"http://127.0.0.1:{leaky.port}")
        admin = get_user_model().objects.create_user(f"admin-{tenant.slug}", password="pw-x1!")
        with dangerously_unscoped():
            Membership.objects.create(user=admin, tenant=tenant, role="admin")
        client = Client()
        client.force_login(admin)
        for provider in ("n8n", "whatsapp"):
            page = client.post(f"/tenants/{tenant.slug}/integrations/{provider}/test/")
            text = page.content.decode()
            assert page.status_code == 200 and "Connection failed" in text
            assert "HTTP 500" in text and "SECRET" not in text

        triggered = call(tk, "n8n_trigger_workflow", {"webhook_path": "orders", "payload": {}})
        effect = call(
            tk, "agent_get_effect", {"effect_id": triggered.output["effect"]["effect_id"]}
        ).output
        assert "HTTP 500" in effect["last_error"] and "SECRET" not in effect["last_error"]

        connect_with(tenant, "llm", "base_url", f"http://127.0.0.1:{llm.port}/v1")
        store_unchecked(tenant, "llm", provider="openai_compatible")
        with pytest.raises(LlmInvalidRequest) as invalid:
            llm_reply(
                tenant=tenant,
                system="s",
                messages=[{"role": "user", "content": "hi"}],
                origin="test",
                trace_id="t",
            )
        assert (
            "HTTP 400" in invalid.value.message and "invalid_request_error" in invalid.value.message
        )
        assert "SECRET" not in invalid.value.message

        with dangerously_unscoped():
            answers = [
                json.dumps(details)
                for details in AuditEvent.objects.filter(
                    tenant=tenant, action="integration.test"
                ).values_list("details", flat=True)
            ]
        assert len(answers) == 2 and not any("SECRET" in answer for answer in answers)
    finally:
        for server in (leaky, llm):
            server.shutdown()
            server.server_close()
