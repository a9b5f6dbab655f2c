"""HTTP calls to third parties, with one mapping of their failures to UpstreamError."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from mcp_tools.errors import NotFound, OperationError, UpstreamError

DEFAULT_TIMEOUT = 15.0

_client: tuple[int, httpx.Client] | None = None


def _shared_client() -> httpx.Client:
    """One client per process: it keeps connections to the providers open and builds its TLS
    context once (a client per request spends milliseconds on each). A forked child (Celery's
    pool) makes its own rather than sharing the parent's sockets."""
    global _client
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), httpx.Client(timeout=DEFAULT_TIMEOUT))
    return _client[1]


def request_json(
    provider: str,
    method: str,
    url: str,
    *,
    map_error: Callable[[httpx.Response], OperationError | None] | None = None,
    **kwargs: Any,
) -> Any:
    """Send a request and return its JSON body; any failure names the provider and the status.
    `map_error` turns a provider's documented error answer into its own error first."""
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    try:
        response = _shared_client().request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise UpstreamError(f"{provider} did not answer within {kwargs['timeout']}s") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{provider} is unreachable: {type(exc).__name__}") from None
    if response.status_code >= 400 and map_error is not None:
        mapped = map_error(response)
        if mapped is not None:
            raise mapped
    if response.status_code == 404:
        # The caller named something the provider does not have (an execution, a product):
        # the caller's mistake to correct, not the provider failing.
        raise NotFound(f"{provider} has no {urlsplit(url).path}: {response.text[:200]}")
    if response.status_code >= 400:
        raise UpstreamError(
            f"{provider} answered HTTP {response.status_code}: {response.text[:300]}"
        )
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"{provider} answered with a body that is not JSON") from None
