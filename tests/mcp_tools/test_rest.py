"""The REST API generated from the registry: same auth, validation, errors and limits as MCP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def post(url: str, path: str, key: str | None, body: Any = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        f"{url}/api/v1/{path}", json=body if body is not None else {}, headers=headers, **kwargs
    )


def test_openapi_documents_every_operation(web_server: str) -> None:
    spec = httpx.get(f"{web_server}/api/v1/openapi.json").json()
    paths = {path for path in spec["paths"]}
    assert len(paths) == 26
    assert "/api/v1/shopify/get_product" in paths
    operation = spec["paths"]["/api/v1/shopify/get_product"]["post"]
    assert operation["operationId"] == "shopify_get_product"
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["product_id"]["pattern"].startswith("^gid://shopify/Product/")
    assert set(operation["responses"]) >= {"200", "401", "422", "429"}
    refs = str(spec)
    for name in spec["components"]["schemas"]:
        assert name in refs
    assert httpx.get(f"{web_server}/api/v1/docs").status_code == 200


def test_calls_validation_and_errors(web_server: str, make_tenant: Any) -> None:
    acme = make_tenant("acme")
    ok = post(web_server, "tenant/get_tenant", acme.key)
    assert ok.status_code == 200 and ok.json()["slug"] == "acme"
    bad = post(web_server, "tenant/update_tenant", acme.key, {"plan": "gold", "extra": 1})
    assert bad.status_code == 422
    fields = {d["field"]: d["rule"] for d in bad.json()["details"]}
    assert fields == {"plan": "literal_error", "extra": "extra_forbidden"}
    not_json = httpx.post(
        f"{web_server}/api/v1/tenant/update_tenant",
        content=b"{nope",
        headers={"Authorization": f"Bearer {acme.key}", "Content-Type": "application/json"},
    )
    assert not_json.status_code == 400 and not_json.json()["code"] == "malformed_request"
    not_connected = post(
        web_server, "shopify/get_product", acme.key, {"product_id": "gid://shopify/Product/1"}
    )
    assert not_connected.status_code == 409
    assert not_connected.json()["message"].startswith("shopify is not connected for tenant acme")


def test_auth_failures(web_server: str, make_tenant: Any) -> None:
    reader = make_tenant("acme", scopes=["tenant.read"])
    missing = post(web_server, "tenant/get_tenant", None)
    assert missing.status_code == 401 and missing.json()["code"] == "unauthenticated"
    assert post(web_server, "tenant/get_tenant", "sos_live_forged").status_code == 401
    forbidden = post(web_server, "tenant/update_tenant", reader.key, {"name": "x"})
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "permission_denied"
    assert "needs the scope tenant.admin" in forbidden.json()["message"]
    platform = post(web_server, "tenant/create_tenant", reader.key, {"slug": "abc", "name": "x"})
    assert platform.status_code == 403 and "platform.admin" in platform.json()["message"]


def test_rate_limit_answers_429_with_retry_after(web_server: str, make_tenant: Any) -> None:
    import secrets

    # A fresh tenant each run: the limiter's window outlives the test database.
    limited = make_tenant(f"rl{secrets.token_hex(4)}", rate_limit=3)
    statuses = [post(web_server, "tenant/get_tenant", limited.key).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    refused = post(web_server, "tenant/get_tenant", limited.key)
    assert 1 <= int(refused.headers["Retry-After"]) <= 61  # window + lease (tenants.ratelimit)
    assert "rate limit of 3 requests per minute" in refused.json()["message"]


def raw_post(url: str, path: str, key: str, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/{path}",
        content=content,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=60,
    )


def sessions() -> int:
    from mcp_tools.models import AgentSession
    from tenants.scope import dangerously_unscoped

    with dangerously_unscoped():
        return AgentSession.objects.count()


def test_hostile_bodies_get_4xx_and_change_nothing(web_server: str, make_tenant: Any) -> None:
    acme = make_tenant("acme")
    path = "agent/create_session"
    huge = raw_post(web_server, path, acme.key, b'{"label": "' + b"x" * 10_000_000 + b'"}')
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"
    for depth in (100, 1000, 100_000):
        for body in (
            b"[" * depth + b"]" * depth,
            b'{"label": "x", "metadata": ' + b'{"a":' * depth + b"1" + b"}" * (depth + 1),
        ):
            nested = raw_post(web_server, path, acme.key, body)
            # Within the parser's reach the executor names the limit (422); beyond it, 400.
            assert nested.status_code in (400, 422), (depth, nested.text)
            assert "nested" in nested.json()["message"]
    nul = post(web_server, path, acme.key, {"label": "a\x00b"})
    assert nul.status_code == 422
    assert nul.json()["details"] == [
        {"field": "label", "rule": "string_nul", "message": "must not contain NUL characters"}
    ]
    nul_inside = post(web_server, path, acme.key, {"label": "ok", "metadata": {"k": "\x00"}})
    assert nul_inside.status_code == 422
    assert nul_inside.json()["details"][0]["field"] == "metadata"
    assert "metadata.k" in nul_inside.json()["message"]
    not_utf8 = raw_post(web_server, path, acme.key, b'{"label": "\xff"}')
    assert not_utf8.status_code == 400
    assert sessions() == 0
    assert post(web_server, path, acme.key, {"label": "fine"}).status_code == 200


def test_refused_calls_count_against_the_rate_limit(web_server: str, make_tenant: Any) -> None:
    import secrets

    limited = make_tenant(f"rl{secrets.token_hex(4)}", rate_limit=3)
    refusals = [
        post(web_server, "agent/create_session", limited.key, {"label": ""}),
        raw_post(web_server, "agent/create_session", limited.key, b"{nope"),
        post(web_server, "agent/no_such_operation", limited.key),  # django-ninja's own 404
        post(web_server, "tenant/create_tenant", limited.key, {"slug": "abc", "name": "x"}),
    ]
    assert [r.status_code for r in refusals] == [422, 400, 404, 403]
    assert post(web_server, "tenant/get_tenant", limited.key).status_code == 429


def test_every_bad_key_gets_the_same_answer(web_server: str, make_tenant: Any) -> None:
    from tenants.models import Tenant
    from tenants.scope import dangerously_unscoped
    from tenants.services import api_key_revoke

    revoked, suspended = make_tenant("acme"), make_tenant("globex")
    with dangerously_unscoped():
        api_key_revoke(api_key=revoked.tenant.api_keys.get())
        Tenant.objects.filter(pk=suspended.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    from mcp_tools.auth_throttle import REFUSED_COUNTER
    from smarteros.infra.redis import get_redis

    refused_before = int(get_redis().get(REFUSED_COUNTER) or 0)
    answers = {
        post(web_server, "tenant/get_tenant", key).text
        for key in ("sos_live_unknown", revoked.key, suspended.key, "not-even-a-key")
    }
    assert len(answers) == 1
    assert "invalid API key" in answers.pop()
    assert int(get_redis().get(REFUSED_COUNTER) or 0) == refused_before + 4


def test_a_key_guessing_loop_is_throttled_per_address(web_server: str, make_tenant: Any) -> None:
    import random

    from django.conf import settings

    acme = make_tenant("acme")
    # Its own loopback source address, so no other test shares its count.
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, base_url=web_server) as client:

        def call(key: str) -> httpx.Response:
            return client.post(
                "/api/v1/tenant/get_tenant", json={}, headers={"Authorization": f"Bearer {key}"}
            )

        statuses = [
            call(f"sos_live_guess{i}").status_code
            for i in range(settings.AUTH_FAILURES_PER_MINUTE + 2)
        ]
        assert set(statuses[: settings.AUTH_FAILURES_PER_MINUTE]) == {401}
        assert statuses[-2:] == [429, 429]
        throttled = call("sos_live_again")
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) <= 60
        # A good key from the same address is not held back by someone else's guessing.
        assert call(acme.key).status_code == 200
    assert post(web_server, "tenant/get_tenant", "sos_live_other").status_code == 401


def test_published_schemas_say_what_validation_refuses(web_server: str, make_tenant: Any) -> None:
    """Found by schemathesis: input the OpenAPI schema allowed was refused, or input it forbade
    was accepted. Each rule is now in the schema, and validation holds to the schema."""
    acme = make_tenant("acme")
    spec = httpx.get(f"{web_server}/api/v1/openapi.json").json()["paths"]

    def body_schema(path: str) -> dict[str, Any]:
        return spec[f"/api/v1/{path}"]["post"]["requestBody"]

    # Header names of upstream credentials: no other key is allowed, and none is stored.
    credentials = body_schema("agent/register_mcp_server")["content"]["application/json"]
    assert credentials["schema"]["properties"]["credentials"]["additionalProperties"] is False
    foreign = post(
        web_server,
        "agent/register_mcp_server",
        acme.key,
        {"name": "up", "url": "https://mcp.example.com/", "credentials": {"bad key": "x"}},
    )
    assert foreign.status_code == 422
    # JSON types as the schema states them: true is no integer, "5" no number; 5.0 is 5.
    for wrong in (True, "5", 5.5):
        refused = post(web_server, "tenant/get_metrics", acme.key, {"window_minutes": wrong})
        assert refused.status_code == 422, wrong
        assert refused.json()["details"][0]["field"] == "window_minutes"
    whole = post(web_server, "tenant/get_metrics", acme.key, {"window_minutes": 5.0})
    assert whole.status_code == 200 and whole.json()["window_minutes"] == 5
    # Text is stripped before its length is checked: blanks only are refused, and said so.
    update = body_schema("tenant/update_tenant")
    assert update["content"]["application/json"]["schema"]["properties"]["name"]["pattern"]
    blank = post(web_server, "tenant/update_tenant", acme.key, {"name": "\u00a0 "})
    assert blank.status_code == 422 and blank.json()["details"][0]["field"] == "name"
    # An update needs a field: the schema requires a body with at least one property.
    assert update["required"] is True
    assert update["content"]["application/json"]["schema"]["minProperties"] == 1
    assert post(web_server, "tenant/update_tenant", acme.key, {}).status_code == 422
    # Operations whose fields are all optional may be called without a body; `null` is none.
    assert body_schema("tenant/get_tenant")["required"] is False
    headers = {"Authorization": f"Bearer {acme.key}", "Content-Type": "application/json"}
    no_body = httpx.post(f"{web_server}/api/v1/tenant/get_tenant", headers=headers)
    assert no_body.status_code == 200
    null = httpx.post(f"{web_server}/api/v1/tenant/get_tenant", content=b"null", headers=headers)
    assert null.status_code == 422 and null.json()["message"].startswith("body: ")
