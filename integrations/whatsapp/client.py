"""WhatsApp Cloud API (Meta Graph API) client."""

from __future__ import annotations

from dataclasses import dataclass

from integrations.http import request_json

GRAPH_BASE_URL = "https://graph.facebook.com"
GRAPH_API_VERSION = "v21.0"


@dataclass(frozen=True)
class WhatsAppClient:
    phone_number_id: str
    access_token: str
    base_url: str = GRAPH_BASE_URL
    api_version: str = GRAPH_API_VERSION

    def send_text(
        self, *, to: str, body: str, preview_url: bool = False, idempotency_key: str = ""
    ) -> str:
        """Send a text message; returns the WhatsApp message id (wamid). `idempotency_key` goes
        in an Idempotency-Key header, so a repeated attempt is recognised as the same send."""
        headers = {"Authorization": f"Bearer {self.access_token}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = request_json(
            "WhatsApp Cloud API",
            "POST",
            f"{self.base_url.rstrip('/')}/{self.api_version}/{self.phone_number_id}/messages",
            headers=headers,
            json={
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to.lstrip("+"),
                "type": "text",
                "text": {"preview_url": preview_url, "body": body},
            },
        )
        return str(response["messages"][0]["id"])
