"""Discovery metadata (RFC 9728, RFC 8414) and dynamic client registration (RFC 7591)."""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from oauth2_provider.models import Application

from mcp_tools.oauth.grants import mcp_resource_url
from mcp_tools.oauth.scopes import oauth_scopes
from smarteros.client_address import request_client_address
from smarteros.infra.redis import get_redis

log = logging.getLogger(__name__)

MAX_REGISTRATION_BYTES = 8192
MAX_REDIRECT_URIS = 5
MAX_REDIRECT_URI_LENGTH = 1000
MAX_CLIENT_NAME_LENGTH = 100
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def has_nul(request: HttpRequest) -> bool:
    """Whether a query or form value holds a NUL, which PostgreSQL text refuses: such a request
    is answered 400 before the toolkit looks anything up with it."""
    params = [*request.GET.lists()]
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        params += [*request.POST.lists()]
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in params)


def refuse_nul(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`view`, answering 400 invalid_request to a parameter that holds a NUL."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if has_nul(request):
            return _refused("a parameter holds a NUL character", error="invalid_request")
        return view(request, *args, **kwargs)

    return wrapped


def _public(path: str) -> str:
    return settings.SMARTEROS_PUBLIC_URL.rstrip("/") + path


@require_GET
def protected_resource_metadata(request: HttpRequest, resource_path: str = "") -> JsonResponse:
    """RFC 9728 metadata of /mcp, at the root well-known URL and its /mcp-suffixed form."""
    if resource_path not in ("", "mcp"):
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse(
        {
            "resource": mcp_resource_url(),
            "authorization_servers": [_public("")],
            "scopes_supported": list(oauth_scopes()),
            "bearer_methods_supported": ["header"],
            "resource_name": "SmarterOS MCP",
            "resource_documentation": _public("/api/v1/docs"),
        },
        headers={"Access-Control-Allow-Origin": "*"},
    )


@require_GET
def authorization_server_metadata(request: HttpRequest) -> JsonResponse:
    """RFC 8414 metadata: code flow with PKCE S256, public clients, refresh and revocation."""
    return JsonResponse(
        {
            "issuer": _public(""),
            "authorization_endpoint": _public(reverse("oauth-authorize")),
            "token_endpoint": _public(reverse("oauth-token")),
            "revocation_endpoint": _public(reverse("oauth-revoke")),
            "registration_endpoint": _public(reverse("oauth-register")),
            "scopes_supported": list(oauth_scopes()),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
        },
        headers={"Access-Control-Allow-Origin": "*"},
    )


def _refused(
    description: str, *, error: str = "invalid_client_metadata", status: int = 400
) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


def redirect_uri_problem(uri: Any) -> str | None:
    """Why `uri` may not be a redirect URI (https, or http to a loopback host only; no fragment,
    no credentials, bounded length), or None."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_REDIRECT_URI_LENGTH:
        return f"each redirect URI is a string of 1 to {MAX_REDIRECT_URI_LENGTH} characters"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        return "a redirect URI may not hold spaces or control characters"
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"redirect URI {uri!r} is not a URL"
    if parts.fragment or parts.username or parts.password or not host:
        return f"redirect URI {uri!r} must have a host and no fragment or credentials"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _is_loopback(host):
        return None
    return f"redirect URI {uri!r} must use https (http only to a loopback address)"


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _over_registration_limit(client: str) -> bool:
    key = f"smarteros:oauth:register:{client}"
    try:
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, 3600, nx=True)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        log.warning("registration limit unavailable (%s); registration not counted", exc)
        return False
    return int(count) > settings.OAUTH_REGISTRATIONS_PER_HOUR


@csrf_exempt  # an API for clients that hold no session; nothing here acts for a signed-in person
@require_POST
def register(request: HttpRequest) -> JsonResponse:
    """RFC 7591 registration of a public client (no secret; PKCE protects its codes)."""
    if len(request.body) > MAX_REGISTRATION_BYTES:
        return _refused(f"metadata larger than {MAX_REGISTRATION_BYTES} bytes", status=413)
    if _over_registration_limit(request_client_address(request)):
        return _refused(
            "too many registrations from this address; retry within the hour",
            error="too_many_requests",
            status=429,
        )
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError):
        return _refused("the body must be a JSON object")
    if not isinstance(data, dict):
        return _refused("the body must be a JSON object")
    uris = data.get("redirect_uris")
    if not isinstance(uris, list) or not 1 <= len(uris) <= MAX_REDIRECT_URIS:
        return _refused(
            f"redirect_uris: give 1 to {MAX_REDIRECT_URIS} URIs", error="invalid_redirect_uri"
        )
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            return _refused(problem, error="invalid_redirect_uri")
    name = data.get("client_name", "")
    if not isinstance(name, str) or len(name) > MAX_CLIENT_NAME_LENGTH or "\x00" in name:
        return _refused(f"client_name: text of at most {MAX_CLIENT_NAME_LENGTH} characters")
    grant_types = data.get("grant_types", ["authorization_code", "refresh_token"])
    if (
        not isinstance(grant_types, list)
        or not set(grant_types)
        <= {
            "authorization_code",
            "refresh_token",
        }
        or "authorization_code" not in grant_types
    ):
        return _refused("grant_types: authorization_code (and refresh_token) only")
    response_types = data.get("response_types", ["code"])
    if response_types != ["code"]:
        return _refused("response_types: code only")
    application = Application(
        name=name.strip() or "unnamed client",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(uris),
        skip_authorization=False,
        algorithm="",
    )
    try:
        application.full_clean(exclude=["client_secret", "user"])
    except ValidationError as exc:
        return _refused("; ".join(exc.messages))
    application.save()
    log.info("OAuth client %s registered (%s)", application.client_id, application.name)
    return JsonResponse(
        {
            "client_id": application.client_id,
            "client_id_issued_at": int(application.created.timestamp()),
            "client_name": application.name,
            "redirect_uris": uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            # Public clients only, whatever was asked (RFC 7591 lets the server decide).
            "token_endpoint_auth_method": "none",
        },
        status=201,
    )
