"""WhatsApp Cloud API (Meta Graph API) client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from integrations.http import Response, request_json
from integrations.whatsapp.errors import MetaError, whatsapp_error
from smarteros.errors import OperationError

GRAPH_BASE_URL = "https://graph.facebook.com"
PROVIDER = "WhatsApp Cloud API"


def graph_api_version() -> str:
    """The Graph version of every call (WHATSAPP_GRAPH_API_VERSION, checked at start-up)."""
    return str(settings.WHATSAPP_GRAPH_API_VERSION)


def _meta_error(response: Response) -> OperationError | None:
    """Meta's `{"error": {...}}` answer as the error that says what to do; None if the body is
    not one (a proxy's page), which the generic mapping reports."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    return whatsapp_error(MetaError.of(body["error"], http_status=response.status_code))


@dataclass(frozen=True)
class WhatsAppClient:
    phone_number_id: str
    access_token: str
    base_url: str = GRAPH_BASE_URL
    api_version: str = ""  # empty: the setting

    def _url(self, path: str) -> str:
        version = self.api_version or graph_api_version()
        return f"{self.base_url.rstrip('/')}/{version}/{path}"

    def _headers(self, idempotency_key: str = "") -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.access_token}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def _send(self, message: dict[str, Any], idempotency_key: str) -> str:
        # A phone number goes in `to` (digits); a business-scoped user id in `recipient`.
        to = str(message.pop("to"))
        message = {**({"to": to[1:]} if to.startswith("+") else {"recipient": to}), **message}
        response = request_json(
            PROVIDER,
            "POST",
            self._url(f"{self.phone_number_id}/messages"),
            headers=self._headers(idempotency_key),
            json={"messaging_product": "whatsapp", "recipient_type": "individual", **message},
            map_error=_meta_error,
            url_setting="api_base_url",
        )
        return str(response["messages"][0]["id"])

    def send_text(
        self, *, to: str, body: str, preview_url: bool = False, idempotency_key: str = ""
    ) -> str:
        """Send a text message; returns the WhatsApp message id (wamid). `idempotency_key` goes
        in an Idempotency-Key header, so a repeated attempt is recognised as the same send."""
        return self._send(
            {
                "to": to,
                "type": "text",
                "text": {"preview_url": preview_url, "body": body},
            },
            idempotency_key,
        )

    def send_template(
        self,
        *,
        to: str,
        name: str,
        language: str,
        components: list[dict[str, Any]],
        idempotency_key: str = "",
    ) -> str:
        """Send an approved message template (the only message allowed outside the 24-hour
        customer service window); `components` in Meta's shape. Returns the wamid."""
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = components
        return self._send({"to": to, "type": "template", "template": template}, idempotency_key)

    def phone_number(self) -> dict[str, Any]:
        """The business phone number node (display number, verified name, quality rating)."""
        return dict(
            request_json(
                PROVIDER,
                "GET",
                self._url(self.phone_number_id),
                headers=self._headers(),
                map_error=_meta_error,
                url_setting="api_base_url",
            )
        )
