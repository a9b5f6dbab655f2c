"""n8n client: the public REST API (X-N8N-API-KEY) and production webhooks that start workflows.

A webhook's answer is whatever the workflow's Webhook node sends: JSON, text, or nothing at all
("No Response Body"). Any 2xx means n8n took the request and started the workflow, so it is a
success whatever the body; retrying it would run the workflow again."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from integrations.http import Response, request_json, request_response, response_json
from smarteros.errors import NotFound, OperationError
from smarteros.js_numbers import js_safe

# n8n's defaults for N8N_ENDPOINT_WEBHOOK and N8N_PUBLIC_API_ENDPOINT; an instance may change
# them, and its connection then says so (webhook_prefix, api_prefix).
WEBHOOK_PREFIX = "webhook"
API_PREFIX = "api"
PREFIX_SETTINGS = {"webhook_prefix": WEBHOOK_PREFIX, "api_prefix": API_PREFIX}
_PREFIX = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")
# n8n registers a production webhook when its workflow is published (activated), which takes a
# moment: a 404 right after is retried after these waits before it counts as not registered.
NOT_REGISTERED_WAITS = (0.5, 1.0, 2.0)
# A text answer is kept up to this many characters in the effect's result.
TEXT_ANSWER_LIMIT = 2000


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


def _webhook_missing(response: Response) -> OperationError | None:
    if response.status_code == 404:
        return NotFound(
            "n8n has no active production webhook at this path (HTTP 404): publish (activate) "
            "the workflow, check its Webhook node's path and HTTP method (POST), and the "
            "connection's webhook_prefix if n8n's N8N_ENDPOINT_WEBHOOK is not 'webhook'"
        )
    return _trigger_secret_refused(response)


def n8n_config_validate(config: Mapping[str, Any]) -> None:
    """ValueError naming a prefix setting that cannot be a URL path (`webhook_prefix`,
    `api_prefix`: n8n's N8N_ENDPOINT_WEBHOOK and N8N_PUBLIC_API_ENDPOINT)."""
    for name in PREFIX_SETTINGS:
        value = config.get(name)
        if value not in (None, "") and not (
            isinstance(value, str)
            and _PREFIX.fullmatch(value.strip("/"))
            and not {".", ".."} & set(value.strip("/").split("/"))
        ):
            raise ValueError(
                f"{name}: {value!r} is not a URL path such as 'webhook' or 'hooks/n8n' "
                "(letters, digits, . _ ~ - separated by /)"
            )


def webhook_answer(response: Response) -> Any:
    """What a 2xx webhook answer carried: its JSON, else its text, else None (no body)."""
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        return response.text[:TEXT_ANSWER_LIMIT]


@dataclass(frozen=True)
class N8nClient:
    base_url: str
    api_key: str
    webhook_prefix: str = WEBHOOK_PREFIX
    api_prefix: str = API_PREFIX

    @classmethod
    def of(cls, config: Mapping[str, Any], credentials: Mapping[str, str]) -> N8nClient:
        """A client for a connection's settings and decrypted credentials."""
        prefixes = {
            name: str(config.get(name) or default).strip("/")
            for name, default in PREFIX_SETTINGS.items()
        }
        return cls(base_url=config["base_url"], api_key=credentials["api_key"], **prefixes)

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        return request_json(
            "n8n",
            method,
            f"{self.base_url.rstrip('/')}/{self.api_prefix}/v1{path}",
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
        """POST to a workflow's production webhook (/{webhook_prefix}/{path}) and return what it
        answered (webhook_answer): any 2xx is success. A 404 is retried briefly (a workflow
        just published), then NotFound. `idempotency_key` travels in an Idempotency-Key header:
        a workflow that dedupes on it runs once per key. `auth_headers` is what the Webhook
        node's Header Auth checks. n8n reads the body with JavaScript, so integers beyond 2^53
        are sent as strings (see smarteros.js_numbers)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        headers.update(auth_headers or {})
        url = f"{self.base_url.rstrip('/')}/{self.webhook_prefix}/{path}"
        for wait in (*NOT_REGISTERED_WAITS, None):
            response = request_response(
                "n8n", "POST", url, json=js_safe(payload), headers=headers, url_setting="base_url"
            )
            if response.status_code != 404 or wait is None:
                break
            time.sleep(wait)
        if 200 <= response.status_code < 300:
            return webhook_answer(response)
        return response_json("n8n", url, response, map_error=_webhook_missing)  # raises
