"""WhatsApp Cloud API (Meta Graph API) client, and the LLM client used for bot replies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.http import request_json

GRAPH_BASE_URL = "https://graph.facebook.com"
GRAPH_API_VERSION = "v21.0"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"


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


@dataclass(frozen=True)
class LlmReply:
    text: str
    model: str
    tokens_in: int
    tokens_out: int


@dataclass(frozen=True)
class AnthropicClient:
    api_key: str
    model: str
    base_url: str = ANTHROPIC_BASE_URL

    def reply(
        self, *, system: str, messages: list[dict[str, Any]], max_tokens: int = 512
    ) -> LlmReply:
        body = request_json(
            "LLM provider",
            "POST",
            f"{self.base_url.rstrip('/')}/v1/messages",
            headers={"x-api-key": self.api_key, "anthropic-version": "2023-06-01"},
            json={
                "model": self.model,
                "max_tokens": max_tokens,
                "system": system,
                "messages": messages,
            },
            timeout=60.0,
        )
        text = "".join(
            block.get("text", "")
            for block in body.get("content", [])
            if block.get("type") == "text"
        )
        usage = body.get("usage") or {}
        return LlmReply(
            text=text.strip(),
            model=str(body.get("model", self.model)),
            tokens_in=int(usage.get("input_tokens", 0)),
            tokens_out=int(usage.get("output_tokens", 0)),
        )
