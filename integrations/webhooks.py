"""Signed webhooks in: /hooks/<provider>/<tenant>/ (Shopify, WhatsApp, n8n, Clerk).

Every delivery passes the checks of `integrations.inbound` in order (source, size, connection
and signature, the tenant's rate limit, payload shape, the provider's external id), then is
accepted once: a unique delivery row commits with the delivery's outbox rows, so a repeat is
answered 200 {"accepted": false, "duplicate": true} and a retry after a failed attempt is
accepted.
An accepted delivery is in PostgreSQL (and so, via the outbox, in Kafka) before the 200.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from integrations.inbound import (
    CLERK,
    N8N,
    SHOPIFY,
    WHATSAPP,
    Refused,
    WebhookSpec,
    body_read,
    external_ids_check,
    rate_limit_check,
    refusal_response,
    signature_check,
    source_charge,
    source_check,
    webhook_connection,
    webhook_tenant,
)
from integrations.payloads import BadPayload, json_load_untrusted, model_parse
from smarteros.client_address import request_client_address
from smarteros.context import current_trace_id, new_trace_id
from smarteros.errors import DependencyUnavailable, OperationError
from smarteros.events.schemas import InvalidEvent
from tenants.models import Tenant
from tenants.scope import tenant_scope

log = logging.getLogger(__name__)

# A parsed delivery: what to accept, and the external ids it claims to be for.
Parsed = tuple[Any, list[str]]
Accept = Callable[[Tenant, Any, str], dict[str, Any]]

DUPLICATE = {"accepted": False, "duplicate": True}


def _receive(
    request: HttpRequest,
    slug: str,
    spec: WebhookSpec,
    parse: Callable[[HttpRequest, Any], Parsed],
    accept: Accept,
    *,
    allow: str = "POST",
) -> HttpResponse:
    source = request_client_address(request)
    verified = False
    try:
        source_check(source)
        if request.method != "POST":
            raise Refused("only POST", status=405, code="method_not_allowed", reason="method")
        body = body_read(request)
        connection = webhook_connection(tenant=webhook_tenant(slug), provider=spec.provider)
        signature_check(
            spec,
            connection,
            body,
            request.headers.get(spec.signature_header, ""),
            headers=request.headers,
        )
        verified = True  # from here on the sender is the provider: the tenant pays
        rate_limit_check(slug=slug, tenant=connection.tenant)
        try:
            delivery, claimed = parse(
                request, json_load_untrusted(body, max_depth=settings.WEBHOOK_MAX_JSON_DEPTH)
            )
        except BadPayload as exc:
            raise Refused(
                str(exc), status=400, code="invalid_payload", reason="bad_payload"
            ) from None
        external_ids_check(spec, connection, claimed)
        return JsonResponse(_accept(connection.tenant, delivery, accept))
    except Refused as refused:
        if not verified and refused.reason != "source_limited":
            source_charge(source)
        response = refusal_response(spec.provider, slug, refused)
        if response.status_code == 405:
            response["Allow"] = allow  # RFC 9110: a 405 lists the methods that work
        return response
    except DatabaseError as exc:
        log.exception("webhook %s/%s not accepted", spec.provider, slug)
        unavailable = DependencyUnavailable(f"PostgreSQL is unavailable: {type(exc).__name__}")
        return JsonResponse(unavailable.as_dict(), status=unavailable.http_status)
    except OperationError as exc:  # a dependency down (Vault, ...)
        log.warning("webhook %s/%s not accepted: %s", spec.provider, slug, exc.message)
        return JsonResponse(exc.as_dict(), status=exc.http_status)


def _accept(tenant: Tenant, delivery: Any, accept: Accept) -> dict[str, Any]:
    trace_id = current_trace_id.get() or new_trace_id()
    try:
        return accept(tenant, delivery, trace_id)
    except (InvalidEvent, DataError) as exc:
        # The schemas should have caught it; still the sender's data, never an outage.
        raise Refused(
            f"the delivery cannot be stored: {exc}".splitlines()[0],
            status=400,
            code="invalid_payload",
            reason="bad_payload",
        ) from None


# Shopify


def _shopify_parse(request: HttpRequest, payload: Any) -> Parsed:
    from integrations.shopify.schemas import shopify_delivery_parse

    delivery = shopify_delivery_parse(request.headers, payload)
    return delivery, [delivery.shop_domain]


def _shopify_accept(tenant: Tenant, delivery: Any, trace_id: str) -> dict[str, Any]:
    from integrations.shopify.services import shopify_webhook_accept

    if not shopify_webhook_accept(
        tenant=tenant,
        topic=delivery.topic,
        webhook_id=delivery.webhook_id,
        payload=delivery.payload,
        trace_id=trace_id,
    ):
        return DUPLICATE
    return {"accepted": True, "duplicate": False}


@csrf_exempt
def shopify_webhook(request: HttpRequest, tenant: str) -> HttpResponse:
    """Shopify deliveries: X-Shopify-Shop-Domain must be the connected shop, and
    X-Shopify-Hmac-Sha256 the base64 HMAC of the body with the connection's app_secret."""
    return _receive(request, tenant, SHOPIFY, _shopify_parse, _shopify_accept)


# WhatsApp


