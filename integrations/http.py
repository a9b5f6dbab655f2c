"""HTTP calls to third parties, with one mapping of their failures to UpstreamError."""

from __future__ import annotations

from typing import Any

import httpx

from mcp_tools.errors import UpstreamError

DEFAULT_TIMEOUT = 15.0


def request_json(provider: str, method: str, url: str, **kwargs: Any) -> Any:
    """Send a request and return its JSON body; any failure names the provider and the status."""
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    try:
        response = httpx.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise UpstreamError(f"{provider} did not answer within {kwargs['timeout']}s") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{provider} is unreachable: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise UpstreamError(
            f"{provider} answered HTTP {response.status_code}: {response.text[:300]}"
        )
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"{provider} answered with a body that is not JSON") from None
