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
    assert len(paths) == 24
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
    assert not_json.status_code == 422 and not_json.json()["code"] == "invalid_input"
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
    assert forbidden.status_code == 404 and forbidden.json()["code"] == "unknown_operation"
    assert (
        post(
            web_server, "tenant/create_tenant", reader.key, {"slug": "abc", "name": "x"}
        ).status_code
        == 404
    )


def test_rate_limit_answers_429_with_retry_after(web_server: str, make_tenant: Any) -> None:
    import secrets

    # A fresh tenant each run: the limiter's window outlives the test database.
    limited = make_tenant(f"rl{secrets.token_hex(4)}", rate_limit=3)
    statuses = [post(web_server, "tenant/get_tenant", limited.key).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    refused = post(web_server, "tenant/get_tenant", limited.key)
    assert 1 <= int(refused.headers["Retry-After"]) <= 61  # window + lease (tenants.ratelimit)
    assert "rate limit of 3 requests per minute" in refused.json()["message"]
