"""The OAuth consent page: a signed-in person lets an MCP client act for one of their tenants.

The client's name and redirect URI are shown; the person picks the tenant and the scopes (only
read scopes are ticked at first; a viewer may grant read scopes only, an operator any but the
admin scopes: mcp_tools.oauth.scopes.scopes_for_role). Errors before the client
and its redirect URI are known are shown here, never sent to an unchecked address.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.models import Application
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauthlib.oauth2.rfc6749 import errors

from mcp_tools.oauth.grants import CLOSED_STATES, mcp_resource_url, oauth_grant_create
from mcp_tools.oauth.scopes import oauth_scopes, read_scopes, scopes_for_role, scopes_note
from mcp_tools.oauth.views import has_nul
from smarteros.csp import console_csp
from tenants.audit import audit_refusal
from tenants.console.access import actor_of, is_platform_admin, tenant_for
from tenants.models import Membership, Tenant
from tenants.roles import PLATFORM
from tenants.scope import dangerously_unscoped

# A platform admin picks among this many tenants here; others are reached by their slug.
MAX_TENANTS_LISTED = 200


def _redirect_error(error: errors.OAuth2Error, redirect_uri: str) -> HttpResponse:
    return HttpResponseRedirect(error.in_uri(redirect_uri))


def _tenants(user: Any) -> list[tuple[str, str, str]]:
    """(slug, name, what the person may not grant there or "") of the tenants they may grant."""
    with dangerously_unscoped():
        if is_platform_admin(user):
            rows = Tenant.objects.exclude(status__in=CLOSED_STATES).order_by("slug")
            return [(t.slug, t.name, scopes_note(PLATFORM)) for t in rows[:MAX_TENANTS_LISTED]]
        members = (
            Membership.objects.filter(user_id=user.pk)
            .exclude(tenant__status__in=CLOSED_STATES)
            .select_related("tenant")
            .order_by("tenant__slug")
        )
        return [(m.tenant.slug, m.tenant.name, scopes_note(m.role)) for m in members]


def _page(
    request: HttpRequest,
    application: Application,
    credentials: dict[str, Any],
    requested: list[str],
    *,
    chosen: list[str] | None = None,
    problem: str = "",
    status: int = 200,
) -> HttpResponse:
    ticked = set(read_scopes() if chosen is None else chosen)
    response = render(
        request,
        "console/oauth_consent.html",
        {
            "client": application,
            "redirect_uri": credentials.get("redirect_uri", ""),
            "tenants": _tenants(request.user),
            "scopes": [
                (s, label, s in ticked, s in requested) for s, label in oauth_scopes().items()
            ],
            "problem": problem,
        },
        status=status,
    )
    # The answer to Allow/Deny redirects to the client's (checked) redirect URI: the policy
    # must let the form go there, or the browser stops on this page.
    redirect_uri = credentials.get("redirect_uri", "")
    response["Content-Security-Policy"] = console_csp(
        form_targets=[redirect_uri] if redirect_uri else []
    )
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """GET shows the consent for the authorization request in the query string; POST (to the
    same URL) grants it, or denies it, and sends the person back to the client."""
    if has_nul(request):
        return render(request, "403.html", {"exception": "A parameter holds a NUL."}, status=400)
    core = get_oauthlib_core()
    try:
        requested, credentials = core.validate_authorization_request(request)
    except FatalClientError as exc:
        return render(
            request, "403.html", {"exception": exc.oauthlib_error.description}, status=400
        )
    except OAuthToolkitError as exc:
        oauth_error = exc.oauthlib_error
        if oauth_error.redirect_uri:
            return _redirect_error(oauth_error, oauth_error.redirect_uri)
        return render(request, "403.html", {"exception": oauth_error.description}, status=400)
    redirect_uri = credentials["redirect_uri"]
    state = credentials.get("state")
    if credentials.get("code_challenge_method") != "S256":
        return _redirect_error(
            errors.InvalidRequestError(description="PKCE with S256 is required", state=state),
            redirect_uri,
        )
    if request.GET.getlist("resource") != [mcp_resource_url()]:
        return _redirect_error(
            errors.CustomOAuth2Error(
                error="invalid_target",
                description=f"resource must be {mcp_resource_url()}",
                state=state,
            ),
            redirect_uri,
        )
    application = Application.objects.get(client_id=credentials["client_id"])
    if request.method == "GET":
        return _page(request, application, credentials, requested)
    if request.POST.get("allow") != "yes":
        return _redirect_error(errors.AccessDeniedError(state=state), redirect_uri)
    chosen = list(dict.fromkeys(request.POST.getlist("grant_scope")))
    access = tenant_for(request, request.POST.get("tenant", ""), action="oauth.grant")
    refused = scopes_for_role(chosen, role=access.role)
    if refused:
        reason = (
            f"Your role for {access.tenant.slug} is {access.role_label}: "
            f"it may grant {scopes_note(access.role)}"
        )
        audit_refusal(
            actor=actor_of(request),
            action="oauth.grant",
            tenant=access.tenant,
            target=application.client_id,
            reason=f"{reason} (asked {', '.join(refused)})",
        )
        raise PermissionDenied(f"{reason}; not {', '.join(refused)}.")
    if access.tenant.status in CLOSED_STATES:
        return _page(
            request,
            application,
            credentials,
            requested,
            chosen=chosen,
            problem=f"{access.tenant.slug} is {access.tenant.status}: it grants nothing.",
            status=400,
        )
    try:
        grant = oauth_grant_create(
            user=request.user,
            application=application,
            tenant=access.tenant,
            scopes=chosen,
            actor=actor_of(request),
        )
    except ValidationError as exc:
        return _page(
            request,
            application,
            credentials,
            requested,
            chosen=chosen,
            problem=" ".join(exc.messages),
            status=400,
        )
    credentials.update(smarteros_grant_id=grant.pk, resource=[mcp_resource_url()])
    try:
        uri, _headers, _body, _status = core.create_authorization_response(
            request, scopes=chosen, credentials=credentials, allow=True
        )
    except OAuthToolkitError as exc:
        return _redirect_error(exc.oauthlib_error, redirect_uri)
    return HttpResponseRedirect(uri)
