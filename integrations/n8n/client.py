"""n8n client: the public REST API (X-N8N-API-KEY) and production webhooks that start workflows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.http import Response, request_json
from mcp_tools.errors import OperationError
from smarteros.js_numbers import js_safe


class N8nAuthRefused(OperationError):
    """n8n refused our credentials: retrying with the same ones cannot pass, so an effect fails
    at once and says what to fix."""

    code = "integration_auth_failed"
    http_status = 409


def _api_key_refused(response: Response) -> OperationError | None:
    if response.status_code in (401, 403):
        return N8nAuthRefused(
            f"n8n refused the API key (HTTP {response.status_code}): create a new key in n8n "
            "(Settings > n8n API) and save it in the tenant's n8n connection"
        )
    return None


def _trigger_secret_refused(response: Response) -> OperationError | None:
    if response.status_code in (401, 403):
        return N8nAuthRefused(
            f"the workflow's Webhook node refused the trigger secret (HTTP "
            f"{response.status_code}): its Header Auth credential needs "
            "Name X-SmarterOS-Trigger-Secret and Value the trigger's current secret"
        )
    return None


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
            map_error=_api_key_refused,
            url_setting="base_url",
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

    def get_execution(self, execution_id: str, *, include_data: bool = False) -> dict[str, Any]:
        return dict(
            self._api(
                "GET",
                f"/executions/{execution_id}",
                params={"includeData": str(include_data).lower()},
            )
        )

    def trigger_webhook(
        self,
        path: str,
        payload: dict[str, Any],
        *,
        idempotency_key: str = "",
        auth_headers: dict[str, str] | None = None,
    ) -> Any:
        """POST to a workflow's production webhook (/webhook/{path}). `idempotency_key` travels
        in an Idempotency-Key header: a workflow that dedupes on it runs once per key.
        `auth_headers` is what the Webhook node's Header Auth checks. n8n reads the body with
        JavaScript, so integers beyond 2^53 are sent as strings (see smarteros.js_numbers)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        headers.update(auth_headers or {})
        return request_json(
            "n8n",
            "POST",
            f"{self.base_url.rstrip('/')}/webhook/{path}",
            json=js_safe(payload),
            headers=headers,
            map_error=_trigger_secret_refused,
            url_setting="base_url",
        )
