"""n8n client: the public REST API (X-N8N-API-KEY) and production webhooks that start workflows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.http import request_json


@dataclass(frozen=True)
class N8nClient:
    base_url: str
    api_key: str

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        return request_json(
            "n8n",
            method,
            f"{self.base_url.rstrip('/')}/api/v1{path}",
            headers={"X-N8N-API-KEY": self.api_key, "Accept": "application/json"},
            **kwargs,
        )

    def list_workflows(
        self, *, active: bool | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if active is not None:
            params["active"] = str(active).lower()
        if cursor:
            params["cursor"] = cursor
        return dict(self._api("GET", "/workflows", params=params))

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        return dict(
            self._api("GET", f"/executions/{execution_id}", params={"includeData": "false"})
        )

    def trigger_webhook(
        self, path: str, payload: dict[str, Any], *, idempotency_key: str = ""
    ) -> Any:
        """POST to a workflow's production webhook (/webhook/{path}). `idempotency_key` travels
        in an Idempotency-Key header: a workflow that dedupes on it runs once per key."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return request_json(
            "n8n",
            "POST",
            f"{self.base_url.rstrip('/')}/webhook/{path}",
            json=payload,
            headers=headers,
        )
