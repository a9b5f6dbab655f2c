"""OAuth 2.1 for /mcp over real HTTP against the ASGI server: discovery from the 401, dynamic
registration, console sign-in and consent, PKCE code exchange, calls, refresh, revocation, and
the refusals (none of them a 5xx)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.utils import timezone

from tests.processes import asgi_server, free_port

pytestmark = pytest.mark.django_db(transaction=True)

REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "Consent-pass-123"
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}


def _no_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.url, response.status_code)


@pytest.fixture(scope="module")
def base(server_env: dict[str, str]) -> Iterator[str]:
    """The ASGI server whose public URL (issuer, /mcp audience) is its own address. The
    principal cache is off, so a change made from here (membership, expiry) is seen at once;
    proxies on loopback are trusted so each test registers from an address of its own (the
    SDK's registration, which sends no such header, counts against loopback's 30 an hour)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **server_env,
        "SMARTEROS_PUBLIC_URL": url,
        "API_KEY_CACHE_SECONDS": "0",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "OAUTH_REGISTRATIONS_PER_HOUR": "30",
    }
    server = asgi_server(env=env, port=port)
    yield url
    server.stop()


def _http(**kwargs: Any) -> httpx.Client:
    return httpx.Client(timeout=30, event_hooks={"response": [_no_5xx]}, **kwargs)


