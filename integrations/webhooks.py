"""Signed webhooks in: /hooks/<provider>/<tenant>/.

Each request is checked against the tenant's signing secret for that provider before anything
else; a bad signature gets 401 and leaves only a log line and a counter. An accepted delivery is
in PostgreSQL (and so, via the outbox, in Kafka) before the 200 goes out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from integrations.connections import connection_credentials
from integrations.models import IntegrationConnection
from mcp_tools.errors import OperationError
from smarteros.context import current_trace_id, new_trace_id
from smarteros.events.outbox import tenant_event_emit
from smarteros.events.schemas import InvalidEvent, validate_event_data
from smarteros.infra.redis import get_redis
from tenants.models import Tenant
from tenants.ratelimit import rate_limit_hit
from tenants.scope import dangerously_unscoped, tenant_scope

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024


def _reject(provider: str, slug: str, why: str) -> HttpResponse:
    log.warning("webhook rejected: provider=%s tenant=%s reason=%s", provider, slug, why)
    try:
        get_redis().incr(f"smarteros:webhooks:rejected:{provider}")
    except Exception:
        log.warning("could not count the rejected webhook")
    return JsonResponse({"error": "invalid signature"}, status=401)


def _connection(
    slug: str, provider: str
) -> tuple[Tenant, IntegrationConnection, dict[str, str]] | None:
    with dangerously_unscoped():  # the tenants table is under RLS; the slug is not yet trusted
        tenant = Tenant.objects.filter(slug=slug, status=Tenant.Status.ACTIVE).first()
    if tenant is None:
        return None
    with tenant_scope(tenant.pk):
        connection = (
            IntegrationConnection.objects.select_related("tenant")
            .filter(tenant=tenant, provider=provider)
            .first()
        )
        if connection is None or not connection.credentials_ciphertext:
            return None
        return tenant, connection, connection_credentials(connection)


def _hmac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def _limited(tenant: Tenant) -> HttpResponse | None:
    decision = rate_limit_hit(tenant_slug=tenant.slug, limit=tenant.rate_limit_per_minute)
    if decision.allowed:
        return None
    response = JsonResponse({"error": "rate limited"}, status=429)
    response["Retry-After"] = str(decision.retry_after)
    return response


def _base64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _sha256_hex(digest: bytes) -> str:
    return "sha256=" + digest.hex()


def _verified(
    request: HttpRequest,
    slug: str,
    provider: str,
    *,
    secret: str,
    header: str,
    encode: Callable[[bytes], str],
) -> tuple[Tenant, bytes] | HttpResponse:
    """The tenant and body of a correctly signed, size-checked, rate-limited delivery, or the
    response that refuses it."""
    found = _connection(slug, provider)
    body = request.body[: MAX_BODY + 1]
    if found is None or not found[2].get(secret) or len(body) > MAX_BODY:
        return _reject(provider, slug, "unknown tenant, not connected, or body too large")
    owner, _, credentials = found
    if not hmac.compare_digest(
        encode(_hmac(credentials[secret], body)), request.headers.get(header, "")
    ):
        return _reject(provider, slug, "signature mismatch")
    if limited := _limited(owner):
        return limited
    return owner, body


def _trace() -> str:
    return current_trace_id.get() or new_trace_id()


@csrf_exempt
@require_http_methods(["POST"])
def shopify_webhook(request: HttpRequest, tenant: str) -> HttpResponse:
    """Shopify signs the raw body with the app's client secret: X-Shopify-Hmac-Sha256 (base64)."""
    from integrations.shopify.services import shopify_webhook_accept

    verified = _verified(
        request,
        tenant,
        "shopify",
        secret="app_secret",
        header="X-Shopify-Hmac-Sha256",
        encode=_base64,
    )
    if isinstance(verified, HttpResponse):
        return verified
    owner, body = verified
    topic, webhook_id = (
        request.headers.get("X-Shopify-Topic", ""),
        request.headers.get("X-Shopify-Webhook-Id", ""),
    )
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict) or not topic or not webhook_id:
            raise ValueError("missing topic, webhook id or object body")
        with tenant_scope(owner.pk):
            accepted = shopify_webhook_accept(
                tenant=owner, topic=topic, webhook_id=webhook_id, payload=payload, trace_id=_trace()
            )
    except (ValueError, InvalidEvent) as exc:
        return JsonResponse({"error": f"bad delivery: {exc}"}, status=400)
    return JsonResponse({"accepted": accepted})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest, tenant: str) -> HttpResponse:
    """Meta's verification handshake (GET) and signed notifications (X-Hub-Signature-256)."""
    from integrations.whatsapp.services import whatsapp_message_receive

    if request.method == "GET":
        found = _connection(tenant, "whatsapp")
        if (
            found
            and request.GET.get("hub.mode") == "subscribe"
            and hmac.compare_digest(
                request.GET.get("hub.verify_token", ""),
                found[1].config.get("verify_token", "") or "\0",
            )
        ):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        return _reject("whatsapp", tenant, "verification token mismatch")
    verified = _verified(
        request,
        tenant,
        "whatsapp",
        secret="app_secret",
        header="X-Hub-Signature-256",
        encode=_sha256_hex,
    )
    if isinstance(verified, HttpResponse):
        return verified
    owner, body = verified
    try:
        messages = list(_whatsapp_text_messages(json.loads(body)))
        with tenant_scope(owner.pk):
            for phone, text, message_id in messages:
                whatsapp_message_receive(
                    tenant=owner, phone=phone, text=text, message_id=message_id, trace_id=_trace()
                )
    except (ValueError, KeyError, TypeError, InvalidEvent) as exc:
        return JsonResponse({"error": f"bad notification: {exc}"}, status=400)
    except OperationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.http_status)
    return JsonResponse({"received": len(messages)})


def _whatsapp_text_messages(body: dict[str, Any]) -> Any:
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            for message in change.get("value", {}).get("messages", []) or []:
                if message.get("type") == "text":
                    yield (
                        "+" + str(message["from"]).lstrip("+"),
                        str(message["text"]["body"]),
                        str(message["id"]),
                    )


@csrf_exempt
@require_http_methods(["POST"])
def n8n_webhook(request: HttpRequest, tenant: str) -> HttpResponse:
    """Workflow results posted back by n8n, signed with the connection's webhook_secret:
    X-SmarterOS-Signature: sha256=<hex HMAC of the body>."""
    verified = _verified(
        request,
        tenant,
        "n8n",
        secret="webhook_secret",
        header="X-SmarterOS-Signature",
        encode=_sha256_hex,
    )
    if isinstance(verified, HttpResponse):
        return verified
    owner, body = verified
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        validate_event_data("n8n.workflow.result", data)
    except (ValueError, InvalidEvent) as exc:
        return JsonResponse({"error": f"bad result: {exc}"}, status=422)
    with tenant_scope(owner.pk):
        envelope = tenant_event_emit(
            tenant=owner,
            topic="n8n.automation.result",
            event_type="n8n.workflow.result",
            data=data,
            key=str(data.get("whatsapp_to") or data.get("workflow") or owner.slug),
            source="integrations.n8n",
            trace_id=_trace(),
        )
    return JsonResponse({"accepted": True, "event_id": envelope.id})