def _whatsapp_parse(request: HttpRequest, payload: Any) -> Parsed:
    from integrations.whatsapp.schemas import whatsapp_notification_parse

    values = whatsapp_notification_parse(payload)
    return values, [value.metadata.phone_number_id for value in values]


def _whatsapp_accept(tenant: Tenant, values: Any, trace_id: str) -> dict[str, Any]:
    from integrations.whatsapp.services import whatsapp_notification_accept

    with tenant_scope(tenant.pk):  # the claims, the messages and their events commit together
        result = whatsapp_notification_accept(tenant=tenant, values=values, trace_id=trace_id)
    if result.repeats and not (result.messages or result.statuses):
        return DUPLICATE
    return {
        "accepted": True,
        "duplicate": False,
        "messages": result.messages,
        "statuses": result.statuses,
        "repeats": result.repeats,
        "ignored": result.ignored,
    }


@csrf_exempt
def whatsapp_webhook(request: HttpRequest, tenant: str) -> HttpResponse:
    """Meta's verification handshake (GET) and notifications (POST): every messages change's
    metadata.phone_number_id must be the connected number, and X-Hub-Signature-256 the HMAC of
    the body with the connection's app_secret."""
    if request.method == "GET":
        return _whatsapp_handshake(request, tenant)
    return _receive(request, tenant, WHATSAPP, _whatsapp_parse, _whatsapp_accept, allow="GET, POST")


def _whatsapp_handshake(request: HttpRequest, slug: str) -> HttpResponse:
    source = request_client_address(request)
    try:
        source_check(source)
        # Every failure is the same 403, whether the tenant exists, is connected or not.
        wrong = Refused(
            "hub.verify_token does not match",
            status=403,
            code="permission_denied",
            reason="bad_verify_token",
        )
        try:
            owner = webhook_tenant(slug)
            connection = webhook_connection(tenant=owner, provider="whatsapp")
        except Refused:
            wrong.reason = "not_connected"
            raise wrong from None
        expected = str(connection.config.get("verify_token") or "")
        if not (
            expected
            and request.GET.get("hub.mode") == "subscribe"
            and hmac.compare_digest(
                request.GET.get("hub.verify_token", "").encode(), expected.encode()
            )
        ):
            raise wrong
    except Refused as refused:
        if refused.reason != "source_limited":
            source_charge(source)
        return refusal_response("whatsapp", slug, refused)
    try:
        rate_limit_check(slug=slug, tenant=connection.tenant)
    except Refused as refused:
        return refusal_response("whatsapp", slug, refused)
    return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")


# n8n


def _n8n_parse(request: HttpRequest, payload: Any) -> Parsed:
    from integrations.n8n.schemas import N8nResultIn

    # n8n results name no external id: the URL's connection and its secret identify them.
    return model_parse(N8nResultIn, payload), []


def _n8n_accept(tenant: Tenant, result: Any, trace_id: str) -> dict[str, Any]:
    from integrations.n8n.services import n8n_result_accept

    envelope = n8n_result_accept(tenant=tenant, result=result, trace_id=trace_id)
    if envelope is None:
        return DUPLICATE
    return {"accepted": True, "duplicate": False, "event_id": envelope.id}


@csrf_exempt
def n8n_webhook(request: HttpRequest, tenant: str) -> HttpResponse:
    """Workflow results posted back by n8n, signed with the connection's webhook_secret:
    X-SmarterOS-Signature: sha256=<hex HMAC of the body>; one event per execution_id."""
    return _receive(request, tenant, N8N, _n8n_parse, _n8n_accept)


# Clerk


def _clerk_parse(request: HttpRequest, payload: Any) -> Parsed:
    from integrations.clerk.schemas import clerk_delivery_parse

    delivery = clerk_delivery_parse(request.headers, payload)
    instance = delivery.event.instance_id
    return delivery, [instance] if instance else []


def _clerk_accept(tenant: Tenant, delivery: Any, trace_id: str) -> dict[str, Any]:
    from integrations.clerk.services import clerk_webhook_accept

    envelope = clerk_webhook_accept(tenant=tenant, delivery=delivery, trace_id=trace_id)
    if envelope is None:
        return DUPLICATE
    return {"accepted": True, "duplicate": False, "event_id": envelope.id}


@csrf_exempt
def clerk_webhook(request: HttpRequest, tenant: str) -> HttpResponse:
    """Clerk's events, sent by Svix: svix-signature must hold a v1 HMAC of
    `{svix-id}.{svix-timestamp}.{body}` by the connection's signing_secret, svix-timestamp be
    within CLERK_WEBHOOK_TOLERANCE_SECONDS of now, and the event's instance_id the connected
    instance's (when the connection names one); one event per svix-id."""
    return _receive(request, tenant, CLERK, _clerk_parse, _clerk_accept)


@csrf_exempt
def provider_webhook(request: HttpRequest, provider: str, tenant: str) -> HttpResponse:
    """Deliveries to `/hooks/<provider>/<tenant>/`, handed to the provider's declared view; 404
    for a name no provider declares or one that sends no webhooks."""
    from integrations.providers import providers

    spec = providers().get(provider)
    if spec is None or spec.webhook is None:
        raise Http404("no declared provider receives webhooks here")
    view = import_string(spec.webhook) if isinstance(spec.webhook, str) else spec.webhook
    response: HttpResponse = view(request, tenant)
    return response