def _source() -> dict[str, str]:
    # A registering client's own address (see TRUSTED_PROXIES above): limits are per source.
    n = secrets.randbelow(1 << 24)
    return {"X-Forwarded-For": f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"}


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _register(http: httpx.Client, base: str, **metadata: Any) -> httpx.Response:
    body = {"client_name": "Inspector", "redirect_uris": [REDIRECT], **metadata}
    return http.post(f"{base}/oauth/register/", json=body, headers=_source())


def _client_id(http: httpx.Client, base: str) -> str:
    response = _register(http, base, token_endpoint_auth_method="none")
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


def _person(username: str, tenant: Any, role: str | None) -> None:
    from django.contrib.auth import get_user_model

    from tenants.models import Membership
    from tenants.scope import dangerously_unscoped

    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    if role:
        with dangerously_unscoped():
            Membership.objects.create(user=user, tenant=tenant, role=role)


def _signed_in(base: str, username: str) -> httpx.Client:
    http = _http(base_url=base)
    http.get("/login/")
    response = http.post(
        "/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": http.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text
    return http


def _authorize_query(base: str, client_id: str, challenge: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st4te",
        "resource": f"{base}/mcp",
        "scope": "tenant.read",
        **extra,
    }
    return "/oauth/authorize/?" + urlencode({k: v for k, v in params.items() if v != ""})


def _consent(
    http: httpx.Client, query: str, *, tenant: str, scopes: list[str], allow: str = "yes"
) -> httpx.Response:
    page = http.get(query)
    assert page.status_code == 200, page.text
    data = {
        "csrfmiddlewaretoken": http.cookies["csrftoken"],
        "tenant": tenant,
        "grant_scope": scopes,
        "allow": allow,
    }
    return http.post(query, data=data)


def _code(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st4te"]
    assert "code" in query, location
    return query["code"][0]


def _exchange(base: str, client_id: str, code: str, verifier: str, **extra: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
        "resource": f"{base}/mcp",
        **extra,
    }
    return _http().post(f"{base}/oauth/token/", data=data)


def _call(
    base: str, token: str, tool: str, arguments: dict[str, Any] | None = None
) -> httpx.Response:
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments or {}},
    }
    headers = dict(MCP_HEADERS, Authorization=f"Bearer {token}")
    return _http().post(f"{base}/mcp", json=call, headers=headers)


def _result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.text
    if body.startswith(("event", "data")):
        body = body.split("data: ", 1)[1].splitlines()[0]
    return dict(json.loads(body)["result"])


def _token_for(base: str, username: str, tenant: str, scopes: list[str]) -> dict[str, Any]:
    http = _signed_in(base, username)
    client_id = _client_id(http, base)
    verifier, challenge = _pkce()
    code = _code(
        _consent(http, _authorize_query(base, client_id, challenge), tenant=tenant, scopes=scopes)
    )
    response = _exchange(base, client_id, code, verifier)
    assert response.status_code == 200, response.text
    return {**response.json(), "client_id": client_id, "http": http}


def test_a_remote_client_connects_end_to_end(base: str, make_tenant: Any) -> None:
    from tenants.models import ApiKey, AuditEvent
    from tenants.scope import dangerously_unscoped

    acme = make_tenant("acme")
    _person("ann", acme.tenant, "admin")
    anon = _http()

    # Discovery starts from /mcp's 401.
    refused = anon.post(
        f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=MCP_HEADERS
    )
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    assert metadata_url == f"{base}/.well-known/oauth-protected-resource/mcp"
    assert 'scope="' in challenge and "error=" not in challenge
    resource = anon.get(metadata_url).json()
    assert resource["resource"] == f"{base}/mcp"
    assert "tenant.read" in resource["scopes_supported"]
    assert anon.get(f"{base}/.well-known/oauth-protected-resource").json() == resource
    server = anon.get(
        f"{resource['authorization_servers'][0]}/.well-known/oauth-authorization-server"
    ).json()
    assert server["issuer"] == base
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["registration_endpoint"] == f"{base}/oauth/register/"

    # Registration: a public client, whatever it asked for.
    registered = anon.post(
        server["registration_endpoint"],
        json={
            "client_name": "MCP Inspector",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_post",
        },
        headers=_source(),
    )
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    assert registered.json()["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in registered.json()

    # Authorization: sign in on the console first, then consent.
    verifier, pkce_challenge = _pkce()
    query = _authorize_query(base, client_id, pkce_challenge, scope="tenant.read tenant.admin")
    to_login = anon.get(base + query)
    assert to_login.status_code == 302 and to_login.headers["location"].startswith("/login/")
    http = _signed_in(base, "ann")
    page = http.get(query)
    assert page.status_code == 200
    assert "MCP Inspector" in page.text and REDIRECT in page.text
    # Browsers apply form-action to the redirect after Allow: the client's origin is allowed.
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(REDIRECT))
    assert f"form-action 'self' {origin};" in page.headers["content-security-policy"]
    # Least privilege: only read scopes start ticked, even when more are requested.
    ticked = re.findall(r'name="grant_scope" value="([^"]+)" checked', page.text)
    assert ticked and all(s.endswith(".read") for s in ticked)
    code = _code(_consent(http, query, tenant="acme", scopes=["tenant.read"]))

    tokens = _exchange(base, client_id, code, verifier)
    assert tokens.status_code == 200, tokens.text
    granted = tokens.json()
    assert granted["scope"] == "tenant.read" and granted["refresh_token"]
    access = granted["access_token"]

    # The token calls tools as the tenant, with the scopes granted and no more.
    assert _result(_call(base, access, "tenant_get_tenant"))["structuredContent"]["slug"] == "acme"
    denied = _result(_call(base, access, "tenant_update_tenant", {"name": "Renamed"}))
    assert denied["isError"]
    # Audience: the token is for /mcp only, not the REST API.
    rest = anon.post(
        f"{base}/api/v1/tenant/get_tenant", json={}, headers={"Authorization": f"Bearer {access}"}
    )
    assert rest.status_code == 401

    # Listed on the keys page under the client's name; the grant is audited.
    keys_page = http.get("/tenants/acme/keys/")
    assert f"oauth:{client_id}" in keys_page.text
    with dangerously_unscoped():
        key = ApiKey.objects.get(name=f"oauth:{client_id}")
        assert key.scopes == ["tenant.read"]
        assert AuditEvent.objects.filter(
            action="oauth.grant", actor="user:ann", tenant=acme.tenant
        ).exists()

    # Refresh: a new access token that works; the old refresh token is spent.
    refreshed = anon.post(
        f"{base}/oauth/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": granted["refresh_token"],
            "client_id": client_id,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access_token"]
    assert _result(_call(base, access, "tenant_get_tenant"))["structuredContent"]["slug"] == "acme"

    # Revocation (RFC 7009) ends the consent: the token is refused, the key shows revoked.
    revoked = anon.post(
        server["revocation_endpoint"],
        data={
            "token": refreshed.json()["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": client_id,
        },
    )
    assert revoked.status_code == 200
    after = _call(base, access, "tenant_get_tenant")
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    with dangerously_unscoped():
        assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
        assert AuditEvent.objects.filter(action="oauth.revoke", actor=f"oauth:{client_id}").exists()
    again = anon.post(
        f"{base}/oauth/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refreshed.json()["refresh_token"],
            "client_id": client_id,
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # API keys work exactly as before.
    assert (
        _result(_call(base, acme.key, "tenant_get_tenant"))["structuredContent"]["slug"] == "acme"
    )


def test_pkce_is_required_and_checked(base: str, make_tenant: Any) -> None:
    acme = make_tenant("acme")
    _person("ann", acme.tenant, "admin")
    http = _signed_in(base, "ann")
    client_id = _client_id(http, base)
    verifier, challenge = _pkce()

    missing = http.get(_authorize_query(base, client_id, ""))
    assert missing.status_code == 302 and "error=invalid_request" in missing.headers["location"]
    assert "code=" not in missing.headers["location"]
    plain = http.get(_authorize_query(base, client_id, verifier, code_challenge_method="plain"))
    assert plain.status_code == 302 and "error=invalid_request" in plain.headers["location"]

    code = _code(
        _consent(
            http,
            _authorize_query(base, client_id, challenge),
            tenant="acme",
            scopes=["tenant.read"],
        )
    )
    wrong = _exchange(base, client_id, code, _pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    without = _exchange(base, client_id, code, "")
    assert without.status_code == 400


def test_redirect_and_audience_are_bound(base: str, make_tenant: Any) -> None:
    acme = make_tenant("acme")
    _person("ann", acme.tenant, "admin")
    http = _signed_in(base, "ann")
    client_id = _client_id(http, base)
    verifier, challenge = _pkce()

    # An unregistered redirect URI is never redirected to.
    mismatch = http.get(
        _authorize_query(base, client_id, challenge, redirect_uri="https://evil.example/cb")
    )
    assert mismatch.status_code == 400 and "location" not in mismatch.headers
    unknown = http.get(_authorize_query(base, "no-such-client", challenge))
    assert unknown.status_code == 400

    other = http.get(
        _authorize_query(base, client_id, challenge, resource="https://other.example/mcp")
    )
    assert other.status_code == 302 and "error=invalid_target" in other.headers["location"]
    absent = http.get(_authorize_query(base, client_id, challenge, resource=""))
    assert "error=invalid_target" in absent.headers["location"]

    code = _code(
        _consent(
            http,
            _authorize_query(base, client_id, challenge),
            tenant="acme",
            scopes=["tenant.read"],
        )
    )
    foreign = _exchange(base, client_id, code, verifier, resource="https://other.example/mcp")
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_target"
    # The code still works for the right audience, redirect URI and verifier only.
    moved = _exchange(base, client_id, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert moved.status_code == 400
    assert _exchange(base, client_id, code, verifier).status_code == 200


def test_roles_and_tenants_limit_the_consent(base: str, make_tenant: Any) -> None:
    from tenants.models import ApiKey, AuditEvent
    from tenants.scope import dangerously_unscoped

    acme = make_tenant("acme")
    make_tenant("globex")
    _person("vic", acme.tenant, "viewer")
    http = _signed_in(base, "vic")
    client_id = _client_id(http, base)
    _, challenge = _pkce()
    query = _authorize_query(base, client_id, challenge)

    for scopes in (["tenant.admin"], ["*"], ["tenant.read", "shopify.write"]):
        refused = _consent(http, query, tenant="acme", scopes=scopes)
        assert refused.status_code == 403, scopes
    other = _consent(http, query, tenant="globex", scopes=["tenant.read"])
    assert other.status_code == 403
    assert "globex" in other.text and "location" not in other.headers
    empty = _consent(http, query, tenant="acme", scopes=[])
    assert empty.status_code == 400
    with dangerously_unscoped():
        assert not ApiKey.objects.filter(name__startswith="oauth:").exists()
        assert AuditEvent.objects.filter(action="oauth.grant.refused").exists()

    # A viewer may grant read scopes; a denial goes back to the client with access_denied.
    assert (
        "code=" in _consent(http, query, tenant="acme", scopes=["tenant.read"]).headers["location"]
    )
    denied = _consent(http, query, tenant="acme", scopes=["tenant.read"], allow="no")
    assert denied.status_code == 302 and "error=access_denied" in denied.headers["location"]


def test_tokens_stop_with_their_grant(base: str, make_tenant: Any) -> None:
    from oauth2_provider.models import AccessToken

    from tenants.models import Membership, Tenant
    from tenants.scope import dangerously_unscoped

    acme = make_tenant("acme")
    _person("ann", acme.tenant, "admin")

    expired = _token_for(base, "ann", "acme", ["tenant.read"])
    AccessToken.objects.filter(
        token_checksum=hashlib.sha256(expired["access_token"].encode()).hexdigest()
    ).update(expires=timezone.now() - timedelta(seconds=1))
    assert _call(base, expired["access_token"], "tenant_get_tenant").status_code == 401

    # Revoked on the console's keys page.
    console = _token_for(base, "ann", "acme", ["tenant.read"])
    assert _call(base, console["access_token"], "tenant_get_tenant").status_code == 200
    http = console["http"]
    with dangerously_unscoped():
        key_id = acme.tenant.api_keys.get(name=f"oauth:{console['client_id']}").pk
    revoke = http.post(
        f"/tenants/acme/keys/{key_id}/revoke/",
        data={"csrfmiddlewaretoken": http.cookies["csrftoken"], "confirm": "yes"},
    )
    assert revoke.status_code == 302
    assert _call(base, console["access_token"], "tenant_get_tenant").status_code == 401
    refresh = _http().post(
        f"{base}/oauth/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": console["refresh_token"],
            "client_id": console["client_id"],
        },
    )
    assert refresh.status_code == 400

    # Membership removed, then the tenant suspended.
    member = _token_for(base, "ann", "acme", ["tenant.read"])
    with dangerously_unscoped():
        Membership.objects.filter(user__username="ann").delete()
    assert _call(base, member["access_token"], "tenant_get_tenant").status_code == 401
    with dangerously_unscoped():
        Membership.objects.create(
            user=member["http"] and _user("ann"), tenant=acme.tenant, role="admin"
        )
    assert _call(base, member["access_token"], "tenant_get_tenant").status_code == 200
    with dangerously_unscoped():
        Tenant.objects.filter(pk=acme.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    assert _call(base, member["access_token"], "tenant_get_tenant").status_code == 401
    assert _call(base, "not-a-token", "tenant_get_tenant").status_code == 401


def _user(username: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def test_registration_is_validated_and_bounded(base: str) -> None:
    http = _http()
    for uris in (
        ["http://example.com/cb"],
        ["ftp://example.com/cb"],
        ["https://example.com/cb#frag"],
        ["https://user:pw@example.com/cb"],
        ["javascript:alert(1)"],
        [],
        ["https://example.com/" + "a" * 2000],
        [f"https://example.com/{i}" for i in range(6)],
        "https://example.com/cb",
        [42],
    ):
        refused = _register(http, base, redirect_uris=uris)
        assert refused.status_code == 400, uris
        assert refused.json()["error"] == "invalid_redirect_uri"
    for metadata in (
        {"client_name": "x" * 101},
        {"grant_types": ["client_credentials"]},
        {"response_types": ["token"]},
    ):
        assert _register(http, base, **metadata).status_code == 400, metadata
    assert (
        http.post(f"{base}/oauth/register/", content=b"{nope", headers=_source()).status_code == 400
    )
    big = http.post(f"{base}/oauth/register/", content=b" " * 9000, headers=_source())
    assert big.status_code == 413
    for uri in (
        "https://claude.ai/api/mcp/auth_callback",
        "http://localhost:6274/oauth/callback",
        "http://[::1]:3000/cb",
    ):
        assert _register(http, base, redirect_uris=[uri]).status_code == 201, uri

    # Limited per source: this server allows 30 an hour from one address.
    source = _source()
    answers = [
        http.post(
            f"{base}/oauth/register/", json={"redirect_uris": [REDIRECT]}, headers=source
        ).status_code
        for _ in range(31)
    ]
    assert answers == [201] * 30 + [429]


def test_the_mcp_sdk_oauth_client_connects(base: str, make_tenant: Any) -> None:
    """The `mcp` SDK's own OAuth client: discovery from the 401, registration, PKCE, the consent
    driven through the console's pages, then tools/list and a call with the token it got."""
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import (
        AuthorizationCodeResult,
        OAuthClientInformationFull,
        OAuthClientMetadata,
        OAuthToken,
    )
    from pydantic import AnyUrl

    acme = make_tenant("acme")
    _person("ann", acme.tenant, "admin")
    browser = _signed_in(base, "ann")
    answered: dict[str, str] = {}

    class Memory:
        tokens: OAuthToken | None = None
        client: OAuthClientInformationFull | None = None

        async def get_tokens(self) -> OAuthToken | None:
            return self.tokens

        async def set_tokens(self, tokens: OAuthToken) -> None:
            self.tokens = tokens

        async def get_client_info(self) -> OAuthClientInformationFull | None:
            return self.client

        async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
            self.client = client_info

    async def consent(authorization_url: str) -> None:
        query = authorization_url.removeprefix(base)
        answer = _consent(browser, query, tenant="acme", scopes=["tenant.read", "shopify.read"])
        assert answer.status_code == 302, answer.text
        answered.update(
            {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
        )

    async def callback() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(
            code=answered["code"], state=answered.get("state"), iss=answered.get("iss")
        )

    storage = Memory()
    provider = OAuthClientProvider(
        server_url=f"{base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="SDK client",
            redirect_uris=[AnyUrl(REDIRECT)],
            grant_types=["authorization_code", "refresh_token"],
        ),
        storage=storage,
        redirect_handler=consent,
        callback_handler=callback,
    )

    async def main() -> None:
        http = httpx2.AsyncClient(auth=provider, timeout=60, headers=_source())
        async with Client(
            streamable_http_client(f"{base}/mcp", http_client=http), read_timeout_seconds=60
        ) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "tenant_get_tenant" in names
            result = await client.call_tool("tenant_get_tenant", {})
            assert result.structured_content["slug"] == "acme"
            refused = await client.call_tool("tenant_update_tenant", {"name": "Renamed"})
            assert refused.is_error

    anyio.run(main)
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert set((storage.tokens.scope or "").split()) == {"tenant.read", "shopify.read"}


def test_garbage_is_a_4xx(base: str, make_tenant: Any) -> None:
    """NULs (which PostgreSQL text refuses), oversized and malformed values: a 4xx each (the
    client's hook asserts no 5xx), and nothing is registered."""
    from oauth2_provider.models import Application

    acme = make_tenant("acme")
    _person("ann", acme.tenant, "admin")
    http = _signed_in(base, "ann")
    client_id = _client_id(http, base)
    _, challenge = _pkce()
    nul_client = _authorize_query(base, client_id, challenge).replace(client_id, "%00")
    assert http.get(nul_client).status_code == 400
    for extra in ({"state": "a\x00"}, {"resource": "\x00"}, {"scope": "x" * 5000}):
        answer = http.get(_authorize_query(base, client_id, challenge, **extra))
        assert answer.status_code == 400 or "error=" in answer.headers.get("location", ""), extra
    for data in (
        {"grant_type": "authorization_code", "code": "\x00", "client_id": client_id},
        {"grant_type": "refresh_token", "refresh_token": "r\x00", "client_id": client_id},
        {"grant_type": "authorization_code", "code": "c" * 100_000, "client_id": "i" * 5000},
        {"grant_type": "password", "username": "ann", "password": PASSWORD, "client_id": client_id},
        {"grant_type": "client_credentials", "client_id": client_id},
    ):
        answer = _http().post(f"{base}/oauth/token/", data=data)
        assert 400 <= answer.status_code < 500, data
    assert (
        _http()
        .post(f"{base}/oauth/revoke/", data={"token": "\x00", "client_id": client_id})
        .status_code
        == 400
    )
    before = Application.objects.count()
    assert _register(_http(), base, redirect_uris=["https://a.example/\x00"]).status_code == 400
    assert _register(_http(), base, redirect_uris=["https://a.example/ x"]).status_code == 400
    assert Application.objects.count() == before
    assert _call(base, "z" * 10_000, "tenant_get_tenant").status_code == 401


def test_a_spent_refresh_token_ends_its_family(base: str, make_tenant: Any) -> None:
    acme = make_tenant("acme")
    _person("ann", acme.tenant, "admin")
    first = _token_for(base, "ann", "acme", ["tenant.read"])

    def refresh(token: str) -> httpx.Response:
        return _http().post(
            f"{base}/oauth/token/",
            data={
                "grant_type": "refresh_token",
                "refresh_token": token,
                "client_id": first["client_id"],
            },
        )

    second = refresh(first["refresh_token"])
    assert second.status_code == 200
    # The first refresh token again (a stolen copy): refused, and the newer one stops too.
    replay = refresh(first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert refresh(second.json()["refresh_token"]).status_code == 400
